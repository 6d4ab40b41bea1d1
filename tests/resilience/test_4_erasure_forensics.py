"""Scenarios 4 and 5: erasure leaves no trace, and a restored backup is erased again.

A customer is seeded through the API with a canary string in every personal field, a personal and a plain CRM
attribute, and a support ticket that names them; scored, exported (access request, export built by the worker
and downloaded) and erased (the DPO executes the request in the console). After a CHECKPOINT and a Redis SAVE the
canaries are searched for, plainly and base64-encoded, in the raw PostgreSQL files (``base/``, ``pg_wal/``), the
PostgreSQL server log, the Redis dump and append-only file, the application logs and the export directory. Only
ciphertext under the shredded key may remain. A second customer, not erased, is the positive control: the same
search finds their clear ticket category in ``base/``, a second clear label of theirs written after the checkpoint
in ``pg_wal/``, and their canaries through the API.

A ``pg_dump`` taken before the erasure is restored into a new database: the customer is back there (the positive
control of the restore); ``manage.py replay_erasures`` (the erasure ledger lives outside the database) erases
them again, and a dump of the restored database no longer holds a canary.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.resilience.client import Api, Console, Db
from tests.resilience.servers import Stack, wait_for


@dataclass
class Canary:
    tag: str

    def __post_init__(self) -> None:
        t = self.tag
        letters = "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(6))
        self.first = "Oliver"
        self.last = "Kanar" + letters
        self.email = f"canary.{t}@example.org"
        self.digits = "".join(secrets.choice("0123456789") for _ in range(5))
        self.phone_written = f"07700 9{self.digits}"
        self.phone_e164 = f"+4477009{self.digits}"
        self.external_id = f"KANAR-{t}"
        self.street = f"Kanarstreet{letters}"
        self.company = f"Kanarco{letters}"
        self.job = f"Kanarjob{letters}"
        self.nickname = f"kanarnick{t}"
        self.attribute = f"kanarattr{t}"
        self.category = f"kanarcat{t}"

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def personal(self) -> dict[str, str]:
        """Every needle that must be gone after erasure (personal fields, attributes, the ticket's text)."""
        return {"name": self.last, "email": self.email, "phone": self.phone_e164.lstrip("+"),
                "phone_national": self.phone_written.replace(" ", ""), "external_id": self.external_id,
                "address": self.street, "company": self.company, "job_title": self.job,
                "personal_attribute": self.nickname, "attribute": self.attribute}


def _forms(needle: str) -> list[tuple[str, bytes]]:
    """The needle itself, and base64 of it at each of the three alignments (the stable inner part)."""
    raw = needle.encode()
    out = [("plain", raw)]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        inner = encoded[4 if shift else 0: -4]  # drop the groups that mix in neighbouring bytes
        if len(inner) >= 8:
            out.append((f"base64+{shift}", inner))
    return out


def _files(paths: Iterable[Path]) -> list[Path]:
    out = []
    for path in paths:
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out.extend(p for p in path.rglob("*") if p.is_file())
    return out


def _search(needles: dict[str, str], paths: Iterable[Path]) -> list[str]:
    files = _files(paths)
    hits = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for what, needle in needles.items():
            for form, pattern in _forms(needle):
                if pattern in data:
                    hits.append(f"{what} ({form}) in {path}")
    return hits


def _ingest(api: Api, c: Canary, *, category: str | None) -> str:
    record = {"source": "crm", "external_id": c.external_id, "name": c.name, "email": c.email,
              "phone": c.phone_written, "address": f"12 {c.street}, London", "company": c.company,
              "job_title": c.job, "country": "GB", "date_of_birth": "1981-02-03",
              "personal_attributes": {"nickname": c.nickname}, "attributes": {"loyalty_ref": c.attribute}}
    r = api.post("/api/v1/ingest/customers/", {"records": [record]})
    assert r.status_code == 200 and r.json()["summary"]["created"] == 1, r.text
    ticket = {"source": "support", "external_id": f"T-{c.external_id}", "customer_external_id": c.external_id,
              "customer_source": "crm", "opened_at": "2026-06-01T10:00:00Z", "channel": "email",
              "text": f"Hi, this is {c.name}. My order never arrived; please call me on {c.phone_written} or "
                      f"email {c.email}. Thanks, {c.last}"}
    if category:
        ticket["category"] = category
    r = api.post("/api/v1/ingest/tickets/", {"records": [ticket]})
    assert r.status_code == 200 and r.json()["summary"]["created"] == 1, r.text
    customer = api.post("/api/v1/customers/lookup", {"email": c.email}).json()["customer"]
    for purpose in ("automated_scoring", "service_prioritization"):
        r = api.post("/api/v1/consents/grant", {"customer": customer, "purpose": purpose, "source": "web",
                                                "channel": "web"})
        assert r.status_code in (200, 201), r.text
    r = api.score(customer)
    assert r.status_code == 200, r.text
    return customer


def _request(api: Api, sql: Db, body: dict, until: str) -> str:
    r = api.post("/api/v1/subject-requests", body)
    assert r.status_code in (200, 201), r.text
    request_id = r.json()["id"]
    wait_for(lambda: sql.value("SELECT status FROM subject_rights_subjectrequest WHERE id = %s", [request_id])
             == until, 120, f"the request to be {until}")
    return request_id


@dataclass
class Erased:
    erased: Canary
    control: Canary
    erased_id: str
    control_id: str
    backup: Path
    wal_label: str  # the kept customer's clear label written after the checkpoint (the WAL's positive control)


@pytest.fixture(scope="module")
def erased(stack: Stack, api: Api, sql: Db) -> Erased:
    a, b = Canary(secrets.token_hex(4)), Canary(secrets.token_hex(4))
    a_id = _ingest(api, a, category=None)
    b_id = _ingest(api, b, category=b.category)
    # exported: the access request's export is built by the worker, written encrypted, and downloaded
    request_id = _request(api, sql, {"type": "access", "customer": a_id}, "completed")
    export = api.get(f"/api/v1/subject-requests/{request_id}/export")
    assert export.status_code == 200 and a.email in export.text and a.last in export.text
    assert len(list((stack.root / "var" / "exports").glob("*"))) >= 1
    # a backup taken before the erasure
    backup = stack.root / "before-erasure.dump"
    subprocess.run([str(stack.pg.bin / "pg_dump"), "-Fc", "-h", "127.0.0.1", "-p", str(stack.pg.port), "-U",
                    "postgres", "-d", stack.db, "-f", str(backup)], check=True, capture_output=True)
    # erased: filed through the API, carried out by the DPO in the console
    request_id = _request(api, sql, {"type": "erasure", "customer": a_id}, "verified")
    console = Console(stack.base_url)
    console.login()
    r = console.post(f"/console/requests/{request_id}/execute/", {"confirm_pseudonym": a_id})
    assert r.status_code == 302, (r.status_code, r.text[:300])
    wait_for(lambda: sql.value("SELECT outcome FROM subject_rights_subjectrequest WHERE id = %s", [request_id])
             == "erased", 60, "the erasure")
    erased_at = sql.value("SELECT completed_at FROM subject_rights_subjectrequest WHERE id = %s", [request_id])
    # the worker vacuums the tables the erasure deleted from (subject_rights.tasks.vacuum_after_erasure)
    wait_for(lambda: sql.value("SELECT last_vacuum > %s FROM pg_stat_user_tables WHERE relname = "
                               "'profiles_customer'", [erased_at]), 120, "the post-erasure vacuum")
    wait_for(lambda: sql.value("SELECT count(*) FROM audit_pendingseal") == 0, 120, "the audit chain to be sealed")
    stack.pg.psql(stack.db, "CHECKPOINT")
    assert stack.redis.cli("SAVE").strip() == "OK"
    # The WAL's positive control: a clear label of the kept customer written after the checkpoint, so that the WAL
    # the search reads surely holds it (the CHECKPOINT may remove or recycle the segments before it, and with
    # them the kept customer's first label: seen in CI, where the scan of pg_wal/ then found neither customer).
    wal_label = f"kanarwal{secrets.token_hex(4)}"
    ticket = {"source": "support", "external_id": f"T2-{b.external_id}", "customer_external_id": b.external_id,
              "customer_source": "crm", "opened_at": "2026-06-02T10:00:00Z", "channel": "email",
              "text": "Where is my parcel?", "category": wal_label}
    r = api.post("/api/v1/ingest/tickets/", {"records": [ticket]})
    assert r.status_code == 200 and r.json()["summary"]["created"] == 1, r.text
    return Erased(a, b, a_id, b_id, backup, wal_label)


def test_erasure_leaves_no_canary_on_disk_in_logs_or_redis(stack: Stack, api: Api, sql: Db, erased: Erased) -> None:
    a, b = erased.erased, erased.control
    data = stack.pg.data
    places = [data / "base", data / "pg_wal", stack.pg.log, stack.redis.dir, stack.root / "logs",
              stack.root / "manage.log", stack.root / "var" / "exports"]
    # positive control: the search finds the non-erased customer's clear labels in the table files and the WAL
    control_hits = _search({"category": b.category}, [data / "base"])
    assert control_hits, "the positive control was not found in base/"
    assert _search({"category": erased.wal_label}, [data / "pg_wal"]), "the positive control was not found in pg_wal/"
    assert api.post("/api/v1/customers/lookup", {"email": b.email}).json()["customer"] == erased.control_id
    assert api.score(erased.control_id).status_code == 200
    # the erased customer: no canary anywhere
    hits = _search(a.personal(), places)
    assert not hits, "\n".join(hits)
    # and gone from the service
    assert api.post("/api/v1/customers/lookup", {"email": a.email}).status_code == 404
    assert api.score(erased.erased_id).status_code == 404
    for table, column in (("profiles_customer", "id"), ("profiles_customerkey", "customer_id"),
                          ("profiles_personalfield", "customer_id"), ("profiles_blindindexentry", "customer_id"),
                          ("scoring_customerscore", "customer_id")):
        assert sql.value(f"SELECT count(*) FROM {table} WHERE {column} = %s", [erased.erased_id]) == 0, table
    assert sql.value("SELECT count(*) FROM profiles_tombstone WHERE customer_id = %s", [erased.erased_id]) == 1


def test_restored_backup_is_erased_again_by_replay(stack: Stack, erased: Erased) -> None:
    restored = "scoring_restored"
    stack.pg.psql("postgres", f"CREATE DATABASE {restored}")
    subprocess.run([str(stack.pg.bin / "pg_restore"), "-h", "127.0.0.1", "-p", str(stack.pg.port), "-U", "postgres",
                    "-d", restored, "--no-owner", str(erased.backup)], check=True, capture_output=True)
    db = Db(stack, restored)
    # the restore brought the customer back (the positive control of this test)
    assert db.value("SELECT count(*) FROM profiles_customer WHERE id = %s", [erased.erased_id]) == 1
    out = stack.manage("replay_erasures", db=restored).stdout
    assert db.value("SELECT count(*) FROM profiles_customer WHERE id = %s", [erased.erased_id]) == 0, out
    for table in ("profiles_customerkey", "profiles_personalfield", "profiles_blindindexentry",
                  "scoring_customerscore"):
        assert db.value(f"SELECT count(*) FROM {table} WHERE customer_id = %s", [erased.erased_id]) == 0, table
    assert db.value("SELECT count(*) FROM profiles_customer WHERE id = %s", [erased.control_id]) == 1
    dump = subprocess.run([str(stack.pg.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(stack.pg.port), "-U",
                           "postgres", "-d", restored, "--data-only"], check=True, capture_output=True).stdout
    assert erased.control.category.encode() in dump  # positive control: a clear label of the kept customer
    text_hits = [what for what, needle in erased.erased.personal().items()
                 for _, pattern in _forms(needle) if pattern in dump]
    assert not text_hits, text_hits
    # a second replay finds nothing left to erase
    stack.manage("replay_erasures", db=restored)
    assert db.value("SELECT count(*) FROM profiles_customer WHERE id = %s", [erased.erased_id]) == 0
