"""Scenario 7: 50 concurrent POSTs of one subject request with one Idempotency-Key, over HTTP to gunicorn's
worker processes: exactly one request (and one export) comes of it; every answer is that request or a 409."""

from __future__ import annotations

import secrets
import threading

from tests.resilience.client import Api, Db
from tests.resilience.servers import wait_for


def test_fifty_concurrent_posts_with_one_idempotency_key_have_one_effect(api: Api, sql: Db) -> None:
    customer = str(sql.value("SELECT id FROM profiles_customer WHERE merged_into_id IS NULL ORDER BY id LIMIT 1"))
    before = sql.value("SELECT count(*) FROM subject_rights_subjectrequest")
    exports_before = sql.value("SELECT count(*) FROM subject_rights_export WHERE subject = %s", [customer])
    key = f"resilience-{secrets.token_hex(8)}"
    barrier = threading.Barrier(50)
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def post() -> None:
        barrier.wait()
        try:
            r = api.post("/api/v1/subject-requests", {"type": "access", "customer": customer},
                         headers={"Idempotency-Key": key})
            answer = (r.status_code, r.json())
        except Exception as exc:  # noqa: BLE001 - a hang or a dropped connection is a finding
            answer = (0, {"error": repr(exc)})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=post) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == 50
    assert not [a for a in answers if a[0] == 0], [a for a in answers if a[0] == 0][:3]
    statuses = sorted({status for status, _ in answers})
    assert set(statuses) <= {200, 201, 409}, statuses
    ids = {body["id"] for status, body in answers if status in (200, 201)}
    assert len(ids) == 1, ids
    assert sum(1 for status, _ in answers if status == 201) <= 1
    for status, body in answers:
        if status == 409:
            assert body["code"] and body["detail"], body
    assert sql.value("SELECT count(*) FROM subject_rights_subjectrequest") == before + 1
    [request_id] = ids
    wait_for(lambda: sql.value("SELECT count(*) FROM subject_rights_export WHERE subject = %s", [customer])
             == exports_before + 1, 120, "the one export to be built")
    assert sql.value("SELECT count(*) FROM subject_rights_export WHERE request_id = %s", [request_id]) == 1
    # the same key with a different body is a conflict, and changes nothing
    r = api.post("/api/v1/subject-requests", {"type": "portability", "customer": customer},
                 headers={"Idempotency-Key": key})
    assert r.status_code == 409, r.text
    assert sql.value("SELECT count(*) FROM subject_rights_subjectrequest") == before + 1
