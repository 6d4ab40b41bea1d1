"""Shared test factories, built on the profiles services (so every customer is created the real way:
encrypted personal fields, blind indexes, source identity, pseudonymized ticket text).

    from tests.factories import make_customer, make_order

    cid = make_customer(email="ada@example.com", orders=3, tickets=1)
    make_order(cid, amount="120.00", days_ago=10)

``None`` for name/email/phone means "generate a unique fake value"; ``""`` means "leave the field out".
Pass ``seed`` for reproducible values (the same seed gives the same person, so the second call upserts).
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from django.utils import timezone
from faker import Faker

ACTOR = "job:test-factory"

_TICKET_TEMPLATES = (
    "Hello, my last order arrived damaged. Please call me back. Regards, {name}",
    "I cannot log in to my account since yesterday. This is {name}, reachable at {email}.",
    "Invoice question: the amount looks wrong. Thanks, {name}",
)


def _rng(seed: int | None) -> random.Random:
    return random.Random(seed) if seed is not None else random.Random(uuid.uuid4().int)  # noqa: S311


def _fake_phone(rng: random.Random, region: str) -> str:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE) or \
        phonenumbers.example_number_for_type("GB", phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    keep = max(len(national) - 6, 1)
    digits = national[:keep] + "".join(str(rng.randrange(10)) for _ in range(len(national) - keep))
    return f"+{example.country_code}{digits}"


def _split_locale(locale: str) -> tuple[str, str]:
    language, _, country = locale.replace("-", "_").partition("_")
    return language.lower() or "en", (country or "GB").upper()


def _ago(days_ago: float, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=days_ago)


def make_customer(
    *,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    locale: str = "en_GB",
    source: str = "crm",
    external_id: str | None = None,
    orders: int = 0,
    tickets: int = 0,
    interactions: int = 0,
    seed: int | None = None,
    address: str | None = "",
    company: str | None = "",
    date_of_birth: str | None = "",
    attributes: dict[str, Any] | None = None,
    feature_attributes: list[str] | None = None,
    personal: dict[str, str | None] | None = None,
    actor: str = ACTOR,
) -> uuid.UUID:
    """Create (or upsert) a customer through ``profiles.services.customer_ingest`` and return the pseudonym.

    ``orders``/``tickets``/``interactions`` add that many facts (orders from the ERP, tickets from the support
    desk naming the customer, web logins), spread over the last year.
    """
    from profiles.services import customer_ingest

    rng = _rng(seed)
    language, country = _split_locale(locale)
    try:
        fake = Faker(f"{language}_{country}")
    except AttributeError:
        fake = Faker("en_GB")
    fake.seed_instance(rng.randrange(2**32))
    tag = f"{rng.randrange(16**8):08x}"
    if name is None:
        name = fake.name()
    if email is None:
        email = f"customer.{tag}@example.com"
    if phone is None:
        phone = _fake_phone(rng, country)
    if address is None:
        address = fake.address().replace("\n", ", ")
    if company is None:
        company = fake.company()
    if date_of_birth is None:
        date_of_birth = fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat()
    values: dict[str, str | None] = {
        "name": name or None,
        "email": email or None,
        "phone": phone or None,
        "address": address or None,
        "company": company or None,
        "date_of_birth": date_of_birth or None,
        "preferred_language": language,
        **(personal or {}),
    }
    result = customer_ingest(
        source=source,
        external_id=external_id or f"{source.upper()}-{tag}",
        personal=values,
        attributes=attributes,
        feature_attributes=feature_attributes,
        actor=actor,
        country=country,
    )
    cid = result.customer_id
    for i in range(orders):
        make_order(cid, amount=Decimal(rng.randrange(1000, 50000)) / 100, days_ago=rng.uniform(1, 365),
                   external_id=f"ORD-{tag}-{i}")
    for i in range(tickets):
        template = _TICKET_TEMPLATES[i % len(_TICKET_TEMPLATES)]
        make_ticket(cid, days_ago=rng.uniform(1, 365), external_id=f"TCK-{tag}-{i}",
                    text=template.format(name=name or "a customer", email=email or "my usual address"))
    for i in range(interactions):
        make_interaction(cid, kind="login", days_ago=rng.uniform(1, 365), external_id=f"INT-{tag}-{i}")
    return cid


def set_attributes(customer_id: uuid.UUID, attributes: dict[str, Any], **columns: Any) -> None:
    """Overwrite a customer's CRM attributes behind the services' back (bypassing ingest validation), encrypted
    under its data key as stored; ``columns`` are other Customer columns to set in the same UPDATE."""
    from profiles import data_keys
    from profiles.attribute_sealing import ATTRIBUTE_FIELDS, attributes_seal
    from profiles.models import Customer

    blob, version = attributes_seal(data_keys.key_get(customer_id), attributes)
    Customer.objects.filter(id=customer_id).update(**dict(zip(ATTRIBUTE_FIELDS, (blob, version), strict=True)),
                                                   **columns)


def _ref(customer_id: uuid.UUID) -> dict[str, Any]:
    return {"customer_id": customer_id, "actor": ACTOR}


def make_order(
    customer_id: uuid.UUID,
    *,
    amount: Decimal | str | float,
    days_ago: float,
    margin: Decimal | str | float | None = None,
    returned: bool = False,
    days_late: int | None = None,
    currency: str = "EUR",
    category: str = "",
    kind: str = "order",
    source: str = "erp",
    external_id: str | None = None,
    now: datetime | None = None,
) -> int:
    from profiles.services import order_ingest

    return order_ingest(
        source=source, external_id=external_id or f"ORD-{uuid.uuid4().hex}", ordered_at=_ago(days_ago, now),
        amount=str(amount), margin=None if margin is None else str(margin), returned=returned,
        days_late=days_late, currency=currency, category=category, kind=kind, **_ref(customer_id),
    ).fact_id


def make_interaction(
    customer_id: uuid.UUID,
    *,
    kind: str = "login",
    days_ago: float = 1,
    count: int = 1,
    source: str = "web",
    external_id: str | None = None,
    now: datetime | None = None,
) -> int:
    from profiles.services import interaction_ingest

    return interaction_ingest(
        source=source, kind=kind, at=_ago(days_ago, now), count=count,
        external_id=external_id or f"INT-{uuid.uuid4().hex}", **_ref(customer_id),
    ).fact_id


def make_ticket(
    customer_id: uuid.UUID,
    *,
    days_ago: float = 1,
    text: str = "My parcel has not arrived yet.",
    closed_after_days: float | None = 1,
    channel: str = "email",
    escalated: bool = False,
    satisfaction: int | None = None,
    category: str = "delivery",
    source: str = "support",
    external_id: str | None = None,
    now: datetime | None = None,
) -> int:
    from profiles.services import ticket_ingest

    opened = _ago(days_ago, now)
    closed = None if closed_after_days is None else min(opened + timedelta(days=closed_after_days), now or timezone.now())
    return ticket_ingest(
        source=source, external_id=external_id or f"TCK-{uuid.uuid4().hex}", opened_at=opened, closed_at=closed,
        channel=channel, escalated=escalated, satisfaction=satisfaction, category=category, text=text,
        **_ref(customer_id),
    ).fact_id


def make_review(customer_id: uuid.UUID, *, rating: int, days_ago: float = 1, text: str = "",
                source: str = "web", external_id: str | None = None, now: datetime | None = None) -> int:
    from profiles.services import review_ingest

    return review_ingest(source=source, external_id=external_id or f"REV-{uuid.uuid4().hex}",
                         at=_ago(days_ago, now), rating=rating, text=text, **_ref(customer_id)).fact_id


def make_nps(customer_id: uuid.UUID, *, score: int, days_ago: float = 1, comment: str = "",
             source: str = "web", external_id: str | None = None, now: datetime | None = None) -> int:
    from profiles.services import nps_ingest

    return nps_ingest(source=source, external_id=external_id or f"NPS-{uuid.uuid4().hex}",
                      at=_ago(days_ago, now), score=score, comment=comment, **_ref(customer_id)).fact_id


def make_referral(customer_id: uuid.UUID, *, days_ago: float = 1, converted: bool = False,
                  source: str = "crm", external_id: str | None = None, now: datetime | None = None) -> int:
    from profiles.services import referral_ingest

    return referral_ingest(source=source, external_id=external_id or f"REF-{uuid.uuid4().hex}",
                           at=_ago(days_ago, now), converted=converted, **_ref(customer_id)).fact_id
