"""Demo data: realistic multi-locale customers with 18 months of history, generated with a fixed seed.

:func:`build_plan` is pure (no database, no clock): the same ``(customers, seed)`` always gives the same plan,
with every time expressed as "days ago". :func:`load_plan` writes a plan through the real services --
``profiles.services.customer_ingest`` (encryption, blind indexes), ``profiles.services.facts_ingest_batch``
(one Presidio batch call per chunk for ticket/review/NPS text) and ``consent.services`` -- so the demo data
is stored exactly as production data would be.

Cause and effect: behaviour comes from a hidden per-customer state (:class:`Latent`) simulated week by week
from sign-up to today (:func:`_simulate`), never from a label. Health falls after a poorly handled support
contact (slow first response, low satisfaction, escalation) or for outside reasons (a decline), and as it falls
orders thin out, invoices are paid late, returns and visits change, tickets turn negative and escalate, NPS drops;
below :data:`CHURN_HEALTH` the customer has left. Growth and breadth raise spend and open new categories (upsell);
advocacy drives NPS answers, reviews and referrals. Every fact is emitted at the time it happens from the state
at that time, so features as of a cutoff never see what comes after it (the labels of ``manage.py train``).
Ticket texts (``consent.demo_texts``) are in the customer's language with a mood that follows the state; tickets
carry a first-response time by segment and channel.

Everything personal here is fake (Faker); e-mail addresses use the reserved ``example.*`` domains.
"""

from __future__ import annotations

import math
import random
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import phonenumbers
from django.db import transaction
from django.utils import timezone

from config.chunking import chunked
from consent.demo_texts import REVIEW_TEXTS, TICKET_CATEGORIES, TICKET_TEXTS

ACTOR = "job:demo_seed"
MONTHS = 18
HISTORY_DAYS = 548  # 18 months

LOCALES: tuple[tuple[str, float], ...] = (
    ("en_GB", 0.30), ("de_DE", 0.20), ("nl_NL", 0.15), ("pl_PL", 0.12), ("sv_SE", 0.13), ("fi_FI", 0.10),
)
CONSENT_SHARE = 0.80  # automated_scoring + service_prioritization
MARKETING_SHARE = 0.50
SCORING_PURPOSES = ("automated_scoring", "service_prioritization")
CATEGORIES = ("electronics", "home", "fashion", "sports", "books", "garden", "toys", "beauty", "kitchen", "pets",
              "office", "stationery")

@dataclass
class ConsentStep:
    purpose: str
    action: str  # "grant" | "withdraw"
    days_ago: float
    channel: str
    source: str


@dataclass
class DemoCustomer:
    index: int
    locale: str
    country: str
    external_id: str
    personal: dict[str, str | None]
    segment: str  # "vip" | "regular" | "occasional"
    churner: bool  # left, or on the way out, by the end of the history (from the latent state; never stored)
    signup_days_ago: float
    ip: str
    orders: list[dict[str, Any]] = field(default_factory=list)
    interactions: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    nps: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    consents: list[ConsentStep] = field(default_factory=list)
    latent: Latent | None = None  # the hidden state at the end of the history (never stored)

    def consent_now(self, purpose: str) -> str | None:
        """The latest action for ``purpose`` ("grant" | "withdraw"), or None if never asked."""
        steps = [s for s in self.consents if s.purpose == purpose]
        return min(steps, key=lambda s: s.days_ago).action if steps else None


@dataclass
class DemoPlan:
    seed: int
    customers: list[DemoCustomer]

    def expected_granted(self, purpose: str) -> int:
        return sum(1 for c in self.customers if c.consent_now(purpose) == "grant")

    def expected_withdrawn(self, purpose: str) -> int:
        return sum(1 for c in self.customers if c.consent_now(purpose) == "withdraw")

    def count(self, attribute: str) -> int:
        return sum(len(getattr(c, attribute)) for c in self.customers)


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return ".".join(part for part in "".join(ch if ch.isalnum() else " " for ch in folded).split()) or "customer"


