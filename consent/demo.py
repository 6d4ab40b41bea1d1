"""Demo data: realistic multi-locale customers with 18 months of history, generated with a fixed seed.

:func:`build_plan` is pure (no database, no clock): the same ``(customers, seed)`` always gives the same plan,
with every time expressed as "days ago". :func:`load_plan` writes a plan through the real services --
``profiles.services.customer_ingest`` (encryption, blind indexes), ``profiles.services.facts_ingest_batch``
(one Presidio batch call per chunk for ticket/review/NPS text) and ``consent.services`` -- so the demo data
is stored exactly as production data would be.

Everything personal here is fake (Faker); e-mail addresses use the reserved ``example.*`` domains.
"""

from __future__ import annotations

import random
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import phonenumbers
from django.db import transaction
from django.utils import timezone

ACTOR = "job:demo_seed"
MONTHS = 18
HISTORY_DAYS = 548  # 18 months

LOCALES: tuple[tuple[str, float], ...] = (
    ("en_GB", 0.30), ("de_DE", 0.20), ("nl_NL", 0.15), ("pl_PL", 0.12), ("sv_SE", 0.13), ("fi_FI", 0.10),
)
CONSENT_SHARE = 0.80  # automated_scoring + service_prioritization
MARKETING_SHARE = 0.50
SCORING_PURPOSES = ("automated_scoring", "service_prioritization")
CATEGORIES = ("electronics", "home", "fashion", "sports", "books", "garden", "toys", "beauty")

TICKET_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "Hi, this is {name}. My order {order} arrived damaged. Please call me on {phone} or write to {email}.",
        "Please refund the amount to my account {iban}. Thanks, {name}",
        "I can't log in to the app since yesterday. My e-mail is {email}. Regards, {first}",
        "Where is my parcel? Order {order}. You can reach me at {phone}. {name}",
        "The invoice for order {order} is wrong, please correct it. {name}, {email}",
    ),
    "de": (
        "Hallo, hier ist {name}. Meine Bestellung {order} kam beschädigt an. Bitte rufen Sie mich unter {phone} "
        "an oder schreiben Sie an {email}.",
        "Bitte erstatten Sie den Betrag auf mein Konto {iban}. Danke, {name}",
        "Ich kann mich seit gestern nicht in der App anmelden. Meine E-Mail ist {email}. Gruß, {first}",
        "Wo bleibt mein Paket? Bestellung {order}. Sie erreichen mich unter {phone}. {name}",
        "Die Rechnung zur Bestellung {order} ist falsch, bitte korrigieren. {name}, {email}",
    ),
    "nl": (
        "Hallo, met {name}. Mijn bestelling {order} is beschadigd aangekomen. Bel me op {phone} of mail naar {email}.",
        "Graag het bedrag terugstorten op rekening {iban}. Groeten, {name}",
        "Ik kan sinds gisteren niet inloggen in de app. Mijn e-mailadres is {email}. Groet, {first}",
        "Waar blijft mijn pakket? Bestelling {order}. U kunt me bereiken op {phone}. {name}",
        "De factuur van bestelling {order} klopt niet, graag aanpassen. {name}, {email}",
    ),
    "pl": (
        "Dzień dobry, tu {name}. Moje zamówienie {order} dotarło uszkodzone. Proszę o kontakt pod numerem {phone} "
        "lub na adres {email}.",
        "Proszę o zwrot pieniędzy na konto {iban}. Pozdrawiam, {name}",
        "Od wczoraj nie mogę zalogować się do aplikacji. Mój e-mail to {email}. Pozdrawiam, {first}",
        "Gdzie jest moja paczka? Zamówienie {order}. Mój numer telefonu: {phone}. {name}",
        "Faktura do zamówienia {order} jest błędna, proszę o korektę. {name}, {email}",
    ),
    "fi": (
        "Hei, täällä {name}. Tilaukseni {order} saapui vaurioituneena. Soittakaa minulle numeroon {phone} tai "
        "kirjoittakaa osoitteeseen {email}.",
        "Palauttakaa summa tililleni {iban}. Kiitos, {name}",
        "En pääse kirjautumaan sovellukseen eilisestä asti. Sähköpostini on {email}. Terveisin {first}",
        "Missä pakettini on? Tilaus {order}. Tavoitatte minut numerosta {phone}. {name}",
        "Tilauksen {order} lasku on väärin, korjatkaa se. {name}, {email}",
    ),
    "sv": (
        "Hej, det här är {name}. Min beställning {order} kom fram skadad. Ring mig på {phone} eller skriv till "
        "{email}.",
        "Vänligen återbetala beloppet till mitt konto {iban}. Tack, {name}",
        "Jag kan inte logga in i appen sedan igår. Min e-post är {email}. Hälsningar, {first}",
        "Var är mitt paket? Beställning {order}. Ni når mig på {phone}. {name}",
        "Fakturan för beställning {order} är fel, vänligen rätta den. {name}, {email}",
    ),
}
REVIEW_TEXTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # (positive, negative)
    "en": (("Great quality and fast delivery.", "Very happy, will order again. {first}"),
           ("Arrived late and the box was damaged.", "Customer service never called back. {name}")),
    "de": (("Super Qualität und schnelle Lieferung.", "Sehr zufrieden, gerne wieder. {first}"),
           ("Kam zu spät und der Karton war beschädigt.", "Der Kundenservice hat nie zurückgerufen. {name}")),
    "nl": (("Goede kwaliteit en snelle levering.", "Heel tevreden, bestel zeker weer. {first}"),
           ("Te laat geleverd en de doos was beschadigd.", "De klantenservice belde nooit terug. {name}")),
    "pl": (("Świetna jakość i szybka dostawa.", "Jestem bardzo zadowolona, zamówię ponownie. {first}"),
           ("Przesyłka spóźniona, karton uszkodzony.", "Obsługa klienta nigdy nie oddzwoniła. {name}")),
    "fi": (("Hyvä laatu ja nopea toimitus.", "Erittäin tyytyväinen, tilaan uudelleen. {first}"),
           ("Toimitus myöhästyi ja laatikko oli rikki.", "Asiakaspalvelu ei koskaan soittanut takaisin. {name}")),
    "sv": (("Bra kvalitet och snabb leverans.", "Mycket nöjd, beställer igen. {first}"),
           ("Kom sent och kartongen var skadad.", "Kundtjänst ringde aldrig tillbaka. {name}")),
}


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
    churner: bool
    signup_days_ago: float
    ip: str
    orders: list[dict[str, Any]] = field(default_factory=list)
    interactions: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    nps: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    consents: list[ConsentStep] = field(default_factory=list)

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
        segment = _weighted(rng, (("vip", 0.07), ("regular", 0.63), ("occasional", 0.30)))
        churner = rng.random() < (0.10 if segment == "vip" else 0.22)
        signup = rng.uniform(7, 45) if rng.random() < 0.06 else rng.uniform(60, HISTORY_DAYS)
        customer = DemoCustomer(
            index=i, locale=locale, country=country, external_id=f"CRM-{seed}-{i:06d}", personal=personal,
            segment=segment, churner=churner, signup_days_ago=signup, ip=fake.ipv4_public(),
        )
        # Activity window: from sign-up to "now", or to the day a churner stopped buying.
        active_end = rng.uniform(120, max(121.0, min(400.0, signup - 20))) if churner and signup > 140 else 0.0
        active_start = signup - 1 if signup > active_end + 2 else active_end + 1
        _orders(rng, customer, b2b, active_start, active_end)
        _interactions(rng, customer, active_start, active_end)
        _tickets(rng, customer, language, name, first, email, phone, iban)
        _feedback(rng, customer, language, name, first)
        _consents(rng, customer)
        plan.append(customer)
    return DemoPlan(seed=seed, customers=plan)


