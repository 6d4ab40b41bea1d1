"""The erasure ledger's append-only file store (outside the database, so a restore cannot rewind it).

One JSON line per erasure: ``{"customer": <pseudonym>, "request": <id|null>, "erased_at": <iso>, "mac": ...}``.
No personal data: pseudonyms and times only. Each line carries an HMAC (SECRET_KEY) so an edited line is
detected and skipped. Appends take an exclusive ``flock`` and are fsync'ed before the database commits
(write-ahead: a line whose transaction then rolled back only makes a replay re-erase someone who asked
to be erased).

Directory: ``settings.ERASURE_LEDGER_DIR`` (default ``<VAR_DIR>/erasure-ledger``); file ``ledger.jsonl``.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from django.conf import settings

logger = logging.getLogger(__name__)
FILE_NAME = "ledger.jsonl"


@dataclass(frozen=True)
class LedgerLine:
    customer: UUID
    request: UUID | None
    erased_at: datetime


def ledger_dir() -> Path:
    configured = getattr(settings, "ERASURE_LEDGER_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "erasure-ledger"


def _mac(customer: str, request: str | None, erased_at: str) -> str:
    message = f"erasure-ledger|{customer}|{request or ''}|{erased_at}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def ledger_append(*, customer: UUID, request: UUID | None, erased_at: datetime) -> None:
    directory = ledger_dir()
    directory.mkdir(parents=True, exist_ok=True)
    customer_text, request_text, at_text = str(customer), (str(request) if request else None), erased_at.isoformat()
    record = {"customer": customer_text, "request": request_text, "erased_at": at_text,
              "mac": _mac(customer_text, request_text, at_text)}
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(directory / FILE_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ledger_read() -> Iterator[LedgerLine]:
    """Every valid line, oldest first (a customer may appear more than once)."""
    path = ledger_dir() / FILE_NAME
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                valid = hmac.compare_digest(
                    str(record.get("mac", "")),
                    _mac(record["customer"], record.get("request"), record["erased_at"]),
                )
                if not valid:
                    raise ValueError("mac")
                yield LedgerLine(
                    customer=UUID(record["customer"]),
                    request=UUID(record["request"]) if record.get("request") else None,
                    erased_at=datetime.fromisoformat(record["erased_at"]),
                )
            except (ValueError, KeyError, TypeError):
                logger.error("erasure ledger line rejected", extra={"event": "ledger.bad_line", "count": number})
