"""Canary customers: unique fake name, e-mail, phone, IBAN, ticket phrase and CRM attribute, created through the
real services (encrypted fields, blind indexes, pseudonymized ticket text with the original kept encrypted),
with consent and one served (recorded) automated decision."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Canary:
    customer_id: uuid.UUID
    name: str
    email: str
    phone: str  # E.164
    iban: str
    phrase: str
    external_id: str
    attribute: str = ""  # a plain CRM attribute value (lifecycle_stage), encrypted under the customer's key

    @property
    def needles(self) -> dict[str, str]:
        return {"name": self.name, "surname": self.name.split()[-1], "email": self.email,
                "phone": self.phone, "phone_national": self.phone[3:], "iban": self.iban, "phrase": self.phrase,
                "external_id": self.external_id, **({"attribute": self.attribute} if self.attribute else {})}


_DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def make_canary(tag: str, i: int, *, serve: bool = True) -> Canary:
    from consent.services import consent_grant
    from tests.factories import make_customer, make_order, make_ticket

    surname = f"Quenwhistle{tag}{i:03d}"
    canary_name = f"Zorblat {surname}"
    email = f"canary-{tag}-{i:03d}@example.com"
    phone = f"+4477{int(tag, 16) % 9000 + 1000:04d}{i:04d}"  # unique per tag and index
    iban = f"GB82ZZCN{tag.upper()}{i:06d}"
    # letters only: a phrase with a run of digits can look like a number to the pseudonymizer and be rewritten
    phrase = "zorgleflux-" + f"{tag}-{i:03d}".translate(_DIGITS_AS_LETTERS)
    external_id = f"CRM-{tag}-{i:03d}"
    attribute = "stagecanary-" + f"{tag}-{i:03d}".translate(_DIGITS_AS_LETTERS)
    cid = make_customer(name=canary_name, email=email, phone=phone, personal={"iban": iban}, source="crm",
                        external_id=external_id, attributes={"lifecycle_stage": attribute, "seats": 3},
                        feature_attributes=["seats"])
    make_order(cid, amount="120.00", days_ago=40)
    make_order(cid, amount="80.50", days_ago=10)
    make_ticket(cid, days_ago=5, source="support",
                text=f"Hello, this is {canary_name}. The order arrived broken, reference word {phrase} again. "
                     f"Please refund {iban} and call me on {phone}.")
    consent_grant(customer_id=cid, purpose="automated_scoring", source="web", channel="web", actor="job:test-dsr")
    if serve:
        from scoring.services import score_serve

        score_serve(customer_id=cid, purpose="automated_scoring", requester="api:support-desk")
    return Canary(cid, canary_name, email, phone, iban, phrase, external_id, attribute)


def new_tag() -> str:
    return uuid.uuid4().hex[:6]
