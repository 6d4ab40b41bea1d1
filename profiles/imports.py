"""CSV import machinery: reading, validation, chunking, encrypted chunk storage, reporting, and a registry
of importers by ``--source``.

profiles registers the importers for ``crm``, ``erp``, ``support`` and ``web`` (see :mod:`profiles.importers`).
Other apps register their own from ``AppConfig.ready()`` (consent registers ``consent``)::

    from profiles.imports import RowImporter, register_importer

    class ConsentImporter(RowImporter):
        kinds = ("consents",)
        required_columns = {"consents": ("customer_external_id", "purpose", "action", "at")}

        def import_row(self, row, *, kind, source, actor):   # -> "created" | "updated" | "unchanged" | ...
            ...                                            # raise RowRejected(column, code) for bad rows

    register_importer("consent", ConsentImporter())

Rows never travel in task arguments: a background import stores each chunk in ``ImportChunk`` encrypted
with a per-job key (AES-256-GCM, wrapped under the KEK), and the task ``import_chunk(import_id, chunk_no)``
gets ids only; the chunk row is deleted once processed. Rejections hold line, column and a code, never
the value.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, Protocol
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from config import envelope
from config.errors import ApplicationError, ValidationFailed

from .models import ImportChunk, ImportJob

logger = logging.getLogger("profiles.imports")

OUTCOMES = ("created", "updated", "merged", "unchanged", "rejected")
MAX_STORED_REJECTIONS = 10_000
MAX_FIELD_CHARS = 100_000


@dataclass(frozen=True)
class CsvRow:
    line: int  # line number in the file where the record starts (the header is line 1)
    values: dict[str, str]

    def __repr__(self) -> str:  # never print values
        return f"CsvRow(line={self.line}, columns={sorted(self.values)})"


@dataclass(frozen=True)
class RowOutcome:
    line: int
    outcome: str  # one of OUTCOMES
    column: str | None = None
    code: str | None = None


class RowRejected(Exception):  # noqa: N818 -- a row outcome, not a failure of the import
    """Raised by an importer for a bad row: the column and a code, never the value."""

    def __init__(self, column: str | None, code: str) -> None:
        super().__init__(f"{column}: {code}")
        self.column = column
        self.code = code


class Importer(Protocol):
    kinds: tuple[str, ...]  # record kinds this source accepts; the first is the default
    required_columns: dict[str, tuple[str, ...]]

    def process_rows(self, rows: Sequence[CsvRow], *, kind: str, source: str, actor: str) -> list[RowOutcome]:
        """Import a chunk of rows; one outcome per row, in order. Must not let one row's failure undo another."""
        ...


class RowImporter:
    """Base class for row-at-a-time importers: each row in its own savepoint."""

    kinds: tuple[str, ...] = ()
    required_columns: dict[str, tuple[str, ...]] = {}

    def import_row(self, row: CsvRow, *, kind: str, source: str, actor: str) -> str:
        raise NotImplementedError

    def process_rows(self, rows: Sequence[CsvRow], *, kind: str, source: str, actor: str) -> list[RowOutcome]:
        return [process_row_in_savepoint(partial(self.import_row, row, kind=kind, source=source, actor=actor),
                                         row.line) for row in rows]


def process_row_in_savepoint(handler: Callable[[], str], line: int) -> RowOutcome:
    """Run ``handler`` in its own savepoint and turn errors into a rejected outcome (codes only)."""
    try:
        with transaction.atomic():
            outcome = handler()
        return RowOutcome(line=line, outcome=outcome)
    except (RowRejected, ApplicationError, IntegrityError) as exc:
        return rejected_outcome(exc, line)


def rejected_outcome(exc: Exception, line: int) -> RowOutcome:
    """The rejected outcome of a row that raised ``exc`` (codes only); other errors are re-raised."""
    from .errors import MergeConflict, RecordInvalid

    if isinstance(exc, RowRejected):
        return RowOutcome(line=line, outcome="rejected", column=exc.column, code=exc.code)
    if isinstance(exc, RecordInvalid):
        return RowOutcome(line=line, outcome="rejected", column=exc.field, code=exc.field_code)
    if isinstance(exc, MergeConflict):
        return RowOutcome(line=line, outcome="rejected", column=exc.reason.removeprefix("conflicting_"),
                          code="merge_conflict")
    if isinstance(exc, ApplicationError):
        field = getattr(exc, "field", None)
        return RowOutcome(line=line, outcome="rejected", column=field, code=exc.code)
    if isinstance(exc, IntegrityError):  # a concurrent writer took the same identifier: the row can be retried
        return RowOutcome(line=line, outcome="rejected", column=None, code="conflict")
    raise exc