def _days_between(rng: random.Random, start: float, end: float) -> float:
    """A "days ago" value between ``start`` (older) and ``end`` (more recent), at least an hour ago."""
    return max(rng.uniform(end, start), 0.05)


def _orders(rng: random.Random, c: DemoCustomer, b2b: bool, start: float, end: float) -> None:
    n = {"vip": rng.randint(12, 36), "regular": rng.randint(2, 9), "occasional": rng.randint(1, 2)}[c.segment]
    # Categories from their own stream (the plan's other draws stay as they were): a customer mostly buys
    # from one home category and from another one order in four, so "a first order in a new category"
    # (the upsell label's second half) means something.
    categories = random.Random(f"categories:{c.external_id}")
    home = categories.choice(CATEGORIES)
    for j in range(n):
        amount = rng.lognormvariate(3.9, 0.75)
        if c.segment == "vip":
            amount *= 2.5 * rng.paretovariate(1.8)
        amount = round(min(max(amount, 3.0), 25_000.0), 2)
        c.orders.append({
            "external_id": f"ERP-{c.external_id}-{j:03d}",
            "days_ago": _days_between(rng, start, end),
            "amount": f"{amount:.2f}",
            "margin": f"{amount * rng.uniform(0.12, 0.45):.2f}",
            "returned": rng.random() < (0.02 if c.segment == "vip" else 0.06),
            "kind": "invoice" if b2b else "order",
            "days_late": (0 if rng.random() < 0.7 else int(rng.expovariate(1 / 12))) if b2b else None,
            "category": rng.choice(CATEGORIES),
        })
        if categories.random() >= 0.25:
            c.orders[-1]["category"] = home


