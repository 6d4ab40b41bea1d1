"""Purposes and their notices (reference data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from config.errors import NotFound, ValidationFailed
from consent.models import (
    ConsentNotice,
    Purpose,
)


# --- Purposes ------------------------------------------------------------------------------------------
def purpose_list() -> list[Purpose]:
    return list(Purpose.objects.order_by("code"))


def purpose_codes() -> list[str]:
    """Every purpose code of this deployment (the API schema's enum of purposes)."""
    return list(Purpose.objects.order_by("code").values_list("code", flat=True))


def notice_versions() -> list[str]:
    """Every published notice version (the API schema's enum of ``notice_version``)."""
    from django.utils import timezone

    return sorted(set(ConsentNotice.objects.filter(published_at__lte=timezone.now())
                      .values_list("version", flat=True)))


def purpose_get(*, code: str) -> Purpose:
    purpose = Purpose.objects.filter(code=code).first() if isinstance(code, str) else None
    if purpose is None:
        raise NotFound("Unknown purpose.")
    return purpose


# Purposes are reference data (seeded by data migration, never renamed): the codes known to exist are
# remembered per process, so validating a request's purpose costs no query. A miss re-reads the table. The
# gate's own query still joins the purpose row by code, so an entry gone stale can never open the gate.
known_purpose_codes: set[str] = set()


def purpose_exists(*, code: Any) -> bool:
    """True for a known purpose code (a per-process cache of codes seen to exist; misses read the table)."""
    if not isinstance(code, str) or not code:
        return False
    if code in known_purpose_codes:
        return True
    if Purpose.objects.filter(code=code).exists():
        known_purpose_codes.add(code)
        return True
    return False


def purpose_id_for(code: str) -> int:
    """The id of a purpose code. Unknown codes raise ``ValidationFailed`` (400, code ``invalid``)."""
    pid = Purpose.objects.filter(code=code).values_list("id", flat=True).first() if isinstance(code, str) else None
    if pid is None:
        raise ValidationFailed("Unknown purpose.", extra={"errors": {"purpose": [{"code": "invalid_choice"}]}})
    return pid


def notice_current(*, purpose: str, at: datetime | None = None) -> ConsentNotice:
    """The notice version in force for ``purpose`` at ``at`` (now by default): the latest published."""
    at = at or timezone.now()
    notice = (
        ConsentNotice.objects.filter(purpose_id=purpose_id_for(purpose), published_at__lte=at)
        .order_by("-published_at", "-id")
        .first()
    )
    if notice is None:
        raise NotFound("No consent notice is published for this purpose.")
    return notice


def notice_list(*, purpose: str) -> list[ConsentNotice]:
    return list(ConsentNotice.objects.filter(purpose_id=purpose_id_for(purpose)).order_by("published_at", "id"))
