"""Exports (access and portability): built encrypted on disk, downloaded once per token, deleted when expired."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit_services
from config import envelope
from config.envelope import DecryptionError, WrappedKey
from config.errors import NotFound
from config.file_modes import open_private, private_dir

from ..models import (
    Export,
    Outcome,
    RequestType,
    Status,
    SubjectRequest,
)
from .workflow import (
    WORKABLE,
    logger,
    request_close,
    request_lock,
    request_transition,
    sealed_bytes,
    subject_live,
    subject_of,
)


def export_start(req: SubjectRequest, *, actor: str) -> None:
    from subject_rights.tasks import build_export

    if req.status != Status.IN_PROGRESS:
        request_transition(req, Status.IN_PROGRESS, actor=actor, code="export_queued")
    build_export.delay_on_commit(str(req.id))


def _export_path(export: Export) -> Path:
    return Path(settings.EXPORT_DIR) / export.file_name


def _export_aad(export_id: UUID) -> bytes:
    return f"export|{export_id}".encode()


@transaction.atomic
def export_build(*, request_id: UUID, actor: str = "job:build_export") -> Export | None:
    """Build the subject's export (JSON, validated against the published schema), write it encrypted
    under a fresh per-export key, and complete the request. Idempotent; a no-op for closed requests."""
    from ..export import export_document, export_validate

    req = request_lock(request_id)
    if req.type not in (RequestType.ACCESS, RequestType.PORTABILITY) or req.status not in WORKABLE:
        return None
    live = Export.objects.filter(request=req, deleted_at__isnull=True).first()
    if live is not None:
        return live
    if not subject_live(req):
        request_close(req, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD)
        return None
    if req.status != Status.IN_PROGRESS:
        request_transition(req, Status.IN_PROGRESS, actor=actor)
    now = timezone.now()
    subject = subject_of(req)
    export = Export(id=uuid4(), request=req, subject=subject, created_at=now,
                    expires_at=now + timedelta(seconds=settings.EXPORT_LINK_TTL_SECONDS))
    document = export_document(customer_id=subject, request_id=req.id, request_type=req.type, generated_at=now)
    export_validate(document)
    plaintext = json.dumps(document, ensure_ascii=False, sort_keys=False, default=str).encode("utf-8")
    dek = envelope.new_data_key()
    wrapped = envelope.wrap_data_key(dek, customer_id=f"export:{export.id}")
    blob = envelope.encrypt(dek, plaintext, _export_aad(export.id))
    del plaintext, document
    export.kek_id = wrapped.kek_id
    export.wrapped_key = wrapped.wrapped
    export.size_bytes = len(blob)
    export.sha256 = hashlib.sha256(blob).hexdigest()
    path = _export_path(export)
    private_dir(path.parent)  # exports: directory 0700, files 0600 (config.file_modes)
    partial = path.with_suffix(".part")
    with os.fdopen(open_private(partial), "wb") as handle:
        handle.write(blob)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    try:
        export.save(force_insert=True)
        audit_services.access_record(actor=actor, purpose="dsr.access", subject=req.subject, what="export.build",
                                     details={"request": str(req.id), "export": str(export.id)})
        req.result = {**req.result, "export": str(export.id)}
        request_close(req, Status.COMPLETED, actor=actor, outcome=Outcome.EXPORTED)
    except Exception:
        path.unlink(missing_ok=True)  # the key was never committed: the file is unreadable anyway
        raise
    return export


def _export_live(export_id: UUID) -> Export:
    export = Export.objects.select_for_update().filter(id=export_id).first()
    if export is None or export.deleted_at is not None or export.expires_at <= timezone.now() \
            or not export.wrapped_key:
        raise NotFound()
    return export


@transaction.atomic
def export_download(*, export_id: UUID, actor: str) -> tuple[bytes, Export]:
    """Decrypt an export for download (an access record is written). NotFound once expired or shredded."""
    export = _export_live(export_id)
    try:
        blob = _export_path(export).read_bytes()
        dek = envelope.unwrap_data_key(WrappedKey(export.kek_id, sealed_bytes(export.wrapped_key)),
                                       customer_id=f"export:{export.id}")
        plaintext = envelope.decrypt(dek, blob, _export_aad(export.id))
    except (OSError, DecryptionError) as exc:
        raise NotFound() from exc
    export.downloads += 1
    export.save(update_fields=["downloads"])
    audit_services.access_record(actor=actor, purpose="dsr.access", subject=export.subject, what="export.download",
                                 details={"request": str(export.request_id), "export": str(export.id)})
    return plaintext, export


def exports_shred(queryset: Any) -> int:
    count = 0
    for export in queryset.select_for_update():
        _export_path(export).unlink(missing_ok=True)
        export.wrapped_key = None
        export.deleted_at = timezone.now()
        export.save(update_fields=["wrapped_key", "deleted_at"])
        count += 1
    return count


@transaction.atomic
def exports_delete_expired(*, now: datetime | None = None) -> int:
    """Delete expired export files and shred their keys; remove orphaned partial files."""
    now = now or timezone.now()
    count = exports_shred(Export.objects.filter(deleted_at__isnull=True, expires_at__lte=now))
    directory = Path(settings.EXPORT_DIR)
    if directory.is_dir():
        known = {e.file_name for e in Export.objects.filter(deleted_at__isnull=True)}
        cutoff = now.timestamp() - 3600
        for path in directory.iterdir():
            if path.is_file() and path.name not in known and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                count += 1
    if count:
        logger.info("expired exports deleted", extra={"event": "dsr.exports_deleted", "count": count})
    return count
