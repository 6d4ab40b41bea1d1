"""The access/portability export (Art. 15, 20): everything held about one subject, as JSON that follows
the published schema (``subject_rights/export_schema.json``, served at ``/me/export-schema.json``).

Read-only: this module only calls other apps' selectors. The caller (``services.export_build``) writes
the access record and stores the result encrypted.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema

from audit import selectors as audit_selectors
from audit import services as audit_services
from config.errors import NotFound
from consent import selectors as consent_selectors
from profiles import selectors as profile_selectors
from profiles import services as profile_services

SCHEMA_PATH = Path(__file__).resolve().parent / "export_schema.json"
SCHEMA_VERSION = "1.1"  # 1.1: crm_attributes (issue 20, fault 7)
FACT_SOURCES_NOTE = {
    "crm": "Customer relationship management system",
    "erp": "Orders and invoicing (ERP)",
    "support": "Support desk",
    "web": "Website and app",
}


@lru_cache(maxsize=1)
def export_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Any:
    """The schema's validator, built (and the schema itself checked) once per process."""
    schema = export_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def export_validate(document: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when the document does not follow the published schema.
    ``document`` is what ``export_document`` returns (already JSON-ready: it is not walked again)."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        raise error


def _scalar(value: Any) -> Any:
    """A leaf value as JSON: datetimes as ISO 8601, decimals and UUIDs as strings, bytes dropped."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return None
    return value


def _json_default(value: Any) -> Any:
    """The JSON encoder's fallback: the conversions of ``_scalar``, and sets as lists."""
    if isinstance(value, set | frozenset):
        return list(value)
    converted = _scalar(value)
    if converted is value:
        raise TypeError(type(value).__name__)
    return converted


def _plain(value: Any) -> Any:
    """JSON-ready values: datetimes as ISO 8601, decimals and UUIDs as strings. One encode/decode in the
    C JSON codec (a 10,000-event document in milliseconds); a value the codec cannot take (e.g. a non-text
    key) falls back to the equivalent walk."""
    try:
        return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False))
    except (TypeError, ValueError):
        return _plain_walk(value)


def _plain_walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain_walk(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain_walk(v) for v in value]
    return _scalar(value)


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _decisions(customer_id: UUID) -> list[dict[str, Any]]:
    """The subject's decisions with their reviews (prefetched: one query) and sealed details (decrypted
    with one key read for all of them)."""
    decisions = audit_selectors.decisions_for_subject(customer=customer_id)
    sealed = [(i, bytes(blob)) for i, d in enumerate(decisions) if (blob := _attr(d, "sealed_details"))]
    opened = profile_selectors.customer_unseal_many(
        customer_id=customer_id, label=audit_services.DECISION_DETAILS_LABEL, blobs=[blob for _, blob in sealed])
    details_of: dict[int, dict[str, Any] | None] = {i: details for (i, _), details in zip(sealed, opened, strict=True)}
    rows = []
    for index, decision in enumerate(decisions):
        details = details_of.get(index)
        rows.append({
            "id": _attr(decision, "id"),
            "at": _attr(decision, "created_at"),
            "purpose": _attr(decision, "purpose"),
            "decision_type": _attr(decision, "decision_type"),
            "requester": _attr(decision, "requester"),
            "model_versions": _attr(decision, "model_versions") or {},
            "consent_event_id": _attr(decision, "consent_event_id"),
            "notice_version": _attr(decision, "notice_version"),
            "outputs": _attr(decision, "outputs") or {},
            "explanation": (details or {}).get("explanation"),
            "inputs": (details or {}).get("features"),
            "human_reviews": [
                {"at": _attr(r, "created_at"), "outcome": _attr(r, "outcome"), "override": _attr(r, "override"),
                 "rationale": _attr(r, "rationale")}
                for r in decision.reviews.all()
            ],
        })
    return rows


def _scores(customer_id: UUID, purposes: list[str]) -> dict[str, Any]:
    from scoring import selectors as scoring_selectors

    scores: dict[str, Any] = {}
    for code in purposes:
        try:
            current = scoring_selectors.score_current(customer_id=customer_id, purpose=code)
        except NotFound:
            current = None
        scores[code] = _as_dict(current)
    return scores


def _explanation(customer_id: UUID) -> Any:
    from scoring import selectors as scoring_selectors

    try:
        return _as_dict(scoring_selectors.score_explanation_for_subject(customer_id=customer_id))
    except NotFound:
        return None


def _as_dict(value: Any) -> Any:
    if value is None or isinstance(value, dict | list | str | int | float | bool):
        return value
    if hasattr(value, "__dataclass_fields__"):
        return {name: getattr(value, name) for name in value.__dataclass_fields__}
    if hasattr(value, "_asdict"):
        return value._asdict()
    return str(value)


def _crm_attributes(customer_id: UUID) -> dict[str, Any]:
    """The customer's plain CRM attributes (decrypted under its key) and which of them scoring uses (Art. 15:
    everything held, including what feeds the automated decisions)."""
    profile = profile_selectors.customer_profile(customer_id=customer_id)
    return {"values": dict(sorted(profile["attributes"].items())),
            "used_for_scoring": sorted(str(name) for name in profile["feature_attributes"])}


def _processing_flags(customer_id: UUID) -> list[dict[str, Any]]:
    history = getattr(consent_selectors, "processing_flag_history", None)
    return list(history(customer_id=customer_id)) if history is not None else []


def export_document(*, customer_id: UUID, request_id: UUID, request_type: str, generated_at: datetime) -> dict[str, Any]:
    """Everything held about ``customer_id``, PII included (this is the subject's own copy)."""
    purposes = consent_selectors.purpose_list()
    purpose_codes = [p.code for p in purposes]
    facts = profile_selectors.customer_facts(customer_id=customer_id)
    identities = profile_selectors.customer_source_identities(customer_id=customer_id)
    decisions = _decisions(customer_id)
    recipients = sorted({d["requester"] for d in decisions if d.get("requester")})
    sources = sorted({str(i["source"]) for i in identities}
                     | {str(row["source"]) for rows in facts.values() if isinstance(rows, list)
                        for row in rows if isinstance(row, dict) and row.get("source")})
    document = {
        "schema": "/me/export-schema.json",
        "schema_version": SCHEMA_VERSION,
        "format": request_type,
        "generated_at": generated_at,
        "request_id": request_id,
        "subject": customer_id,
        "personal_data": profile_selectors.customer_personal_data(customer_id=customer_id),
        "crm_attributes": _crm_attributes(customer_id),
        "source_identities": identities,
        "facts": facts,
        "consent_history": consent_selectors.consent_history(customer_id=customer_id),
        "processing_restrictions": _processing_flags(customer_id),
        "scores": _scores(customer_id, purpose_codes),
        "explanation": _explanation(customer_id),
        "decisions": decisions,
        "processing": {
            "purposes": [
                {"code": p.code, "name": p.name, "description": p.description, "lawful_basis": p.lawful_basis,
                 "retention_days": p.retention_days, "data_categories": list(p.data_categories or []),
                 "recipients": p.recipients or ""}
                for p in purposes
            ],
            "recipients": recipients,
            "retention_days": dict(profile_services.retention_days()),
            "sources": [{"code": s, "description": FACT_SOURCES_NOTE.get(s, s)} for s in sources],
        },
    }
    return _plain(document)