def _phone(rng: random.Random, region: str) -> str:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None, region
    national = str(example.national_number)
    keep = max(len(national) - 6, 1)
    digits = national[:keep] + "".join(str(rng.randrange(10)) for _ in range(len(national) - keep))
    parsed = phonenumbers.parse(f"+{example.country_code}{digits}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _weighted(rng: random.Random, options: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options], k=1)[0]


# Behaviour model (see build_plan): segment -> base order rate and basket size; every customer carries a latent
# state that evolves week by week and drives what they do.
WEEK = 7.0
SEGMENTS: tuple[tuple[str, float], ...] = (("vip", 0.07), ("regular", 0.63), ("occasional", 0.30))
ORDERS_PER_YEAR = {"vip": (8.0, 26.0), "regular": (3.0, 9.0), "occasional": (0.8, 2.2)}
# yearly probability that something outside the shop (a competitor, changed needs) starts a decline
DECLINE_PER_YEAR = {"vip": 0.2, "regular": 0.18, "occasional": 0.25}
# share of new customers who never really engage: after the first order or two they drift away
ONE_AND_DONE = {"vip": 0.05, "regular": 0.2, "occasional": 0.45}
# median hours to the first response of support, by segment (service levels differ) and channel
FIRST_RESPONSE_HOURS = {"vip": 1.5, "regular": 9.0, "occasional": 20.0}
CHANNEL_SPEED = {"phone": 0.08, "chat": 0.25, "email": 1.0, "web": 1.3}
CHURN_HEALTH = 0.15  # below this the customer has left (no more orders, visits or surveys)
INTERACTION_RATES = {  # per week at full engagement: (kind, vip, regular, occasional)
    "login": (6.0, 2.0, 0.5), "email_open": (3.0, 1.5, 0.8), "email_click": (1.0, 0.4, 0.15),
    "feature_use": (3.0, 0.8, 0.2), "cart_abandon": (0.6, 0.3, 0.1),
}
# visits are stored aggregated, as a web analytics export would: one record (with a count) per kind and quarter,
# half-year or year counted back from today
INTERACTION_BLOCK_DAYS = {"login": 91.25, "email_open": 182.5, "email_click": 365.0, "feature_use": 365.0,
                          "cart_abandon": 365.0}


@dataclass
class Latent:
    """A customer's hidden state. ``health`` (0-1) is satisfaction/engagement: it drives order frequency,
    visits, late payments, returns, ticket mood and satisfaction, and the customer leaves when it falls below
    :data:`CHURN_HEALTH`. ``decline`` (health lost per week, 0 = stable) starts after a bad support experience
    or for outside reasons, and sometimes reverses. ``growth`` (log-spend per year) and ``breadth`` (chance an
    order explores a new category) make up the expansion that upsell follows; ``advocacy`` (standard normal)
    drives NPS answers, reviews and referrals."""

    rate: float
    basket: float
    health: float
    baseline: float
    growth: float
    breadth: float
    advocacy: float
    pays_by_invoice: bool
    decline: float = 0.0
    declined_at: float | None = None  # days ago the decline started
    churned_at: float | None = None  # days ago the customer left


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def build_plan(*, customers: int, seed: int) -> DemoPlan:
    """The demo data set, as plain data (deterministic for a given ``customers`` and ``seed``)."""
    from faker import Faker

    rng = random.Random(seed)
    fakers: dict[str, Faker] = {}
    for offset, (locale, _) in enumerate(LOCALES):
        fakers[locale] = Faker(locale)
        fakers[locale].seed_instance(seed * 1000 + offset)
    phones: set[str] = set()
    plan: list[DemoCustomer] = []
    for i in range(customers):
        locale = _weighted(rng, LOCALES)
        fake = fakers[locale]
        language, country = locale.split("_")
        name = fake.name()
        first = name.split()[0]
        email = f"{_ascii_slug(name)}.{seed}.{i:05d}@example.{rng.choice(('com', 'org', 'net'))}"
        phone = _phone(rng, country)
        while phone in phones:
            phone = _phone(rng, country)
        phones.add(phone)
        b2b = rng.random() < 0.25
        personal: dict[str, str | None] = {
            "name": name,
            "email": email,
            "phone": phone,
            "address": fake.address().replace("\n", ", "),
            "company": fake.company() if b2b else None,
            "job_title": fake.job()[:100] if b2b else None,
            "preferred_language": language,
            "date_of_birth": fake.date_of_birth(minimum_age=18, maximum_age=85).isoformat(),
        }
        iban = fake.iban()
        segment = _weighted(rng, SEGMENTS)
        # Half were customers before the 18 months of history began; a few joined in the last weeks.
        r = rng.random()
        signup = (rng.uniform(HISTORY_DAYS - 30, HISTORY_DAYS) if r < 0.5 else rng.uniform(7, 45) if r < 0.56
                  else rng.uniform(60, HISTORY_DAYS))
        customer = DemoCustomer(
            index=i, locale=locale, country=country, external_id=f"CRM-{seed}-{i:06d}", personal=personal,
            segment=segment, churner=False, signup_days_ago=signup, ip=fake.ipv4_public(),
        )
        sim = random.Random(f"demo:{seed}:{i}")  # the behaviour's own stream: identities stay as they were
        _simulate(sim, customer, b2b=b2b, language=language, people={
            "name": name, "first": first, "email": email, "phone": phone, "iban": iban})
        _consents(rng, customer)
        plan.append(customer)
    return DemoPlan(seed=seed, customers=plan)


def _latent(rng: random.Random, segment: str, b2b: bool, language: str) -> Latent:
    low, high = ORDERS_PER_YEAR[segment]
    basket = rng.lognormvariate(3.9, 0.45)
    if segment == "vip":
        basket *= 2.5 * rng.paretovariate(1.8) * (2.0 if b2b else 1.0)
    grower = rng.random() < 0.25
    baseline = rng.uniform(0.75, 1.0)
    return Latent(
        rate=rng.uniform(low, high),
        basket=basket,
        health=baseline,
        baseline=baseline,
        growth=(rng.uniform(0.7, 1.3) if grower else rng.gauss(-0.05, 0.08)),
        breadth=(rng.uniform(0.3, 0.5) if grower else rng.uniform(0.0, 0.03)),
        advocacy=rng.gauss(0.0, 1.0),
        # B2B customers pay invoices; so do many consumers where paying by invoice is common
        pays_by_invoice=b2b or rng.random() < {"de": 0.4, "nl": 0.3, "sv": 0.45, "fi": 0.4}.get(language, 0.1),
    )


def _order_factor(health: float) -> float:
    """Order frequency relative to the customer's normal rate: full when healthy, falling fast in a decline."""
    return min(max((health - 0.35) / 0.45, 0.0), 1.0) ** 2


def _simulate(rng: random.Random, c: DemoCustomer, *, b2b: bool, language: str, people: dict[str, str]) -> None:
    """Week by week from sign-up to today: the latent state evolves and produces orders, visits, tickets,
    survey answers, reviews and referrals."""
    s = _latent(rng, c.segment, b2b, language)
    texts = TICKET_TEXTS[language]
    positive_reviews, negative_reviews = REVIEW_TEXTS[language]
    seg = ("vip", "regular", "occasional").index(c.segment)
    hazard = -math.log(1.0 - DECLINE_PER_YEAR[c.segment]) / 52.0
    categories = list(CATEGORIES)
    rng.shuffle(categories)
    tried = [categories.pop()]
    next_survey = c.signup_days_ago - rng.uniform(20, 120)
    visits: dict[tuple[str, int], int] = {}
    first_order: float | None = max(c.signup_days_ago - rng.uniform(0, 10), 0.2)
    if c.signup_days_ago < HISTORY_DAYS - 45 and rng.random() < ONE_AND_DONE[c.segment]:
        s.health = s.baseline = rng.uniform(0.55, 0.75)
        _start_decline(rng, s, c.signup_days_ago)
    day = c.signup_days_ago
    while day > 0:
        week_end = max(day - WEEK, 0.0)
        span = (day - week_end) / WEEK
        years = (c.signup_days_ago - day) / 365.0
        # --- the state evolves
        if s.decline == 0.0 and rng.random() < hazard * span:
            _start_decline(rng, s, day)
            # whatever the outside cause, it usually surfaces as a complaint first
            if rng.random() < 0.7:
                _ticket(rng, c, s, texts, people, at=_days_between(rng, day, week_end), problem=True, complaint=True)
        if s.decline > 0.0:
            s.health -= s.decline * span
            if rng.random() < 0.006 * span:  # won back
                s.decline, s.declined_at = 0.0, None
        else:
            s.health += 0.15 * (s.baseline - s.health) * span
        s.health = min(max(s.health + rng.gauss(0.0, 0.015), 0.0), 1.0)
        if s.health < CHURN_HEALTH:
            s.churned_at = day
            break
        # --- orders
        expected = s.rate / 52.0 * span * _order_factor(s.health) * math.exp(0.5 * s.growth * years)
        if s.decline > 0.0:  # unhappy customers start buying elsewhere at once
            expected *= 0.25
        n = _poisson(rng, expected)
        if first_order is not None and first_order >= week_end:
            n, first_order = max(n, 1), None
        for _ in range(n):
            at = _days_between(rng, day, week_end)
            _order(rng, c, s, b2b, at, years, categories, tried)
            if rng.random() < 0.06 + 0.12 * (1.0 - s.health):  # something went wrong with it
                _ticket(rng, c, s, texts, people, at=max(at - rng.uniform(0.5, 6), 0.02), problem=True)
            if rng.random() < 0.015 + 0.08 * _sigmoid(2.0 * (s.advocacy - 0.5)):
                _review(rng, c, s, positive_reviews, negative_reviews, people, max(at - rng.uniform(3, 20), 0.02))
        # --- other contacts: questions, complaints of customers on the way out
        if rng.random() < 0.006 * span:
            _ticket(rng, c, s, texts, people, at=_days_between(rng, day, week_end), problem=False)
        if s.decline > 0.0 and rng.random() < 0.1 * span:
            _ticket(rng, c, s, texts, people, at=_days_between(rng, day, week_end), problem=True, complaint=True)
        # --- visits
        engagement = min(max((s.health - 0.1) / 0.7, 0.0), 1.0) * (0.2 if s.decline > 0.0 else 1.0)
        for kind, rates in INTERACTION_RATES.items():
            # customers who are expanding browse more: they open offers and try features
            interest = 1.0 + 1.5 * max(s.growth, 0.0) if kind in ("email_click", "feature_use") else 1.0
            count = _poisson(rng, rates[seg] * span * engagement * interest)
            if count:
                key = (kind, int(day // INTERACTION_BLOCK_DAYS[kind]))
                visits[key] = visits.get(key, 0) + count
        # --- surveys and referrals
        if day <= next_survey:
            next_survey = day - rng.uniform(80, 110)
            if rng.random() < 0.25 + 0.5 * _sigmoid(1.5 * s.advocacy):
                _nps(rng, c, s, positive_reviews, negative_reviews, people, _days_between(rng, day, week_end))
        if s.health > 0.5 and rng.random() < 0.04 * _sigmoid(3.0 * (s.advocacy - 1.0)) * span:
            c.referrals.append({"external_id": f"REF-{c.external_id}-{len(c.referrals)}",
                                "days_ago": _days_between(rng, day, week_end), "converted": rng.random() < 0.4})
        day = week_end
    # one record per kind and block, dated at the end of its block (when the period's figures are reported), so a
    # record never carries visits from after its own date
    for (kind, block), count in sorted(visits.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        c.interactions.append({"external_id": f"WEB-{c.external_id}-{len(c.interactions):03d}", "kind": kind,
                               "days_ago": max(block * INTERACTION_BLOCK_DAYS[kind], 0.05), "count": count})
    c.churner = s.churned_at is not None or s.decline > 0.0
    c.latent = s


def _start_decline(rng: random.Random, s: Latent, day: float) -> None:
    s.decline = rng.uniform(0.025, 0.07)
    s.declined_at = day


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0.0:
        return 0
    n, p, limit = 0, 1.0, math.exp(-mean)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def _order(rng: random.Random, c: DemoCustomer, s: Latent, b2b: bool, at: float, years: float,
           categories: list[str], tried: list[str]) -> None:
    amount = s.basket * math.exp(s.growth * years) * rng.lognormvariate(0.0, 0.25)
    amount = round(min(max(amount, 3.0), 25_000.0), 2)
    if categories and rng.random() < s.breadth:  # explores a category new to them
        tried.append(categories.pop())
        category = tried[-1]
    else:  # mostly the first category, else one already tried
        category = tried[0] if rng.random() < 0.7 else rng.choice(tried)
    late = None
    if s.pays_by_invoice:
        late = int(rng.expovariate(1 / (5 + 25 * (1 - s.health)))) + 1 if rng.random() < (
            0.05 + 0.7 * (1.0 - s.health) ** 2) else 0
    c.orders.append({
        "external_id": f"ERP-{c.external_id}-{len(c.orders):03d}",
        "days_ago": at,
        "amount": f"{amount:.2f}",
        "margin": f"{amount * rng.uniform(0.12, 0.45):.2f}",
        "returned": rng.random() < (0.02 if c.segment == "vip" else 0.04) + 0.15 * (1.0 - s.health) ** 2,
        "kind": "invoice" if b2b else "order",
        "days_late": late,
        "category": category,
    })


def _ticket(rng: random.Random, c: DemoCustomer, s: Latent, texts: dict[str, tuple[str, ...]],
            people: dict[str, str], *, at: float, problem: bool, complaint: bool = False) -> None:
    """A support contact. How it is handled feeds back into the state: a slow or poor resolution can start a
    decline (or deepen one), a good one lifts health a little. Its text and satisfaction follow the state."""
    channel = _weighted(rng, (("email", 0.4), ("phone", 0.2), ("chat", 0.25), ("web", 0.15)))
    response_h = (FIRST_RESPONSE_HOURS[c.segment] * CHANNEL_SPEED[channel] * rng.lognormvariate(0.0, 0.6)
                  * (1.4 if problem else 1.0))
    first_response = at - response_h / 24.0
    bad = complaint or rng.random() < 0.12 + 0.55 * (1.0 - s.health) + (0.15 if response_h > 24 else 0.0)
    if problem and bad and not complaint:
        s.health = max(s.health - rng.uniform(0.08, 0.2), 0.0)
        if s.decline == 0.0 and rng.random() < (0.5 if c.segment == "vip" else 0.35):  # VIPs expect more
            _start_decline(rng, s, at)
    elif not bad:
        s.health = min(s.health + 0.03, 1.0)
    mood = "negative" if bad and (complaint or rng.random() < 0.75) else (
        "positive" if not bad and rng.random() < 0.35 else "neutral")
    j = rng.randrange(len(texts[mood]))
    category = TICKET_CATEGORIES[mood][j]
    text = texts[mood][j].format(order=f"#{rng.randint(100000, 999999)}", **people)
    closed_after = response_h / 24.0 + rng.uniform(0.1, 3 if not bad else 12)
    c.tickets.append({
        "external_id": f"SUP-{c.external_id}-{len(c.tickets):02d}",
        "days_ago": at,
        "first_response_days_ago": first_response if first_response > 0.01 else None,
        "closed_after_days": None if at - closed_after < 0.01 else round(closed_after, 3),
        "text": text,
        "channel": channel,
        "escalated": bad and rng.random() < (0.7 if complaint else 0.35),
        "satisfaction": rng.randint(1, 2) if bad else rng.choice((3, 4, 4, 5, 5)),
        "category": category,
    })


def _review(rng: random.Random, c: DemoCustomer, s: Latent, positive: tuple[str, ...], negative: tuple[str, ...],
            people: dict[str, str], at: float) -> None:
    rating = min(max(round(3.0 + 0.9 * s.advocacy + 3.0 * (s.health - 0.8) + rng.gauss(0.0, 0.6)), 1), 5)
    text = rng.choice(positive if rating >= 4 else negative).format(**people) if rng.random() < 0.5 else ""
    c.reviews.append({"external_id": f"REV-{c.external_id}-{len(c.reviews):02d}", "days_ago": at, "rating": rating,
                      "text": text})


def _nps(rng: random.Random, c: DemoCustomer, s: Latent, positive: tuple[str, ...], negative: tuple[str, ...],
         people: dict[str, str], at: float) -> None:
    score = min(max(round(7.0 + 1.8 * s.advocacy + 4.0 * (s.health - 0.8) + rng.gauss(0.0, 0.6)), 0), 10)
    comment = rng.choice(positive if score >= 8 else negative).format(**people) if rng.random() < 0.12 else ""
    c.nps.append({"external_id": f"NPS-{c.external_id}-{len(c.nps):02d}", "days_ago": at, "score": score,
                  "comment": comment})


def _days_between(rng: random.Random, start: float, end: float) -> float:
    """A "days ago" value between ``start`` (older) and ``end`` (more recent), at least an hour ago."""
    return max(rng.uniform(end, start), 0.05)


def _consents(rng: random.Random, c: DemoCustomer) -> None:
    channel = _weighted(rng, (("web", 0.45), ("app", 0.30), ("email", 0.10), ("in_store", 0.10), ("phone", 0.05)))
    source = {"web": "web", "app": "app", "email": "crm", "in_store": "crm", "phone": "support"}[channel]
    asked = max(c.signup_days_ago - rng.uniform(0, 2), 0.2)
    if rng.random() < CONSENT_SHARE:
        for purpose in SCORING_PURPOSES:
            c.consents.append(ConsentStep(purpose, "grant", asked, channel, source))
        if rng.random() < 0.06:  # some withdraw later (self-service), a few of them grant again
            withdrawn = _days_between(rng, asked - 0.01, 0.1)
            purposes = SCORING_PURPOSES if rng.random() < 0.5 else SCORING_PURPOSES[:1]
            for purpose in purposes:
                c.consents.append(ConsentStep(purpose, "withdraw", withdrawn, "web", "web"))
            if rng.random() < 0.25 and withdrawn > 1:
                regrant = _days_between(rng, withdrawn - 0.01, 0.05)
                for purpose in purposes:
                    c.consents.append(ConsentStep(purpose, "grant", regrant, "app", "app"))
    if rng.random() < MARKETING_SHARE:
        c.consents.append(ConsentStep("marketing", "grant", asked, channel, source))
        if rng.random() < 0.10:
            c.consents.append(ConsentStep("marketing", "withdraw", _days_between(rng, asked - 0.01, 0.1), "email",
                                          "crm"))


# --- Loading -------------------------------------------------------------------------------------------------


@dataclass
class LoadSummary:
    customers: int = 0
    orders: int = 0
    interactions: int = 0
    tickets: int = 0
    reviews: int = 0
    nps: int = 0
    referrals: int = 0
    consent_events: int = 0
    rejected: int = 0
    elapsed_s: float = 0.0


def _at(now: datetime, days_ago: float) -> datetime:
    return now - timedelta(days=days_ago)


def load_plan(plan: DemoPlan, *, now: datetime | None = None, chunk_size: int = 100,
              progress: Callable[[int], None] | None = None) -> LoadSummary:
    """Write ``plan`` through the services, one transaction per chunk of customers."""
    from consent import services as consent_services
    from profiles import services as profiles_services

    now = now or timezone.now()
    started = time.monotonic()
    summary = LoadSummary()
    for chunk in chunked(plan.customers, chunk_size):
        with transaction.atomic():
            ids: dict[int, UUID] = {}
            results = profiles_services.customer_ingest_batch(
                source="crm", actor=ACTOR,
                records=[{"external_id": c.external_id, "personal": c.personal, "country": c.country,
                          "attributes": {"lifecycle_stage": "customer"}} for c in chunk],
            )
            for c, result in zip(chunk, results, strict=True):
                if result.error is not None:
                    raise result.error
                assert result.customer_id is not None
                ids[c.index] = result.customer_id
            summary.customers += len(chunk)
            batches: dict[str, list[dict[str, Any]]] = {k: [] for k in
                                                        ("orders", "interactions", "tickets", "reviews", "nps",
                                                         "referrals")}
            for c in chunk:
                ref = {"customer_id": ids[c.index]}
                for o in c.orders:
                    batches["orders"].append({
                        **ref, "source": "erp", "external_id": o["external_id"], "ordered_at": _at(now, o["days_ago"]),
                        "amount": o["amount"], "margin": o["margin"], "returned": o["returned"], "kind": o["kind"],
                        "days_late": o["days_late"], "category": o["category"], "currency": "EUR",
                    })
                for it in c.interactions:
                    batches["interactions"].append({
                        **ref, "source": "web", "external_id": it["external_id"], "kind": it["kind"],
                        "at": _at(now, it["days_ago"]), "count": it["count"],
                    })
                for t in c.tickets:
                    opened = _at(now, t["days_ago"])
                    closed = None if t["closed_after_days"] is None else min(
                        opened + timedelta(days=t["closed_after_days"]), now)
                    responded = t["first_response_days_ago"]
                    batches["tickets"].append({
                        **ref, "source": "support", "external_id": t["external_id"], "opened_at": opened,
                        "closed_at": closed, "first_response_at": None if responded is None else _at(now, responded), "channel": t["channel"], "escalated": t["escalated"],
                        "satisfaction": t["satisfaction"], "category": t["category"], "text": t["text"],
                    })
                for r in c.reviews:
                    batches["reviews"].append({**ref, "source": "web", "external_id": r["external_id"],
                                               "at": _at(now, r["days_ago"]), "rating": r["rating"], "text": r["text"]})
                for a in c.nps:
                    batches["nps"].append({**ref, "source": "web", "external_id": a["external_id"],
                                           "at": _at(now, a["days_ago"]), "score": a["score"], "comment": a["comment"]})
                for r in c.referrals:
                    batches["referrals"].append({**ref, "source": "crm", "external_id": r["external_id"],
                                                 "at": _at(now, r["days_ago"]), "converted": r["converted"]})
            for kind, records in batches.items():
                if not records:
                    continue
                fact_results = profiles_services.facts_ingest_batch(kind=kind, records=records, actor=ACTOR)
                ok = sum(1 for r in fact_results if r.outcome != "rejected")
                setattr(summary, kind, getattr(summary, kind) + ok)
                summary.rejected += len(fact_results) - ok
            # Consent events set-based per chunk (consent.bulk: what one consent_grant/consent_withdraw per
            # event would store, in the same order).
            consents = [
                {"customer": ids[c.index], "purpose": step.purpose, "action": step.action, "source": step.source,
                 "channel": step.channel, "occurred_at": _at(now, step.days_ago),
                 "evidence": {"form_id": f"demo-{step.channel}-form", "ip": c.ip,
                              "double_opt_in": step.channel == "email"}}
                for c in chunk for step in sorted(c.consents, key=lambda s: -s.days_ago)
            ]
            for result in consent_services.consent_record_many(records=consents, actor=ACTOR):
                if result.status == "rejected":
                    raise RuntimeError(f"demo consent event rejected: {result.field} {result.code}")
                summary.consent_events += 1
        if progress is not None:
            progress(len(chunk))
    summary.elapsed_s = round(time.monotonic() - started, 1)
    return summary
