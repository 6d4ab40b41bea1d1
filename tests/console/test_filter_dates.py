"""Low finding: the console answered 500 to date_to=9999-12-31."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

PAGES = ["/console/decisions/", "/console/access/", "/console/governance/", "/console/decisions/export.csv",
         "/console/access/export.csv"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("query", ["date_to=9999-12-31", "date_from=0001-01-01&date_to=9999-12-31",
                                   "date_from=9999-12-31", "date_to=0001-01-01"])
def test_extreme_dates_do_not_break_console_filters(dpo_client, path, query):
    response = dpo_client.get(f"{path}?{query}")
    assert response.status_code == 200, (path, query, response.status_code)


def test_the_last_day_has_no_upper_bound_and_keeps_every_record(dpo_client):
    from audit.selectors import access_queryset
    from audit.services import access_record

    access_record(actor="user:dpo", purpose="accountability", subject=None, what="probe", details={})
    everything = access_queryset(filters={}).count()
    assert everything >= 1
    from datetime import date

    assert access_queryset(filters={"date_to": date(9999, 12, 31)}).count() == everything
    assert access_queryset(filters={"date_to": date(2000, 1, 1)}).count() == 0
