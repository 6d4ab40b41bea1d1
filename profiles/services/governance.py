"""The governance record every profiles write leaves in the audit app (PII-free details)."""

from __future__ import annotations

from uuid import UUID


def record_governance(*, kind: str, actor: str, subject: UUID | None = None, details: dict | None = None) -> None:
    from audit.services import governance_record

    governance_record(kind=kind, actor=actor, subject=subject, details=details or {})