INTERACTION_KINDS = (("login", 0.9), ("page_view", 0.8), ("email_open", 0.6), ("email_click", 0.4),
                     ("feature_use", 0.5), ("cart_abandon", 0.25))


def _interactions(rng: random.Random, c: DemoCustomer, start: float, end: float) -> None:
    """Web/app events, aggregated (a record carries a count): per kind one record in the customer's last
    active quarter (and one earlier for logins) -- churners have gone quiet for months."""
    rate = {"vip": 25.0, "regular": 8.0, "occasional": 2.0}[c.segment]
    j = 0
    for kind, probability in INTERACTION_KINDS:
        if rng.random() >= probability:
            continue
        windows = [(min(end + 85, start), end)]
        if kind == "login" and start > end + 95:
            windows.append((start, end + 90))
        for older, recent in windows:
            c.interactions.append({
                "external_id": f"WEB-{c.external_id}-{j:03d}",
                "kind": kind,
                "days_ago": _days_between(rng, older, recent),
                "count": 1 + int(rng.expovariate(1 / rate)),
            })
            j += 1


def _tickets(rng: random.Random, c: DemoCustomer, language: str, name: str, first: str, email: str, phone: str,
             iban: str) -> None:
    n = _weighted(rng, ((0, 0.45), (1, 0.30), (2, 0.15), (3, 0.07), (4, 0.03)))
    if c.churner:
        n += 1
    templates = TICKET_TEMPLATES[language]
    for j in range(n):
        opened = _days_between(rng, c.signup_days_ago, 0.5)
        order = f"#{rng.randint(100000, 999999)}"
        text = rng.choice(templates).format(name=name, first=first, email=email, phone=phone, iban=iban, order=order)
        low = c.churner or rng.random() < 0.2
        c.tickets.append({
            "external_id": f"SUP-{c.external_id}-{j:02d}",
            "days_ago": opened,
            "closed_after_days": None if opened < 3 and rng.random() < 0.5 else round(rng.uniform(0.1, 10), 3),
            "text": text,
            "channel": rng.choice(("email", "phone", "chat", "web")),
            "escalated": rng.random() < (0.3 if c.churner else 0.1),
            "satisfaction": rng.randint(1, 3) if low else rng.randint(3, 5),
            "category": rng.choice(("delivery", "billing", "account", "product", "returns")),
        })


def _feedback(rng: random.Random, c: DemoCustomer, language: str, name: str, first: str) -> None:
    happy = not c.churner and rng.random() < 0.8
    positive, negative = REVIEW_TEXTS[language]
    if rng.random() < 0.2:
        rating = rng.randint(4, 5) if happy else rng.randint(1, 3)
        c.reviews.append({
            "external_id": f"REV-{c.external_id}",
            "days_ago": _days_between(rng, c.signup_days_ago, 0.5),
            "rating": rating,
            "text": rng.choice(positive if rating >= 4 else negative).format(name=name, first=first),
        })
    if rng.random() < 0.35:
        score = rng.randint(8, 10) if happy else rng.randint(0, 7)
        comment = rng.choice(positive if score >= 8 else negative).format(name=name, first=first)
        c.nps.append({
            "external_id": f"NPS-{c.external_id}",
            "days_ago": _days_between(rng, c.signup_days_ago, 0.5),
            "score": score,
            "comment": comment if rng.random() < 0.4 else "",
        })
    if c.segment != "occasional" and happy and rng.random() < 0.15:
        for j in range(rng.randint(1, 3)):
            c.referrals.append({
                "external_id": f"REF-{c.external_id}-{j}",
                "days_ago": _days_between(rng, c.signup_days_ago, 0.5),
                "converted": rng.random() < 0.4,
            })


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


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    for chunk in _chunks(plan.customers, chunk_size):
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
                    batches["tickets"].append({
                        **ref, "source": "support", "external_id": t["external_id"], "opened_at": opened,
                        "closed_at": closed, "channel": t["channel"], "escalated": t["escalated"],
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
                summary.rejected += len(results) - ok
            for c in chunk:
                for step in sorted(c.consents, key=lambda s: -s.days_ago):
                    record = consent_services.consent_grant if step.action == "grant" else consent_services.consent_withdraw
                    record(
                        customer_id=ids[c.index], purpose=step.purpose, source=step.source, channel=step.channel,
                        evidence={"form_id": f"demo-{step.channel}-form", "ip": c.ip,
                                  "double_opt_in": step.channel == "email"},
                        actor=ACTOR, at=_at(now, step.days_ago),
                    )
                    summary.consent_events += 1
        if progress is not None:
            progress(len(chunk))
    summary.elapsed_s = round(time.monotonic() - started, 1)
    return summary
