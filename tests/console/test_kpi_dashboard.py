"""The KPI dashboard in the DPO console: access, SVG charts without scripts, suppressed cells, CSV downloads."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.kpis.test_kpis import fixture  # noqa: F401 - the shared fixture

pytestmark = pytest.mark.django_db
QUERY = {"date_from": "2025-02-01", "date_to": "2025-03-31"}


def test_dashboard_needs_the_dpo_group(client: Any, django_user_model: Any) -> None:
    assert client.get("/console/kpis/").status_code == 302
    django_user_model.objects.create_user(username="staff", password="pw-123456789")
    client.login(username="staff", password="pw-123456789")
    assert client.get("/console/kpis/").status_code == 403
    assert client.get("/console/kpis/export/funnel.csv").status_code == 403


def test_dashboard_shows_svg_charts_suppression_funnel_and_no_scripts(dpo_client: Any, fixture: Any) -> None:  # noqa: F811
    response = dpo_client.get("/console/kpis/", QUERY)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") >= 6
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "suppressed" in html and "Insufficient data" in html and "Action funnel" in html
    assert "upsell_offer" in html


def test_csv_downloads_mark_suppressed_cells(dpo_client: Any, fixture: Any) -> None:  # noqa: F811
    response = dpo_client.get("/console/kpis/export/revenue.csv", QUERY)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["tier", "month", "value", "n"]
    by_key = {(r[0], r[1]): r[2:] for r in rows[1:]}
    assert by_key[("VIP", "2025-02")] == ["80.0", "2"]
    assert by_key[("VIP", "2025-03")] == ["suppressed", "suppressed"]
    assert by_key[("Premium", "2025-03")] == ["suppressed", "suppressed"]
    assert by_key[("All tiers", "2025-03")] == ["140.0", "3"]
    funnel = list(csv.reader(io.StringIO(dpo_client.get("/console/kpis/export/funnel.csv").content.decode())))
    assert funnel[0][:3] == ["type", "created", "claimed"]
    assert ["upsell_offer", "3", "0", "3", "0", "0", "0", "2", "1", "0", "0", "0"] in funnel
    uplift = dpo_client.get("/console/kpis/export/uplift.csv", QUERY)
    assert uplift.status_code == 200 and "insufficient_data" in uplift.content.decode()
    assert dpo_client.get("/console/kpis/export/nonsense.csv", QUERY).status_code == 404
