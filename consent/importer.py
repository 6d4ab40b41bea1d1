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

Each row is validated and written in its own savepoint; a bad row is rejected with its line, column and a
code (never its value). Re-importing the same file changes nothing: an event with the same customer,
purpose, action, time, source, channel and notice is recognised and reported ``unchanged``.
"""

from __future__ import annotations

from typing import Any

from config.errors import ApplicationError, NotFound
from consent import services
from profiles.imports import CsvRow, RowImporter, RowRejected

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