_registry: dict[str, Importer] = {}


def register_importer(source: str, importer: Importer) -> None:
    _registry[source] = importer


def get_importer(source: str) -> Importer:
    importer = _registry.get(source)
    if importer is None:
        raise ValidationFailed("Unknown import source.", code="unknown_source")
    return importer


def registered_sources() -> list[str]:
    return sorted(_registry)


# --------------------------------------------------------------------------------------------------------
# Column mappings (external export layouts -> our columns)
# --------------------------------------------------------------------------------------------------------

Mapping = Callable[[dict[str, str]], dict[str, str]]
_mappings: dict[str, Mapping] = {}


def register_mapping(name: str, mapping: Mapping) -> None:
    _mappings[name] = mapping


def get_mapping(name: str) -> Mapping:
    mapping = _mappings.get(name)
    if mapping is None:
        raise ValidationFailed("Unknown column mapping.", code="unknown_mapping")
    return mapping


# --------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------


@dataclass
class ReadProblem:
    line: int
    code: str


def _decoded_lines(stream: IO[bytes], bad_lines: set[int], consumed: list[str] | None = None) -> Iterator[str]:
    """Physical lines decoded as UTF-8 one by one; undecodable lines are noted (and decoded lossily).
    Each line is also appended to ``consumed`` (the raw text of the record being read)."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.add(number)
            text = raw.decode("utf-8", errors="replace")
        if consumed is not None:
            consumed.append(text)
        yield text


# Columns whose values may span lines (free text and postal addresses). A line break in any other column can
# only come from a quote that was opened and not closed where it should have been: the next record(s) would be
# swallowed into that field. Importers may add their own with a ``multiline_columns`` attribute.
MULTILINE_COLUMNS = frozenset({"text", "comment", "comments", "note", "notes", "description", "body", "message",
                               "address", "street"})


def _quote_problem(header: Sequence[str], cells: Sequence[str], raw: str, multiline: frozenset[str]) -> bool:
    """True when the record shows an unbalanced quote: a quote still open at the end of the file (an odd
    number of quote characters in the record's text), or a line break inside a column that has none."""
    if raw.count('"') % 2:
        return True
    for index, cell in enumerate(cells):
        if ("\n" in cell or "\r" in cell) and (header[index] if index < len(header) else "") not in multiline:
            return True
    return False


def iter_csv(stream: IO[bytes], *, mapping: Mapping | None = None, problems: list[ReadProblem] | None = None,
             header_out: list[str] | None = None, multiline_columns: Iterable[str] = ()) -> Iterator[CsvRow]:
    """Yield the rows of a UTF-8 CSV (BOM allowed). Bad rows are reported in ``problems`` with their line
    (``too_many_columns``, ``invalid_encoding``, ``unbalanced_quote``); a broken CSV structure stops the read
    (``malformed_csv``). A header naming a column twice refuses the file (``duplicate_columns``)."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    bad_lines: set[int] = set()
    consumed: list[str] = []
    reader = csv.reader(_decoded_lines(stream, bad_lines, consumed))
    problems = problems if problems is not None else []
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise ValidationFailed("The file is not valid CSV.", code="malformed_csv") from exc
    if bad_lines:
        raise ValidationFailed("The header is not valid UTF-8.", code="invalid_encoding")
    header = [h.strip() for h in header]
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:  # the last one would silently win: refuse the file, naming the columns (schema names)
        raise ValidationFailed("Column names appear more than once.", code="duplicate_columns",
                               extra={"columns": duplicates})
    if header_out is not None:
        header_out.extend(header)
    multiline = MULTILINE_COLUMNS | frozenset(multiline_columns)
    previous_end = reader.line_num
    while True:
        consumed.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            problems.append(ReadProblem(line=previous_end + 1, code="malformed_csv"))
            return
        line = previous_end + 1
        previous_end = reader.line_num
        if bad_lines and any(line <= bad <= previous_end for bad in bad_lines):
            problems.append(ReadProblem(line=line, code="invalid_encoding"))
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        if _quote_problem(header, cells, "".join(consumed) if previous_end > line else "", multiline):
            problems.append(ReadProblem(line=line, code="unbalanced_quote"))
            continue
        if len(cells) > len(header):
            problems.append(ReadProblem(line=line, code="too_many_columns"))
            continue
        values = {name: cells[i] if i < len(cells) else "" for i, name in enumerate(header) if name}
        if mapping is not None:
            values = mapping(values)
        yield CsvRow(line=line, values=values)


# --------------------------------------------------------------------------------------------------------
# Jobs and encrypted chunks
# --------------------------------------------------------------------------------------------------------


def _job_aad(job_id: UUID, chunk_no: int) -> bytes:
    return f"import|{job_id}|{chunk_no}".encode()


def _job_key(job: ImportJob) -> bytes:
    return envelope.unwrap_data_key(envelope.WrappedKey(job.kek_id, bytes(job.wrapped_key)),
                                    customer_id=f"import:{job.id}")


def _encrypt_chunk(job: ImportJob, key: bytes, chunk_no: int, rows: Sequence[CsvRow]) -> bytes:
    payload = json.dumps([[r.line, r.values] for r in rows], separators=(",", ":")).encode()
    return envelope.encrypt(key, payload, _job_aad(job.id, chunk_no))


def _decrypt_chunk(job: ImportJob, chunk: ImportChunk) -> list[CsvRow]:
    payload = envelope.decrypt(_job_key(job), bytes(chunk.ciphertext), _job_aad(job.id, chunk.chunk_no))
    return [CsvRow(line=line, values=values) for line, values in json.loads(payload)]


@transaction.atomic
def import_job_create(*, source: str, kind: str | None, mapping: str | None, actor: str) -> ImportJob:
    importer = get_importer(source)
    kind = kind or importer.kinds[0]
    if kind not in importer.kinds:
        raise ValidationFailed("This source does not accept that kind of record.", code="unknown_kind")
    job_id = uuid.uuid4()
    wrapped = envelope.wrap_data_key(envelope.new_data_key(), customer_id=f"import:{job_id}")
    return ImportJob.objects.create(
        id=job_id, source=source, kind=kind, mapping=mapping or "", actor=actor, kek_id=wrapped.kek_id,
        wrapped_key=wrapped.wrapped, status=ImportJob.Status.RUNNING,
    )


def _record_outcomes(job_id: UUID, outcomes: Sequence[RowOutcome], *, chunk_done: bool,
                     extra_rejections: Sequence[RowOutcome] = ()) -> ImportJob:
    counts = dict.fromkeys(OUTCOMES, 0)
    for o in [*outcomes, *extra_rejections]:
        counts[o.outcome if o.outcome in counts else "updated"] += 1
    job = ImportJob.objects.select_for_update().get(id=job_id)
    for name, n in counts.items():
        setattr(job, name, getattr(job, name) + n)
    rejected = [{"line": o.line, "column": o.column, "code": o.code}
                for o in [*outcomes, *extra_rejections] if o.outcome == "rejected"]
    room = MAX_STORED_REJECTIONS - len(job.rejections)
    if rejected and room > 0:
        job.rejections = sorted([*job.rejections, *rejected[:room]], key=lambda r: r["line"])
    if chunk_done:
        job.chunks_done += 1
    job.save()
    return job


def _finish_if_done(job: ImportJob) -> None:
    if job.status != ImportJob.Status.RUNNING or job.chunks_done < job.chunks_total:
        return
    job.status = ImportJob.Status.COMPLETED
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "finished_at"])
    from audit.services import governance_record

    governance_record(
        kind="import.completed", actor=job.actor, subject=None,
        details={"import": str(job.id), "source": job.source, "kind": job.kind, "total": job.total_rows,
                 **{name: getattr(job, name) for name in OUTCOMES}},
    )
    # ("created" is a LogRecord attribute and cannot be passed as an extra field.)
    logger.info("import completed", extra={"job": str(job.id), "source": job.source, "total": job.total_rows,
                                           "count": job.created, "updated": job.updated, "merged": job.merged,
                                           "rejected": job.rejected})


def import_chunk_process(*, job_id: UUID, chunk_no: int) -> bool:
    """Process one stored chunk (idempotent: returns False when it is already gone). One transaction:
    rows (each in its own savepoint), counters, and the deletion of the encrypted chunk."""
    with transaction.atomic():
        job = ImportJob.objects.filter(id=job_id).first()
        if job is None:
            return False
        chunk = ImportChunk.objects.select_for_update().filter(job_id=job_id, chunk_no=chunk_no).first()
        if chunk is None:
            return False
        rows = _decrypt_chunk(job, chunk)
        outcomes = get_importer(job.source).process_rows(rows, kind=job.kind, source=job.source,
                                                         actor=job.actor)
        chunk.delete()
        job = _record_outcomes(job_id, outcomes, chunk_done=True)
        _finish_if_done(job)
    return True


def _fail(job_id: UUID) -> None:
    with transaction.atomic():
        ImportChunk.objects.filter(job_id=job_id).delete()
        ImportJob.objects.filter(id=job_id).update(status=ImportJob.Status.FAILED, finished_at=timezone.now())


def run_import(
    *, stream: IO[bytes], source: str, actor: str, kind: str | None = None, mapping: str | None = None,
    chunk_rows: int | None = None, background: bool | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportJob:
    """Import a CSV file. Small files are processed in-process, chunk by chunk; with ``background`` (default:
    when the file has more than one chunk) the chunks are stored encrypted and ``import_chunk`` tasks are
    queued on commit. ``progress(n)`` is called with the number of rows handled (or stored)."""
    importer = get_importer(source)
    mapper = get_mapping(mapping) if mapping else None
    chunk_rows = chunk_rows or settings.IMPORT_CHUNK_ROWS
    job = import_job_create(source=source, kind=kind, mapping=mapping, actor=actor)
    kind = job.kind
    problems: list[ReadProblem] = []
    header: list[str] = []
    rows = iter_csv(stream, mapping=mapper, problems=problems, header_out=header,
                    multiline_columns=getattr(importer, "multiline_columns", ()))
    try:
        first = _take(rows, chunk_rows)
        _check_columns(importer, kind, header, mapper, first)
        second = _take(rows, chunk_rows) if first else []
        if background is None:
            background = bool(second)
        chunk_no = 0
        key = _job_key(job) if background else b""
        pending = [first, second]
        while pending:
            chunk = pending.pop(0)
            if not chunk:
                break
            if not pending:
                pending.append(_take(rows, chunk_rows))
            chunk_no += 1
            if background:
                with transaction.atomic():
                    ImportChunk.objects.create(job=job, chunk_no=chunk_no, ciphertext=_encrypt_chunk(job, key, chunk_no, chunk),
                                               rows=len(chunk))
                    ImportJob.objects.filter(id=job.id).update(total_rows=F("total_rows") + len(chunk))
            else:
                with transaction.atomic():
                    outcomes = importer.process_rows(chunk, kind=kind, source=source, actor=actor)
                    ImportJob.objects.filter(id=job.id).update(total_rows=F("total_rows") + len(chunk),
                                                               chunks_total=F("chunks_total") + 1)
                    _record_outcomes(job.id, outcomes, chunk_done=True)
            if progress is not None:
                progress(len(chunk))
    except BaseException:
        _fail(job.id)
        raise
    read_rejections = [RowOutcome(line=p.line, outcome="rejected", column=None, code=p.code) for p in problems]
    with transaction.atomic():
        ImportJob.objects.filter(id=job.id).update(total_rows=F("total_rows") + len(problems))
        if background:
            ImportJob.objects.filter(id=job.id).update(chunks_total=chunk_no)
        job = _record_outcomes(job.id, [], chunk_done=False, extra_rejections=read_rejections)
        if background and chunk_no:
            from .tasks import import_chunk

            for n in range(1, chunk_no + 1):
                import_chunk.delay_on_commit(str(job.id), n)
        else:
            _finish_if_done(job)
    job.refresh_from_db()
    return job


def _take(rows: Iterator[CsvRow], n: int) -> list[CsvRow]:
    out: list[CsvRow] = []
    for row in rows:
        out.append(row)
        if len(out) >= n:
            break
    return out


def _check_columns(importer: Importer, kind: str, header: list[str], mapper: Mapping | None,
                   first: list[CsvRow]) -> None:
    required = importer.required_columns.get(kind, ())
    present = set(first[0].values) if (mapper is not None and first) else set(header)
    if mapper is not None and not first:
        return
    missing = [c for c in required if c not in present]
    if missing:
        raise ValidationFailed("Required columns are missing.", code="missing_columns",
                               extra={"columns": missing})


def summary(job: ImportJob) -> dict[str, Any]:
    return {"import": str(job.id), "status": job.status, "total": job.total_rows,
            **{name: getattr(job, name) for name in OUTCOMES}}
