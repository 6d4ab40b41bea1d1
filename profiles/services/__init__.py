"""All writes of the profiles app (see docs/ARCHITECTURE.md, "profiles"), one module per job.

Personal values are encrypted under the customer's data key before they reach the database, lookups use
blind-index digests, and free text is pseudonymized with Presidio before it is stored. Errors never carry
values: only field names and codes.

- ``validation``: record and fact value checks (messages name fields and codes, never values);
- ``crypto``: personal-field encryption, sealing under a customer's key, key rotation;
- ``identity``: identity resolution by blind indexes, merges;
- ``customers``: one-record customer upserts, rectification, staleness;
- ``customer_batch``: the customer batch path;
- ``facts``: orders, interactions, tickets, notes, reviews, NPS answers and referrals;
- ``free_text``: Presidio pseudonymization of free text;
- ``erasure``: customer erasure;
- ``retention``: retention purge;
- ``api_ingest``: the REST bulk ingest entry point.

The public names are re-exported here, so callers import ``profiles.services`` as before.
"""

from ..errors import IdentifierInUse, MergeConflict, RecordInvalid
from .api_ingest import INGEST_KINDS, BatchRecordResult, ingest_batch
from .crypto import RotationResult, customer_seal, customer_seal_many, keys_rotate
from .customer_batch import CustomerBatchResult, customer_ingest_batch
from .customers import IngestResult, customer_ingest, customer_mark_fresh, customer_rectify
from .erasure import customer_erase
from .facts import (
    FACT_KINDS,
    ONE_RECORD_ARGUMENTS,
    FactResult,
    fact_ingest,
    facts_ingest_batch,
    interaction_ingest,
    note_ingest,
    nps_ingest,
    order_ingest,
    referral_ingest,
    review_ingest,
    ticket_ingest,
)
from .free_text import free_text_scrub
from .retention import DEFAULT_RETENTION_DAYS, RETENTION_TARGETS, retention_days, retention_purge
from .validation import MAX_EXTERNAL_ID_LENGTH, MAX_FREE_TEXT, MAX_VALUE_LENGTH, STRONG_KINDS

__all__ = [
    "BatchRecordResult",
    "CustomerBatchResult",
    "DEFAULT_RETENTION_DAYS",
    "FACT_KINDS",
    "FactResult",
    "ONE_RECORD_ARGUMENTS",
    "fact_ingest",
    "INGEST_KINDS",
    "IdentifierInUse",
    "IngestResult",
    "MAX_EXTERNAL_ID_LENGTH",
    "MAX_FREE_TEXT",
    "MAX_VALUE_LENGTH",
    "MergeConflict",
    "RETENTION_TARGETS",
    "RecordInvalid",
    "RotationResult",
    "STRONG_KINDS",
    "customer_erase",
    "customer_ingest",
    "customer_ingest_batch",
    "customer_mark_fresh",
    "customer_rectify",
    "customer_seal",
    "customer_seal_many",
    "facts_ingest_batch",
    "free_text_scrub",
    "ingest_batch",
    "interaction_ingest",
    "keys_rotate",
    "note_ingest",
    "nps_ingest",
    "order_ingest",
    "referral_ingest",
    "retention_days",
    "retention_purge",
    "review_ingest",
    "ticket_ingest",
]
