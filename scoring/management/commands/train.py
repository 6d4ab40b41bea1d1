"""``manage.py train``: train all scoring models from the database and register them.

Uses only customers allowed for the training purpose (SCORING_TRAINING_PURPOSE, default
automated_scoring) at training time. The new version is activated when its metrics are not worse than
the active one's (``--force`` activates anyway); ``--no-activate`` only registers a candidate.
``--from-attributes --label churned`` trains a churn model from the customers' declared CRM attributes.
``--as-of DATE`` trains as of the end of an imported history. A model kind below its quality floor or naive
baseline is reported and never served; a version with no kind passing is kept as a candidate (``--force``
does not override the floors).
"""

from __future__ import annotations

import json
from argparse import ArgumentTypeError
from datetime import UTC, datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from config.errors import ApplicationError
from scoring import services
from scoring.models import ModelVersion


def _as_of(value: str) -> datetime:
    try:
        day = parse_date(value)
        parsed = parse_datetime(value) or (datetime.combine(day, time.min) if day else None)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ArgumentTypeError("expected an ISO 8601 date or date-time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Train the scoring models from the database and register (and activate) the new version."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--horizon-days", type=int, default=None)
        parser.add_argument("--force", action="store_true", help="Activate even if worse than the active model.")
        parser.add_argument("--no-activate", action="store_true", help="Register as a candidate only.")
        parser.add_argument("--if-none", action="store_true", help="Do nothing if a model is already active.")
        parser.add_argument("--from-attributes", action="store_true",
                            help="Train a churn model from declared CRM attributes and a label attribute.")
        parser.add_argument("--label", default="churned", help="Label attribute for --from-attributes.")
        parser.add_argument("--purpose", default=None, help="Training purpose (consent gate).")
        parser.add_argument("--as-of", default=None, type=_as_of,
                            help="Train as of this date (ISO 8601; default now): the end of an imported history.")

    def handle(self, *args: Any, **opts: Any) -> None:
        kind = ModelVersion.Kind.CHURN_TABLE if opts["from_attributes"] else ModelVersion.Kind.FULL
        if opts["if_none"] and ModelVersion.objects.filter(kind=kind, status=ModelVersion.Status.ACTIVE).exists():
            self.stdout.write("An active model exists; nothing to do (--if-none).")
            return
        try:
            if opts["from_attributes"]:
                version = services.model_train_from_attributes(
                    actor="cli", label=opts["label"], seed=opts["seed"], force=opts["force"],
                    activate=not opts["no_activate"], purpose=opts["purpose"])
            else:
                version = services.model_train(
                    actor="cli", seed=opts["seed"], horizon_days=opts["horizon_days"], force=opts["force"],
                    activate=not opts["no_activate"], purpose=opts["purpose"], as_of=opts["as_of"],
                    progress=lambda text: self.stdout.write(f"  {text}"))
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        version.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(f"Model {version.version} ({version.kind}) registered: {version.status}"))
        self.stdout.write(json.dumps(version.metrics, indent=2, sort_keys=True))
        window = version.card.get("data_window") or {}
        if window.get("horizon_fitted"):
            self.stdout.write(f"Horizon fitted to the history: {window['horizon_days']} days (requested "
                              f"{window['horizon_requested_days']}; {window['history_days']} days of history).")
        for kind, q in (version.card.get("quality") or {}).items():  # model vs naive baseline, side by side
            style = self.style.SUCCESS if q.get("status") == "ok" else self.style.WARNING
            self.stdout.write(style(f"{kind:9} {q.get('status'):15} {q.get('reason')}"))
