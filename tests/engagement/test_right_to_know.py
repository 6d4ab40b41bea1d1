"""The customer can know their holdout assignment: on the "why" page and in their export's decisions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.engagement.helpers import SCORING, grant

pytestmark = pytest.mark.django_db


def test_why_page_tells_the_customer_about_the_holdout(client: Any, mailoutbox: Any, settings: Any,
                                                        django_capture_on_commit_callbacks: Any) -> None:
    from engagement import services
    from tests.factories import make_customer

    settings.ENGAGEMENT_HOLDOUT_SHARE = 0.5
    cid = make_customer(email="holdout.reader@example.com")
    grant(cid, SCORING)
    assignment = services.holdout_assign(customer_id=cid)
    client.get("/me/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/me/", {"type": "restriction", "email": "holdout.reader@example.com", "token": "why-h"})
    code = re.search(r"\b(\d{8})\b", mailoutbox[-1].body).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        status_url = client.post("/me/verify/", {"code": code})["Location"]
    token = status_url.rstrip("/").split("/")[-1]
    html = client.get(f"/me/status/{token}/why/").content.decode()
    expected = "comparison group" if assignment.holdout else "may receive proactive service calls"
    assert expected in html and "keyed hash" in html
