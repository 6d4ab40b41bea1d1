"""The CSV importers of the profiles app (sources ``crm``, ``erp``, ``support``, ``web``) and the HubSpot
contacts column mapping. Registered from ``ProfilesConfig.ready()``. Formats: README, "CSV formats"."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .imports import (
    CsvRow,
    RowOutcome,
    RowRejected,
    register_importer,
    register_mapping,
    rejected_outcome,
)
from .models import SOURCES

CUSTOMER_COLUMNS = (
    "external_id", "name", "first_name", "last_name", "email", "phone", "address", "street", "postal_code",
    "city", "company", "job_title", "preferred_language", "date_of_birth", "country",
)
CUSTOMER_REF_COLUMNS = ("customer_external_id", "customer_source", "customer_email", "customer_id")
FACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("external_id", "ordered_at", "amount", "margin", "currency", "returned", "days_late", "category",
               "kind"),
    "interactions": ("external_id", "kind", "at", "count"),
    "tickets": ("external_id", "opened_at", "closed_at", "channel", "escalated", "satisfaction", "category",
                "text", "first_response_at"),
    "notes": ("external_id", "kind", "at", "text"),
    "reviews": ("external_id", "at", "rating", "text"),
    "nps": ("external_id", "at", "score", "comment"),
    "referrals": ("external_id", "at", "converted"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("external_id",),
    "orders": ("external_id", "ordered_at", "amount"),
    "interactions": ("kind", "at"),
    "tickets": ("external_id", "opened_at"),
    "notes": ("external_id", "at", "text"),
    "reviews": ("external_id", "at", "rating"),
    "nps": ("external_id", "at", "score"),
    "referrals": ("external_id", "at"),
}
DEFAULT_KIND = {"crm": "customers", "erp": "orders", "support": "tickets", "web": "interactions"}
_PREFIXED = re.compile(r"^(attr|feature|personal|audit)_([a-z][a-z0-9_]{0,60})$")


def _value(values: dict[str, str], column: str) -> str | None:
    raw = values.get(column)
    if raw is None:
        return None
    stripped = raw.strip()
    return stripped or None


def _attribute_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"-?\d{1,15}", raw):
        return int(raw)
    if re.fullmatch(r"-?\d{1,15}\.\d{1,10}", raw):
        return float(raw)
    return raw


def customer_record_from_row(values: dict[str, str]) -> dict[str, Any]:
    """Row -> keyword arguments of ``customer_ingest`` (minus source/actor)."""
    name = _value(values, "name") or " ".join(
        v for v in (_value(values, "first_name"), _value(values, "last_name")) if v
    ) or None
    address = _value(values, "address") or ", ".join(
        v for v in (
            _value(values, "street"),
            " ".join(p for p in (_value(values, "postal_code"), _value(values, "city")) if p) or None,
        ) if v
    ) or None
    personal: dict[str, str | None] = {
        "name": name,
        "email": _value(values, "email"),
        "phone": _value(values, "phone"),
        "address": address,
        "company": _value(values, "company"),
        "job_title": _value(values, "job_title"),
        "preferred_language": _value(values, "preferred_language"),
        "date_of_birth": _value(values, "date_of_birth"),
    }
    attributes: dict[str, Any] = {}
    features: list[str] = []
    audit: dict[str, str] = {}
    for column, raw in values.items():
        match = _PREFIXED.match(column or "")
        if not match or raw is None or not raw.strip():
            continue
        prefix, attr = match.groups()
        if prefix == "personal":
            personal[attr] = raw.strip()
        elif prefix == "audit":  # audit-only (fairness report): stored encrypted, never a feature
            audit[attr] = raw.strip()
        else:
            attributes[attr] = _attribute_value(raw.strip())
            if prefix == "feature":
                features.append(attr)
    external_id = _value(values, "external_id")
    if external_id is None:
        raise RowRejected("external_id", "required")
    return {
        "external_id": external_id,
        "personal": personal,
        "attributes": attributes,
        "feature_attributes": sorted(features) or None,
        "country": _value(values, "country"),
        **({"audit_attributes": audit} if audit else {}),
    }


class ProfilesImporter:
    """Customers (one savepoint per row, identity resolution) and facts (one batch per chunk, one Presidio
    batch call for the chunk's free text)."""

    kinds: tuple[str, ...]
    required_columns = REQUIRED

    def __init__(self, source: str) -> None:
        self.source = source
        default = DEFAULT_KIND[source]
        self.kinds = (default, *[k for k in REQUIRED if k != default])

    def process_rows(self, rows: Sequence[CsvRow], *, kind: str, source: str, actor: str) -> list[RowOutcome]:
        if kind == "customers":
            return self._customers(rows, source=source, actor=actor)
        return self._facts(rows, kind=kind, source=source, actor=actor)

    @staticmethod
    def _customers(rows: Sequence[CsvRow], *, source: str, actor: str) -> list[RowOutcome]:
        """Set-based ``customer_ingest_batch`` for the chunk; per-row outcomes as if ingested one by one."""
        from .services import customer_ingest_batch

        outcomes: dict[int, RowOutcome] = {}
        records: list[dict[str, Any]] = []
        positions: list[int] = []
        for position, row in enumerate(rows):
            try:
                records.append(customer_record_from_row(row.values))
                positions.append(position)
            except RowRejected as exc:
                outcomes[position] = rejected_outcome(exc, row.line)
        for position, res in zip(positions, customer_ingest_batch(source=source, records=records, actor=actor),
                                 strict=True):
            line = rows[position].line
            outcomes[position] = (RowOutcome(line=line, outcome=res.outcome) if res.error is None
                                  else rejected_outcome(res.error, line))
        return [outcomes[position] for position in range(len(rows))]

    @staticmethod
    def _facts(rows: Sequence[CsvRow], *, kind: str, source: str, actor: str) -> list[RowOutcome]:
        from .services import facts_ingest_batch

        columns = (*FACT_COLUMNS[kind], *CUSTOMER_REF_COLUMNS)
        records = [{c: _value(row.values, c) for c in columns} | {"source": source} for row in rows]
        results = facts_ingest_batch(kind=kind, records=records, actor=actor)
        return [
            RowOutcome(line=row.line, outcome=r.outcome, column=r.field, code=r.code)
            for row, r in zip(rows, results, strict=True)
        ]


# --------------------------------------------------------------------------------------------------------
# HubSpot contacts export
# --------------------------------------------------------------------------------------------------------

HUBSPOT_COLUMNS: dict[str, str] = {
    "Record ID": "external_id",
    "First Name": "first_name",
    "Last Name": "last_name",
    "Email": "email",
    "Phone Number": "phone",
    "Company Name": "company",
    "Job Title": "job_title",
    "Street Address": "street",
    "City": "city",
    "Postal Code": "postal_code",
    "Preferred language": "preferred_language",
    "Date of birth": "date_of_birth",
    "Lifecycle Stage": "attr_lifecycle_stage",
    "Lead Status": "attr_lead_status",
    "Number of Employees": "attr_company_size",
    "Industry": "attr_industry",
}
_COUNTRY_NAMES = {
    "united kingdom": "GB", "uk": "GB", "great britain": "GB", "england": "GB", "germany": "DE",
    "deutschland": "DE", "netherlands": "NL", "the netherlands": "NL", "nederland": "NL", "poland": "PL",
    "polska": "PL", "finland": "FI", "suomi": "FI", "sweden": "SE", "sverige": "SE", "france": "FR",
    "spain": "ES", "italy": "IT", "ireland": "IE", "belgium": "BE", "austria": "AT", "denmark": "DK",
    "norway": "NO", "switzerland": "CH", "portugal": "PT", "united states": "US", "usa": "US",
}


def hubspot_contacts(raw: dict[str, str]) -> dict[str, str]:
    """HubSpot "Contacts" export -> our ``customers`` columns. Unmapped columns are dropped."""
    out = {ours: raw.get(theirs, "") for theirs, ours in HUBSPOT_COLUMNS.items() if theirs in raw}
    if not (out.get("phone") or "").strip() and raw.get("Mobile Phone Number"):
        out["phone"] = raw["Mobile Phone Number"]
    country = (raw.get("Country/Region") or "").strip()
    if re.fullmatch(r"[A-Za-z]{2}", country):
        out["country"] = country.upper()
    elif country.lower() in _COUNTRY_NAMES:
        out["country"] = _COUNTRY_NAMES[country.lower()]
    if (raw.get("Preferred language") or "").strip():
        out["preferred_language"] = raw["Preferred language"].strip()
    return out


def register() -> None:
    for source in SOURCES:
        register_importer(source, ProfilesImporter(source))
    register_mapping("hubspot", hubspot_contacts)
