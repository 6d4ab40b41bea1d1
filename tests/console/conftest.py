"""Fixtures of the console tests, from their homes: the audit fixtures (checkpoint directory, sealed
decisions), the real objects behind every console route (the authorization matrix), the scoring model, the
subject-rights fixtures (customers, purposes, consent, the erasure ledger directory, heavy imports before
freezegun) and the webhook receiver fixtures."""

from __future__ import annotations

from tests.audit.conftest import checkpoint_dir, customer, make_decision, mixed_chain, sealed_decision  # noqa: F401
from tests.foundation.test_authorization_matrix import console_objects  # noqa: F401 - real objects per route
from tests.scoring.conftest import _registry_cache_clear, active_model, synthetic_artifact  # noqa: F401
from tests.subject_rights.conftest import (  # noqa: F401 - fixtures
    _import_heavy_modules_before_freezing_time,
    _ledger_dir,
    customer_factory,
    grant,
    purposes,
)
from tests.webhooks.conftest import consented, receiver, subscribe  # noqa: F401 - fixtures
