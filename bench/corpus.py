"""Labelled synthetic free-text corpus for section 3 (pseudonymization).

Texts are built from templates filled by Faker (fixed seed), so every personal value's position is known
exactly. English: support-desk and CRM-note sentences; Polish, Dutch, Finnish and Swedish: ticket-like texts
that name their author (greeting or signature, e-mail, phone, address). Each sample carries the author's
identifiers as the service would know them from the decrypted profile.

Gold entity types: PERSON, EMAIL_ADDRESS, PHONE_NUMBER, LOCATION, STREET_ADDRESS, IBAN_CODE, CREDIT_CARD,
IP_ADDRESS, URL. Distractors that are not personal data (order numbers, amounts, dates, product names) are
left unlabelled on purpose: detecting them counts against precision.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from faker import Faker

LANG_LOCALES: dict[str, tuple[str, ...]] = {
    "en": ("en_GB", "en_US"),
    "pl": ("pl_PL",),
    "nl": ("nl_NL",),
    "fi": ("fi_FI",),
    "sv": ("sv_SE",),
}
_REGION = {"en_GB": "GB", "en_US": "US", "pl_PL": "PL", "nl_NL": "NL", "fi_FI": "FI", "sv_SE": "SE"}

SLOT_TYPES: dict[str, str] = {
    "author": "PERSON", "author_first": "PERSON", "author_last": "PERSON",
    "author_email": "EMAIL_ADDRESS", "author_phone": "PHONE_NUMBER", "author_address": "STREET_ADDRESS",
    "other": "PERSON", "other_first": "PERSON", "agent": "PERSON",
    "email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER", "city": "LOCATION", "country": "LOCATION",
    "address": "STREET_ADDRESS", "iban": "IBAN_CODE", "card": "CREDIT_CARD", "ip": "IP_ADDRESS", "url": "URL",
}
# Slots that are not personal data (filled, never labelled).
PLAIN_SLOTS = ("order", "amount", "day", "product", "n")

EN_TEMPLATES: tuple[str, ...] = (
    "Hi, this is {author}. My order {order} has not arrived yet, can you check?",
    "Customer {author} called about a refund of {amount} for order {order}.",
    "Please send the invoice to {author_email} instead of the old address.",
    "You can reach me on {author_phone} after 5pm. Thanks, {author_first}",
    "{author} asked us to update the delivery address to {author_address}, {city}.",
    "My name is {author} and I was charged twice for {product}.",
    "I spoke to your colleague {agent} on {day} and nothing happened since.",
    "The parcel was left with my neighbour {other} at {address}.",
    "Please refund the amount to IBAN {iban}.",
    "The card ending in the digits of {card} was declined again.",
    "Login attempts from {ip} were not me, please lock the account. {author_first}",
    "Our company website {url} shows the wrong opening hours.",
    "Dear support, I moved from {city} to {country} last month. Regards, {author}",
    "Call me back on {author_phone} or e-mail {author_email}.",
    "{agent} promised a callback within 24 hours but no one called {author_first}.",
    "Customer is unhappy with {product}; wants to talk to a manager. Contact: {author_email}",
    "Hello, {other_first} here, writing for my father {author}.",
    "The technician was supposed to come to {author_address} on {day}.",
    "Can you transfer the deposit to {iban}? Thank you, {author}",
    "I ordered {n} items of {product} but received only one.",
    "Spoke with {author} today; she would like a discount on the next renewal.",
    "Please stop sending newsletters to {email}.",
    "The delivery driver could not find {address} in {city}.",
    "My husband {other} will pick up the order from the store in {city}.",
    "Payment by card {card} failed with error code 51.",
    "Thanks for the quick help, {agent}! Best, {author}",
    "I tried calling {phone} several times, nobody answers.",
    "The app crashes when I open the settings page on version 4.2.",
    "Order {order} arrived damaged, photos attached.",
    "I would like to cancel my subscription at the end of the month.",
    "Requesting a copy of all invoices for {day}.",
    "Is there a store near {city}? I am visiting {country} next week.",
    "Your website {url} does not load on my phone.",
    "Account of {author} was accessed from IP {ip} at night.",
    "Hi team, {author} from {city} again. Still waiting for order {order}.",
    "Please contact my assistant {other} at {email} or {phone}.",
    "The product {product} stopped working after two weeks.",
    "Can {agent} please call me back? My number is {author_phone}.",
    "I live at {author_address} and the bill still shows my old street.",
    "Best regards, {author} ({author_email})",
)

TICKET_TEMPLATES: dict[str, tuple[str, ...]] = {
    "pl": (
        "Dzień dobry, nazywam się {author}. Zamówienie {order} nie dotarło. Proszę o kontakt pod numerem {author_phone}.",
        "Witam, piszę w sprawie reklamacji produktu {product}. Mój adres e-mail to {author_email}. Pozdrawiam, {author}",
        "Proszę o zwrot {amount} na konto {iban}. Z poważaniem, {author}",
        "Zmieniłem adres na {author_address}. Proszę zaktualizować dane. {author}",
        "Dzwoniłam już trzy razy, rozmawiałam z panem {agent}, nadal brak odpowiedzi. {author_first} {author_last}",
        "Kurier nie znalazł adresu {author_address} w miejscowości {city}. Tel. {author_phone}, {author}",
        "Proszę nie wysyłać więcej wiadomości na {author_email}. Dziękuję, {author}",
        "Paczkę odebrała sąsiadka {other}. Pozdrawiam serdecznie, {author}",
    ),
    "nl": (
        "Goedendag, mijn naam is {author}. Mijn bestelling {order} is nog niet aangekomen. Bel mij op {author_phone}.",
        "Hallo, ik wil graag mijn abonnement opzeggen. Mijn e-mailadres is {author_email}. Groet, {author}",
        "Graag het bedrag van {amount} terugstorten op {iban}. Met vriendelijke groet, {author}",
        "Ik ben verhuisd naar {author_address}. Kunt u dit aanpassen? {author}",
        "Ik heb met {agent} gesproken maar er is niets gebeurd. {author_first} {author_last}",
        "De bezorger kon {author_address} in {city} niet vinden. Tel: {author_phone}. {author}",
        "Stuur alstublieft geen nieuwsbrieven meer naar {author_email}. Bedankt, {author}",
        "Het pakket is afgegeven bij mijn buurman {other}. Groeten, {author}",
    ),
    "fi": (
        "Hei, nimeni on {author}. Tilaukseni {order} ei ole vielä saapunut. Soittakaa numeroon {author_phone}.",
        "Hyvä asiakaspalvelu, haluan palauttaa tuotteen {product}. Sähköpostini on {author_email}. Terveisin {author}",
        "Pyydän palauttamaan {amount} tilille {iban}. Ystävällisin terveisin, {author}",
        "Osoitteeni on muuttunut: {author_address}. Päivittäkää tiedot. {author}",
        "Puhuin jo {agent} kanssa, mutta mitään ei tapahtunut. {author_first} {author_last}",
        "Kuljettaja ei löytänyt osoitetta {author_address}, {city}. Puh. {author_phone}. {author}",
        "Älkää lähettäkö enää viestejä osoitteeseen {author_email}. Kiitos, {author}",
        "Paketti jätettiin naapurilleni {other}. Terveisin {author}",
    ),
    "sv": (
        "Hej, jag heter {author}. Min beställning {order} har inte kommit fram. Ring mig på {author_phone}.",
        "Hej, jag vill säga upp mitt abonnemang. Min e-post är {author_email}. Mvh {author}",
        "Vänligen återbetala {amount} till kontot {iban}. Med vänliga hälsningar, {author}",
        "Jag har flyttat till {author_address}. Kan ni uppdatera? {author}",
        "Jag pratade med {agent} men inget har hänt. {author_first} {author_last}",
        "Budet hittade inte {author_address} i {city}. Tel {author_phone}. {author}",
        "Skicka inga fler nyhetsbrev till {author_email}. Tack, {author}",
        "Paketet lämnades hos min granne {other}. Hälsningar, {author}",
    ),
}
PRODUCTS = ("the X200 router", "SmartKettle Pro", "the premium plan", "model 7 headphones", "the garden set",
            "the winter tyres", "the 4K monitor", "the family subscription")


@dataclass
class Entity:
    start: int
    end: int
    type: str
    author: bool

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "type": self.type, "author": self.author}


@dataclass
class Sample:
    text: str
    lang: str
    entities: list[Entity] = field(default_factory=list)
    known: dict[str, tuple[str, ...]] = field(default_factory=dict)


_SLOT = re.compile(r"\{(\w+)\}")


def _valid_phone(fake: Faker, region: str, rng: random.Random) -> str:
    for _ in range(50):
        candidate = fake.phone_number()
        if "x" in candidate.lower():
            continue
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                return candidate
        except phonenumbers.NumberParseException:
            continue
    # Fall back to a formatted example number of the region with randomized last digits.
    ex = phonenumbers.example_number(region)
    national = str(ex.national_number)
    national = national[:-3] + f"{rng.randrange(1000):03d}"
    parsed = phonenumbers.parse("+" + str(ex.country_code) + national, None)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _fill(template: str, values: dict[str, str], lang: str) -> Sample:
    out: list[str] = []
    entities: list[Entity] = []
    pos = 0
    last = 0
    for m in _SLOT.finditer(template):
        literal = template[last:m.start()]
        out.append(literal)
        pos += len(literal)
        slot = m.group(1)
        value = values[slot]
        out.append(value)
        if slot in SLOT_TYPES:
            entities.append(Entity(pos, pos + len(value), SLOT_TYPES[slot], slot.startswith("author")))
        pos += len(value)
        last = m.end()
    out.append(template[last:])
    return Sample(text="".join(out), lang=lang, entities=entities)


def _values(fake: Faker, locale: str, rng: random.Random) -> dict[str, str]:
    region = _REGION[locale]
    first, last = fake.first_name(), fake.last_name()
    street = fake.street_address().replace("\n", " ")
    return {
        "author": f"{first} {last}",
        "author_first": first,
        "author_last": last,
        "author_email": fake.free_email() if rng.random() < 0.5 else
        f"{_ascii(first)}.{_ascii(last)}@{fake.free_email_domain()}".lower(),
        "author_phone": _valid_phone(fake, region, rng),
        "author_address": f"{street}, {fake.postcode()}",
        "other": f"{fake.first_name()} {fake.last_name()}",
        "other_first": fake.first_name(),
        "agent": f"{fake.first_name()} {fake.last_name()}",
        "email": fake.free_email(),
        "phone": _valid_phone(fake, region, rng),
        "city": fake.city(),
        "country": fake.country() if locale.startswith("en") else fake.city(),
        "address": fake.street_address().replace("\n", " "),
        "iban": fake.iban(),
        "card": fake.credit_card_number(),
        "ip": fake.ipv4_public(),
        "url": fake.url(),
        "order": f"#{rng.randrange(10000, 999999)}",
        "amount": f"{rng.randrange(5, 900)}.{rng.randrange(100):02d} EUR",
        "day": fake.date_this_year().strftime("%d %B"),
        "product": rng.choice(PRODUCTS),
        "n": str(rng.randrange(2, 9)),
    }


def _ascii(value: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", value)
    return "".join(c for c in folded if c.isascii() and c.isalnum()) or "user"


def generate(*, english: int, per_language: int, seed: int = 7) -> list[Sample]:
    """``english`` English sentences plus ``per_language`` tickets in each of pl, nl, fi, sv."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    plan: list[tuple[str, int, tuple[str, ...]]] = [("en", english, EN_TEMPLATES)]
    plan += [(lang, per_language, TICKET_TEMPLATES[lang]) for lang in ("pl", "nl", "fi", "sv")]
    for lang, count, templates in plan:
        locales = LANG_LOCALES[lang]
        fakers = {loc: Faker(loc) for loc in locales}
        for i, loc in enumerate(locales):
            fakers[loc].seed_instance(seed * 1000 + i + sum(map(ord, lang)))
        for k in range(count):
            loc = locales[k % len(locales)]
            fake = fakers[loc]
            template = templates[k % len(templates)] if k < len(templates) else rng.choice(templates)
            values = _values(fake, loc, rng)
            sample = _fill(template, values, lang)
            sample.known = {
                "names": (values["author"],),
                "emails": (values["author_email"],),
                "phones": (values["author_phone"],),
                "addresses": (values["author_address"],),
            }
            samples.append(sample)
    return samples


def stats(samples: list[Sample]) -> dict[str, Any]:
    by_lang: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for s in samples:
        by_lang[s.lang] = by_lang.get(s.lang, 0) + 1
        for e in s.entities:
            by_type[e.type] = by_type.get(e.type, 0) + 1
    return {"texts": len(samples), "by_language": by_lang, "entities_by_type": by_type,
            "author_entities": sum(e.author for s in samples for e in s.entities)}
