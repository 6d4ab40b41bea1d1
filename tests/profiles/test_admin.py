"""The admin is read-mostly and shows pseudonyms only."""

from __future__ import annotations

import pytest

from profiles.models import PersonalField
from tests.factories import make_customer

pytestmark = pytest.mark.django_db


def test_admin_lists_show_pseudonyms_only_and_personal_fields_are_not_editable(admin_client) -> None:
    cid = make_customer(name="Adminia Canarysdottir", email="adminia.canary@example.org", orders=1)
    field = PersonalField.objects.filter(customer_id=cid, field="name").get()
    pages = ["/admin/profiles/customer/", f"/admin/profiles/customer/{cid}/change/",
             "/admin/profiles/personalfield/", f"/admin/profiles/personalfield/{field.pk}/change/",
             "/admin/profiles/sourceidentity/", "/admin/profiles/blindindexentry/", "/admin/profiles/customerkey/"]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert "Canarysdottir" not in html and "adminia.canary" not in html, page
    assert str(cid) in admin_client.get("/admin/profiles/customer/").content.decode()
    response = admin_client.post(f"/admin/profiles/personalfield/{field.pk}/change/", {"field": "email"})
    assert response.status_code == 403
    assert PersonalField.objects.get(pk=field.pk).field == "name"
    assert admin_client.post(f"/admin/profiles/customer/{cid}/delete/", {"post": "yes"}).status_code == 403
