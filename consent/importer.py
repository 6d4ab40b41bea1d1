"""The ``consent`` CSV importer: ``manage.py import_csv --source consent FILE`` (a CRM consent export).

Columns (header names; extra columns are ignored):

=================  ========  ==========================================================================
column             required  meaning
=================  ========  ==========================================================================
``source``         yes       the customer's source system (``crm``, ``erp``, ``support``, ``web``); also
                             recorded as the consent event's source system
``external_id``    one of    the customer's id in that source system, or
``email``          these     the customer's e-mail address (looked up by its blind index, never stored)
``purpose``        yes       ``automated_scoring``, ``service_prioritization``, ``marketing``
``action``         yes       ``grant`` or ``withdraw``
``channel``        yes       ``web``, ``app``, ``email``, ``phone``, ``in_store``, ``api``, ``import``
``occurred_at``    yes       when the person decided, ISO 8601 with offset (``2024-05-01T10:00:00Z``)
``notice_version`` no        the notice version shown (default: the version in force at ``occurred_at``)
=================  ========  ==========================================================================

Rows are recorded set-based per chunk (``consent.bulk``: customers looked up by blind index in one query per
identifier kind, then what one ``consent_record_import`` per row would store); a bad row is rejected alone, with
its line, column and a code (never its value). ``import_row`` (one row in its own savepoint) is the reference
path, and ``tests/consent/test_bulk_differential.py`` checks that both give the same outcomes and rows. Re-importing the same file changes nothing: an event with the same customer,
purpose, action, time, source, channel and notice is recognised and reported ``unchanged``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from config.errors import ApplicationError, NotFound
from consent import services
from profiles.imports import CsvRow, RowImporter, RowOutcome, RowRejected

CUSTOMER_SOURCES = ("crm", "erp", "support", "web")


def _rejection(exc: ApplicationError, default_column: str | None) -> RowRejected:
    errors = exc.extra.get("errors") if isinstance(exc.extra, dict) else None
    if isinstance(errors, dict) and errors:
        column, details = next(iter(errors.items()))
        code = details[0].get("code", exc.code) if isinstance(details, list) and details else exc.code
        return RowRejected({"customer": default_column, "record": None}.get(column, column), code)
    return RowRejected(default_column, exc.code)


class ConsentCsvImporter(RowImporter):
    kinds = ("consents",)
    required_columns = {"consents": ("source", "purpose", "action", "channel", "occurred_at")}

    def _customer(self, values: dict[str, str]) -> tuple[Any, str]:
        from profiles import selectors as profiles_selectors

        source = (values.get("source") or "").strip().lower()
        if source not in CUSTOMER_SOURCES:
            raise RowRejected("source", "invalid_choice" if source else "required")
        external_id = (values.get("external_id") or "").strip()
        email = (values.get("email") or "").strip()
        if external_id:
            customer = profiles_selectors.customer_find(source=source, external_id=external_id)
            column = "external_id"
        elif email:
            customer = profiles_selectors.customer_find(email=email)
            column = "email"
        else:
            raise RowRejected("external_id", "required")
        if customer is None:
            raise RowRejected(column, "unknown_customer")
        return customer, source

    def import_row(self, row: CsvRow, *, kind: str, source: str, actor: str) -> str:
        values = row.values
        customer, customer_source = self._customer(values)
        action = (values.get("action") or "").strip().lower()
        record = {
            "customer": customer,
            "purpose": (values.get("purpose") or "").strip(),
            "action": action,
            "source": customer_source,
            "channel": (values.get("channel") or "").strip().lower(),
            "occurred_at": (values.get("occurred_at") or "").strip(),
            "notice_version": (values.get("notice_version") or "").strip() or None,
            "evidence": {"import_line": row.line},
        }
        if not record["occurred_at"]:
            raise RowRejected("occurred_at", "required")
        try:
            _, created = services.consent_record_import(record=record, actor=actor)
        except NotFound as exc:
            raise RowRejected("external_id", "unknown_customer") from exc
        except ApplicationError as exc:
            raise _rejection(exc, None) from exc
        return "created" if created else "unchanged"

    # ---- set-based per chunk (the default path of ``import_csv --source consent``)

    def _customers_many(self, refs: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], UUID | None]:
        """``profiles.selectors.customer_find`` for many ``(kind, source, value)`` references at once."""
        from config import blind_index
        from config.blind_index import InvalidIdentifier
        from consent.bulk import resolve_customers
        from profiles.models import BlindIndexEntry, SourceIdentity

        digests: dict[tuple[str, str, str], tuple[str, str]] = {}
        for ref in set(refs):
            kind, source, value = ref
            try:
                if kind == "email":
                    digests[ref] = ("email", blind_index.email_index(value))
                else:
                    digests[ref] = (source, blind_index.source_index(source, value))
            except InvalidIdentifier:
                continue
        by_source: dict[str, set[str]] = {}
        for group, digest in digests.values():
            by_source.setdefault(group, set()).add(digest)
        found: dict[tuple[str, str], UUID] = {}
        for group, values in by_source.items():
            rows: Any
            if group == "email":
                rows = BlindIndexEntry.objects.filter(kind="email", digest__in=values).values_list("digest", "customer_id")
            else:
                rows = SourceIdentity.objects.filter(source=group, digest__in=values).values_list("digest", "customer_id")
            for digest, cid in rows:
                found.setdefault((group, digest), cid)
        resolved = resolve_customers(set(found.values()))
        return {ref: resolved.get(found[d]) if d in found else None for ref, d in
                ((ref, digests.get(ref)) for ref in set(refs))}

    def process_rows(self, rows: Sequence[CsvRow], *, kind: str, source: str, actor: str) -> list[RowOutcome]:
        outcomes: dict[int, RowOutcome] = {}
        pending: list[tuple[int, CsvRow, tuple[str, str, str], str, str]] = []
        for i, row in enumerate(rows):
            values = row.values
            customer_source = (values.get("source") or "").strip().lower()
            if customer_source not in CUSTOMER_SOURCES:
                outcomes[i] = RowOutcome(row.line, "rejected", "source",
                                         "invalid_choice" if customer_source else "required")
                continue
            external_id = (values.get("external_id") or "").strip()
            email = (values.get("email") or "").strip()
            if external_id:
                ref, column = ("source", customer_source, external_id), "external_id"
            elif email:
                ref, column = ("email", "", email), "email"
            else:
                outcomes[i] = RowOutcome(row.line, "rejected", "external_id", "required")
                continue
            pending.append((i, row, ref, column, customer_source))
        customers = self._customers_many([p[2] for p in pending])
        records: list[dict[str, Any]] = []
        positions: list[int] = []
        for i, row, ref, column, customer_source in pending:
            customer = customers.get(ref)
            if customer is None:
                outcomes[i] = RowOutcome(row.line, "rejected", column, "unknown_customer")
                continue
            values = row.values
            record = {
                "customer": customer, "purpose": (values.get("purpose") or "").strip(),
                "action": (values.get("action") or "").strip().lower(), "source": customer_source,
                "channel": (values.get("channel") or "").strip().lower(),
                "occurred_at": (values.get("occurred_at") or "").strip(),
                "notice_version": (values.get("notice_version") or "").strip() or None,
                "evidence": {"import_line": row.line},
            }
            if not record["occurred_at"]:
                outcomes[i] = RowOutcome(row.line, "rejected", "occurred_at", "required")
                continue
            records.append(record)
            positions.append(i)
        for i, result in zip(positions, services.consent_record_many(records=records, actor=actor), strict=True):
            line = rows[i].line
            if result.status != "rejected":
                outcomes[i] = RowOutcome(line, result.status)
            elif result.code == NotFound.code and result.field is None:
                outcomes[i] = RowOutcome(line, "rejected", "external_id", "unknown_customer")
            else:
                field = {"customer": None, "record": None}.get(result.field, result.field) if result.field else None
                outcomes[i] = RowOutcome(line, "rejected", field, result.code)
        return [outcomes[i] for i in range(len(rows))]
