"""Gunicorn hooks of the section 1 server (``-c python:bench.gunicorn_warm``), a production recommendation too:
each worker loads and verifies the active scoring models when it starts, before it takes a connection, so
no request pays the model load (seconds; with keep-alive connections pinned to workers, a cold worker can
otherwise be met by the first requests of a measured run). The bare endpoint is unaffected."""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    from django.db import connections

    try:
        from scoring import registry

        registry.active_models()
    except Exception:  # noqa: BLE001 - no model yet: the first score request answers 503 as without the hook
        worker.log.warning("active scoring models not preloaded")
    finally:
        connections.close_all()
