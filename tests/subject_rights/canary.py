"""Canary customers: unique fake name, e-mail, phone, IBAN, ticket phrase and CRM attribute, created through the
real services (encrypted fields, blind indexes, pseudonymized ticket text with the original kept encrypted),
with consent and one served (recorded) automated decision. The dataclass and the scanners live in
``tests.privacy_scan``."""

from __future__ import annotations

import uuid

from tests.privacy_scan import Canary

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
    return Canary(customer_id=cid, name=canary_name, email=email, phone=phone, iban=iban, phrase=phrase,
                  external_id=external_id, attribute=attribute)


def new_tag() -> str:
    return uuid.uuid4().hex[:6]
