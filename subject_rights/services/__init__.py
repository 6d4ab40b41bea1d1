"""All writes of the subject-rights app, one module per stage: requests and their workflow, the statutory
clock, verification codes, exports, erasure (with the ledger), restriction/objection, rectification and
human reviews.

- ``workflow``: the status machine, transitions and closing, the requester's sealed contact address, shared checks;
- ``filing``: submissions (API, self-service, contests) and verification codes;
- ``execution``: dispatch after verification, restriction/objection, the DPO's actions;
- ``export``: access and portability exports;
- ``rectification``: corrected values applied and the customer rescored;
- ``reviews``: human review of contested decisions;
- ``erasure``: legal holds, erasure, the ledger and its replay;
- ``deadlines``: extensions and the daily check of due requests.

Every service is keyword-only and ``@transaction.atomic``; every status change writes the audit
governance record ``dsr.status_changed`` in the same transaction. Other apps are used only through
their ``services`` and ``selectors`` modules. The public names are re-exported here, so callers import
``subject_rights.services`` as before.
"""

from .deadlines import FlagCounts, request_extend, requests_flag_due
from .erasure import erasure_replay, legal_hold_place, legal_hold_release
from .execution import (
    request_complete,
    request_execute,
    request_lift,
    request_reject,
    request_start,
    request_verify_on_behalf,
)
from .export import export_build, export_download, exports_delete_expired
from .filing import (
    Submission,
    VerifyResult,
    request_contest_submit,
    request_submit,
    request_submit_self_service,
    request_verify_code,
    verification_resend,
)
from .rectification import request_rectification_provide
from .reviews import ReviewView, review_decide, review_view
from .workflow import (
    CONTACT_LABEL,
    MAX_FIELDS,
    MAX_REASON_LENGTH,
    MAX_STATEMENT_LENGTH,
    PAYLOAD_LABEL,
    SELF,
    STATEMENT_LABEL,
    TRANSITIONS,
    WORKABLE,
)

__all__ = [
    "CONTACT_LABEL",
    "FlagCounts",
    "MAX_FIELDS",
    "MAX_REASON_LENGTH",
    "MAX_STATEMENT_LENGTH",
    "PAYLOAD_LABEL",
    "ReviewView",
    "SELF",
    "STATEMENT_LABEL",
    "Submission",
    "TRANSITIONS",
    "VerifyResult",
    "WORKABLE",
    "erasure_replay",
    "export_build",
    "export_download",
    "exports_delete_expired",
    "legal_hold_place",
    "legal_hold_release",
    "request_complete",
    "request_contest_submit",
    "request_execute",
    "request_extend",
    "request_lift",
    "request_rectification_provide",
    "request_reject",
    "request_start",
    "request_submit",
    "request_submit_self_service",
    "request_verify_code",
    "request_verify_on_behalf",
    "requests_flag_due",
    "review_decide",
    "review_view",
    "verification_resend",
]
