"""Issue 18 at ingestion: each ticket's language is detected (the customer's country as the prior) and
stored with the pseudonymized text; the customer's own identifiers are caught in the ticket's language."""

from __future__ import annotations

import pytest

from profiles.models import Customer, Ticket
from tests.factories import make_customer, make_ticket

pytestmark = pytest.mark.django_db


def test_ticket_language_is_stored_and_polish_locative_is_caught() -> None:
    cid = make_customer(name="Jan Kowalski", email="jan.kowalski@example.pl", locale="pl_PL",
                        source="support", external_id="SUP-18")
    make_ticket(cid, text="Dzień dobry, paczka leży u Kowalskim od tygodnia. Proszę pisać: jan kropka "
                          "kowalski małpa example kropka pl.", source="support", external_id="T-18a")
    make_ticket(cid, text="Hello, the parcel is still with my neighbour, please call me back tomorrow.",
                source="support", external_id="T-18b")
    make_ticket(cid, text="", source="support", external_id="T-18c")

    by_text = {t.language: t for t in Ticket.objects.filter(customer_id=cid).exclude(text_pseudonymized="")}
    assert set(by_text) == {"pl", "en"}
    pl = by_text["pl"].text_pseudonymized
    assert "owalsk" not in pl and "example" not in pl
    assert "<PERSON_1>" in pl and "<EMAIL_1>" in pl
    assert Ticket.objects.get(customer_id=cid, text_pseudonymized="").language == ""


def test_short_ticket_takes_the_customers_country_as_the_prior() -> None:
    cid = make_customer(name="Aino Laine", locale="fi_FI", source="support", external_id="SUP-19")
    Customer.objects.filter(id=cid).update(country="FI")
    make_ticket(cid, text="Kiitos paljon!", source="support", external_id="T-19")
    assert Ticket.objects.get(customer_id=cid).language == "fi"
