"""Consent reads, one module per job: purposes (``purposes``), consent state now and at any past instant and
history (``state``), receipts (``receipts``), processing flags (``flags``), the processing gate (``gate``),
the console overview (``overview``); the shared semantics in ``semantics``. Public names are re-exported here.

Semantics (one definition, used everywhere and proven by tests/consent/test_state_history.py):

* The events of a (customer, purpose) are ordered by ``(occurred_at, id)``. The state at instant ``at`` is
  given by the last event with ``occurred_at <= at``; none means "never asked".
* A withdrawal means "withdrawn". A grant on notice ``N`` is valid at ``at`` unless a *later* notice of the
  same purpose (``published_at > N.published_at``) that ``requires_reconsent`` was published at or before
  ``at``; then the state is "reconsent_required" (not granted).
* Processing flags replay the same way per kind (restriction, objection): ``set`` on a purpose (or on all
  purposes, ``purpose`` null) holds until a ``lift`` on that purpose; a ``lift`` on all purposes lifts every
  flag of that kind. A flag on all purposes blocks every purpose.
* ``at=None`` ("now") reads the denormalized current tables (written in the same transaction as each event):
  ``processing_gate`` is one query here plus the profiles existence check. Past instants read the events.

The gate's order of precedence: ``not_found`` / ``erased`` > ``restricted`` > ``objected`` > ``no_consent`` >
``ok``. It reads committed state when it runs: a withdrawal committed before a queued job executes stops it.
"""

from .flags import processing_flag_history, processing_flags_active
from .gate import (
    consented_customer_ids,
    processing_gate,
    processing_gate_bulk,
    processing_gate_held,
    processing_gate_held_then,
    processing_gates_bulk,
    processing_gates_bulk_held,
    processing_gates_lock,
)
from .gate_columns import GateColumns, processing_gates_columns, processing_gates_columns_held
from .overview import consent_overview
from .purposes import (
    notice_current,
    notice_list,
    notice_versions,
    purpose_codes,
    purpose_exists,
    purpose_get,
    purpose_id_for,
    purpose_list,
)
from .receipts import consent_receipt, consent_receipt_verify
from .semantics import (
    GATE_ERASED,
    GATE_NO_CONSENT,
    GATE_NOT_FOUND,
    GATE_OBJECTED,
    GATE_OK,
    GATE_RESTRICTED,
    RECEIPT_FORMAT,
    STATUS_GRANTED,
    STATUS_NEVER_ASKED,
    STATUS_RECONSENT_REQUIRED,
    STATUS_WITHDRAWN,
    ConsentState,
    GateDecision,
    bulk_chunk_size,
    flags_replay,
)
from .state import (
    consent_event_get,
    consent_history,
    consent_state,
    consent_states,
    customer_consent_history,
    customer_consents,
    purpose_catalogue,
)

__all__ = [
    "ConsentState",
    "GATE_ERASED",
    "GATE_NOT_FOUND",
    "GATE_NO_CONSENT",
    "GATE_OBJECTED",
    "GATE_OK",
    "GATE_RESTRICTED",
    "GateColumns",
    "GateDecision",
    "RECEIPT_FORMAT",
    "STATUS_GRANTED",
    "STATUS_NEVER_ASKED",
    "STATUS_RECONSENT_REQUIRED",
    "STATUS_WITHDRAWN",
    "bulk_chunk_size",
    "consent_event_get",
    "consent_history",
    "consent_overview",
    "consent_receipt",
    "consent_receipt_verify",
    "consent_state",
    "consent_states",
    "consented_customer_ids",
    "customer_consent_history",
    "customer_consents",
    "flags_replay",
    "notice_current",
    "notice_list",
    "notice_versions",
    "processing_flag_history",
    "processing_flags_active",
    "processing_gate",
    "processing_gate_bulk",
    "processing_gate_held",
    "processing_gate_held_then",
    "processing_gates_bulk",
    "processing_gates_bulk_held",
    "processing_gates_columns",
    "processing_gates_columns_held",
    "processing_gates_lock",
    "purpose_catalogue",
    "purpose_codes",
    "purpose_exists",
    "purpose_get",
    "purpose_id_for",
    "purpose_list",
]
