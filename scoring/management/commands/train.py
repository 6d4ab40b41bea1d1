"""``manage.py train``: train all scoring models from the database and register them.

Uses only customers allowed for the training purpose (SCORING_TRAINING_PURPOSE, default
automated_scoring) at training time. The new version is activated when its metrics are not worse than
the active one's (``--force`` activates anyway); ``--no-activate`` only registers a candidate.
``--from-attributes --label churned`` trains a churn model from the customers' declared CRM attributes.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from scoring import services
from scoring.models import ModelVersion


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
                    activate=not opts["no_activate"], purpose=opts["purpose"],
                    progress=lambda text: self.stdout.write(f"  {text}"))
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        version.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(f"Model {version.version} ({version.kind}) registered: {version.status}"))
        self.stdout.write(json.dumps(version.metrics, indent=2, sort_keys=True))
