"""E-mails to requesters and to the DPO (Django's e-mail backend: console/file in the demo, SMTP in production).

Messages carry request ids, statuses, dates and links only: no personal data beyond the recipient
address, which is passed in memory and never logged. Sending happens after the transaction commits;
a failure is logged (without the address) and does not undo the committed work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import formats, translation
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)


def _send(*, to: str, subject: str, body: str, event: str, request_id: str | None) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
    except Exception:  # noqa: BLE001 - an SMTP outage must not turn into a 500 or lose committed work
        logger.error("e-mail not sent", extra={"event": event, "request_id": request_id}, exc_info=True)


def _on_commit(language: str, build: Callable[[], tuple[str, str]], *, to: str, event: str,
               request_id: str | None) -> None:
    def send() -> None:
        with translation.override(language or settings.LANGUAGE_CODE):
            subject, body = build()
        _send(to=to, subject=subject, body=body, event=event, request_id=request_id)

    transaction.on_commit(send)


def _date(value: datetime) -> str:
    return formats.date_format(value, "DATE_FORMAT")


def send_code(*, to: str, code: str, ttl_minutes: int, language: str, request_id: str) -> None:
    def build() -> tuple[str, str]:
        return (
            _("Your verification code"),
            _(
                "Your one-time code is %(code)s. It is valid for %(minutes)s minutes.\n\n"
                "If you did not ask for it, you can ignore this message."
            ) % {"code": code, "minutes": ttl_minutes},
        )

    _on_commit(language, build, to=to, event="dsr.code_sent", request_id=request_id)


def send_status(*, to: str, language: str, request_id: str, status_label: Any, status_link: str,
                reason_label: Any = "", reason_text: str = "", message: str = "") -> None:
    """``status_label``/``reason_label`` may be lazy translations: they are rendered in the requester's
    language when the e-mail is built."""

    def build() -> tuple[str, str]:
        body = _("The status of your privacy request %(id)s is now: %(status)s.") % {
            "id": request_id, "status": str(status_label)}
        if reason_label or reason_text:
            reason = " - ".join(part for part in (str(reason_label), reason_text) if part)
            body += "\n\n" + _("Reason: %(reason)s") % {"reason": reason}
        if message:
            body += "\n\n" + _("The reviewer's explanation: %(text)s") % {"text": message}
        body += "\n\n" + _("Follow your request here: %(link)s") % {"link": status_link}
        return _("Your privacy request"), body

    _on_commit(language, build, to=to, event="dsr.status_mail", request_id=request_id)


def send_extension(*, to: str, language: str, request_id: str, months: int, due_at: datetime,
                   reason_label: Any, reason_text: str, status_link: str) -> None:
    def build() -> tuple[str, str]:
        reason = f"{reason_label} - {reason_text}"
        body = _(
            "We need more time to answer your privacy request %(id)s. We have extended the deadline by "
            "%(months)s month(s), to %(due)s.\n\nReason: %(reason)s\n\nFollow your request here: %(link)s"
        ) % {"id": request_id, "months": months, "due": _date(due_at), "reason": reason, "link": status_link}
        return _("Your privacy request: more time needed"), body

    _on_commit(language, build, to=to, event="dsr.extension_mail", request_id=request_id)


def send_dpo_alert(*, lines: list[str], due_soon: int, overdue: int) -> None:
    def build() -> tuple[str, str]:
        subject = _("Subject requests: %(overdue)s overdue, %(soon)s due within 7 days") % {
            "overdue": overdue, "soon": due_soon}
        return subject, "\n".join(lines)

    _on_commit(settings.LANGUAGE_CODE, build, to=settings.DPO_EMAIL, event="dsr.dpo_alert", request_id=None)
