"""Which environment the settings read: a developer's ``.env`` and shell never reach the test settings.

``config.settings.test`` calls :func:`enable` before it imports ``base``; from then on the settings reader
sees only the variables in :data:`TEST_ALLOWED_VARIABLES` (the CI's services, and the directories the test
harness hands to the worker processes it starts) and never reads a ``.env`` file. So ``make run`` (which
writes ``.env``) followed by ``make test`` in one clone runs the tests exactly as in a fresh clone.

Other settings modules read ``ENV_FILE`` (default ``<repo>/.env``; empty: no file) and the environment.
"""

from __future__ import annotations

import os

# Documented CI variables, plus the harness's own hand-over to the subprocesses it starts.
TEST_ALLOWED_VARIABLES = frozenset({
    "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL",
    "CELERY_TASK_ALWAYS_EAGER", "AUDIT_CHECKPOINT_DIR", "EXPORT_DIR",
})

_enabled = False


def enable() -> None:
    global _enabled
    _enabled = True


def enabled() -> bool:
    return _enabled


def environ() -> dict[str, str] | os._Environ[str]:
    """The mapping the settings reader uses."""
    if _enabled:
        return {k: v for k, v in os.environ.items() if k in TEST_ALLOWED_VARIABLES}
    return os.environ


def dotenv_path(base_dir: os.PathLike[str] | str) -> str | None:
    """The ``.env`` file to read, or None (test settings, or ``ENV_FILE`` set to an empty string)."""
    if _enabled:
        return None
    path = os.environ.get("ENV_FILE", os.path.join(os.fspath(base_dir), ".env"))
    return path or None
