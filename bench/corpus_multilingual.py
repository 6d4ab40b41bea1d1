"""Labelled per-language corpora for section 3's multilingual part (issue 18): en, pl, fi, nl, sv, de.

Three kinds of text per language, all generated from templates filled by Faker (fixed seed; Faker's locale
lists are never a recognizer source, so the names, streets and companies here are independent of the
service's gazetteers, which come from names-dataset):

* ``general``: third-party text (notes, forwarded messages) naming people, phones, cards, streets, national
  ids, e-mails, IBANs, IPs, dates of birth and ages; gold spans exact;
* ``own``: tickets by their author, whose identifiers the service knows (as the decrypted profile holds
  them), written the way people write them: surname inflected (Polish and Finnish case endings produced
  by the grammar rules below, not by the service's code), e-mail spelled out, IBAN in lower case in groups
  of four, phone with other separators;
* ``clean``: text with no personal data at all (everyday support sentences written for this bench, plus
  Faker's word-list sentences where the locale has one): every word redacted there is over-redaction.

National ids: Faker's ``ssn()`` (PESEL, HETU, personnummer, BSN; US SSN for English); the German tax id is
generated with its check digit. A near-miss (last digit changed) is not labelled.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from faker import Faker

LOCALES = {"en": "en_GB", "pl": "pl_PL", "fi": "fi_FI", "nl": "nl_NL", "sv": "sv_SE", "de": "de_DE"}
REGION = {"en": "GB", "pl": "PL", "fi": "FI", "nl": "NL", "sv": "SE", "de": "DE"}
SLOT_TYPES = {
    "person": "PERSON", "person2": "PERSON", "first": "PERSON", "phone": "PHONE_NUMBER", "card": "CREDIT_CARD",
    "street": "STREET_ADDRESS", "nid": "NATIONAL_ID", "email": "EMAIL_ADDRESS", "iban": "IBAN_CODE",
    "ip": "IP_ADDRESS", "dob": "DATE_OF_BIRTH", "age": "AGE",
    "a_name": "PERSON", "a_first": "PERSON", "a_last_infl": "PERSON", "a_email": "EMAIL_ADDRESS",
    "a_email_spelled": "EMAIL_ADDRESS", "a_phone": "PHONE_NUMBER", "a_iban": "IBAN_CODE",
    "a_street": "STREET_ADDRESS", "a_city": "LOCATION", "a_nid": "NATIONAL_ID",
}

GENERAL: dict[str, tuple[str, ...]] = {
    "en": (
        "Note: {person} called from {phone} about the late delivery.",
        "Forwarded by {person}: please charge card {card} for the repair.",
        "The courier left the box at {street} yesterday.",
        "{person} asked whether {person2} can collect the parcel.",
        "Patient record: date of birth {dob}, NHS/SSN {nid}.",
        "Contact {email} or transfer the refund to {iban}.",
        "The login came from {ip}; the owner is {age} years old.",
        "My colleague {person} will visit {street} on Monday.",
        "Mr {last} said he was born on {dob} and is {age} years old.",
        "Ring {person} on {phone}, card on file {card}.",
    ),
    "pl": (
        "Notatka: dzwonił {person} z numeru {phone} w sprawie opóźnionej dostawy.",
        "Przekazane przez {person}: proszę obciążyć kartę {card} za naprawę.",
        "Kurier zostawił paczkę pod adresem {street} wczoraj.",
        "{person} pyta, czy {person2} może odebrać przesyłkę.",
        "Dane klienta: data urodzenia {dob}, PESEL {nid}.",
        "Kontakt {email} albo zwrot na konto {iban}.",
        "Logowanie z adresu {ip}; właściciel ma {age} lat.",
        "Moja koleżanka {person} odwiedzi {street} w poniedziałek.",
        "Pan {last} mówi, że urodził się {dob} i ma {age} lat.",
        "Proszę zadzwonić do: {person}, tel. {phone}, karta {card}.",
    ),
    "fi": (
        "Muistiinpano: {person} soitti numerosta {phone} myöhästyneestä toimituksesta.",
        "Välittänyt {person}: veloittakaa kortilta {card} korjaus.",
        "Kuriiri jätti paketin osoitteeseen {street} eilen.",
        "{person} kysyy, voiko {person2} noutaa lähetyksen.",
        "Asiakastiedot: syntymäaika {dob}, henkilötunnus {nid}.",
        "Yhteys {email} tai palautus tilille {iban}.",
        "Kirjautuminen osoitteesta {ip}; omistaja on {age}-vuotias.",
        "Kollegani {person} käy osoitteessa {street} maanantaina.",
        "Herra {last} kertoi syntyneensä {dob} ja olevansa {age}-vuotias.",
        "Soita: {person}, puh. {phone}, kortti {card}.",
    ),
    "nl": (
        "Notitie: {person} belde vanaf {phone} over de late levering.",
        "Doorgestuurd door {person}: graag kaart {card} belasten voor de reparatie.",
        "De koerier heeft het pakket gisteren op {street} achtergelaten.",
        "{person} vraagt of {person2} het pakket mag ophalen.",
        "Klantgegevens: geboortedatum {dob}, BSN {nid}.",
        "Contact via {email} of terugstorten op {iban}.",
        "De login kwam van {ip}; de eigenaar is {age} jaar oud.",
        "Mijn collega {person} gaat maandag naar {street}.",
        "Meneer {last} zegt dat hij geboren is op {dob} en {age} jaar oud is.",
        "Bel {person} op {phone}, kaart {card}.",
    ),
    "sv": (
        "Anteckning: {person} ringde från {phone} om den sena leveransen.",
        "Vidarebefordrat av {person}: debitera kortet {card} för reparationen.",
        "Budet lämnade paketet på {street} i går.",
        "{person} frågar om {person2} kan hämta paketet.",
        "Kunduppgifter: födelsedatum {dob}, personnummer {nid}.",
        "Kontakt {email} eller återbetalning till {iban}.",
        "Inloggningen kom från {ip}; ägaren är {age} år gammal.",
        "Min kollega {person} besöker {street} på måndag.",
        "Herr {last} säger att han är född {dob} och är {age} år gammal.",
        "Ring {person} på {phone}, kort {card}.",
    ),
    "de": (
        "Notiz: {person} hat von {phone} wegen der verspäteten Lieferung angerufen.",
        "Weitergeleitet von {person}: bitte die Karte {card} für die Reparatur belasten.",
        "Der Kurier hat das Paket gestern in der {street} abgegeben.",
        "{person} fragt, ob {person2} die Sendung abholen kann.",
        "Kundendaten: Geburtsdatum {dob}, Steuer-ID {nid}.",
        "Kontakt über {email} oder Rückzahlung auf {iban}.",
        "Die Anmeldung kam von {ip}; der Inhaber ist {age} Jahre alt.",
        "Meine Kollegin {person} besucht am Montag die {street}.",
        "Herr {last} sagt, er sei am {dob} geboren und {age} Jahre alt.",
        "Bitte {person} unter {phone} anrufen, Karte {card}.",
    ),
}

OWN: dict[str, tuple[str, ...]] = {
    "en": (
        "Hi, {a_name} here. Write to {a_email_spelled} or call {a_phone}. Refund to {a_iban}.",
        "I live at {a_street}, {a_city}. My SSN is {a_nid}. Thanks, {a_first}",
    ),
    "pl": (
        "Dzień dobry, paczka jest u {a_last_infl}. Proszę pisać na {a_email_spelled} lub dzwonić {a_phone}. "
        "Zwrot na {a_iban}.",
        "Mieszkam przy {a_street}, {a_city}. PESEL {a_nid}. Pozdrawiam, {a_name}",
    ),
    "fi": (
        "Hei, lähettäkää paketti {a_last_infl}. Sähköposti {a_email_spelled}, puhelin {a_phone}. Tili {a_iban}.",
        "Asun osoitteessa {a_street}, {a_city}. Henkilötunnus {a_nid}. Terveisin {a_name}",
    ),
    "nl": (
        "Hallo, met {a_name}. Mail naar {a_email_spelled} of bel {a_phone}. Terugstorten op {a_iban}.",
        "Ik woon op {a_street}, {a_city}. BSN {a_nid}. Groeten, {a_first}",
    ),
    "sv": (
        "Hej, det är {a_name}. Mejla {a_email_spelled} eller ring {a_phone}. Återbetala till {a_iban}.",
        "Jag bor på {a_street}, {a_city}. Personnummer {a_nid}. Hälsningar, {a_first}",
    ),
    "de": (
        "Hallo, hier ist {a_name}. Schreiben Sie an {a_email_spelled} oder rufen Sie {a_phone} an. "
        "Erstattung auf {a_iban}.",
        "Ich wohne in der {a_street}, {a_city}. Steuer-ID {a_nid}. Viele Grüße, {a_first}",
    ),
}

CLEAN: dict[str, tuple[str, ...]] = {
    "en": (
        "The parcel arrived late and the box was damaged.", "Can I change the size of my order before Friday?",
        "I will call again tomorrow if nothing changes.", "Drill: restart the router, then wait two minutes.",
        "The invoice for March shows the wrong amount of 49.90 EUR.", "Please cancel the subscription at the end of the month.",
        "Thank you for the quick answer, everything works now.", "The app crashes when I open the settings page.",
        "Mark the ticket as urgent, the heating is broken.", "Will the new model be available in green?",
        "Our office is closed on Monday for the holiday.", "Rose gold covers are out of stock again.",
        "The delivery window was between nine and noon.", "Grant access to the shared folder for the team.",
        "Bill payment failed twice this week.", "Summer sale prices apply to all garden furniture.",
    ),
    "pl": (
        "Paczka dotarła z opóźnieniem, a karton był uszkodzony.", "Czy mogę zmienić rozmiar butów przed piątkiem?",
        "Zadzwonię jutro ponownie, jeśli nic się nie zmieni.", "Faktura za marzec pokazuje złą kwotę 49,90 zł.",
        "Proszę anulować subskrypcję z końcem miesiąca.", "Dziękuję za szybką odpowiedź, wszystko działa.",
        "Aplikacja zawiesza się po otwarciu ustawień.", "Kot sąsiada wszedł do skrzynki kurierskiej.",
        "Dom i ogród to nasza najpopularniejsza kategoria.", "Tak, zamówienie zostało opłacone kartą.",
        "Biuro jest nieczynne w poniedziałek z powodu święta.", "Wiosna to dobry czas na nowe rowery.",
        "Lis na logo to znak naszej marki.", "Kowal naprawił bramę w magazynie.",
        "Zamówienie numer 4512 czeka na odbiór w punkcie.", "Cena obejmuje dostawę i montaż.",
    ),
    "fi": (
        "Paketti saapui myöhässä ja laatikko oli rikki.", "Voinko vaihtaa kenkien koon ennen perjantaita?",
        "Soitan huomenna uudelleen, jos mikään ei muutu.", "Maaliskuun laskussa on väärä summa 49,90 euroa.",
        "Peruuttakaa tilaus kuun lopussa.", "Kiitos nopeasta vastauksesta, kaikki toimii nyt.",
        "Sovellus kaatuu, kun avaan asetukset.", "Kivi rikkoi ikkunan varastossa.",
        "Mäki oli liian jyrkkä kuljetusautolle.", "Toimisto on suljettu maanantaina juhlapyhän vuoksi.",
        "Kesäale koskee kaikkia puutarhakalusteita.", "Tilaus numero 4512 odottaa noutoa.",
        "Hinta sisältää toimituksen ja asennuksen.", "Laine huuhtoi laiturin rannalta.",
    ),
    "nl": (
        "Het pakket kwam te laat aan en de doos was beschadigd.", "Kan ik de maat van mijn schoenen voor vrijdag wijzigen?",
        "Ik bel morgen opnieuw als er niets verandert.", "De factuur van maart toont een verkeerd bedrag van 49,90 euro.",
        "Graag het abonnement aan het einde van de maand opzeggen.", "Bedankt voor het snelle antwoord, alles werkt nu.",
        "De app crasht als ik de instellingen open.", "De bakker op de hoek verkoopt ons brood.",
        "Visser en jager zijn oude beroepen in de regio.", "Ons kantoor is maandag gesloten vanwege de feestdag.",
        "De zomeruitverkoop geldt voor alle tuinmeubelen.", "Bestelling nummer 4512 ligt klaar bij het afhaalpunt.",
        "De prijs is inclusief bezorging en montage.", "Mijn naam staat verkeerd op de factuur.",
    ),
    "sv": (
        "Paketet kom sent och lådan var skadad.", "Kan jag byta storlek på skorna före fredag?",
        "Jag ringer igen i morgon om inget ändras.", "Fakturan för mars visar fel belopp på 49,90 kronor.",
        "Vänligen avsluta prenumerationen vid månadens slut.", "Tack för det snabba svaret, allt fungerar nu.",
        "Appen kraschar när jag öppnar inställningarna.", "Björk och ek är vanliga träslag i möblerna.",
        "Berg och dal syns från utsiktsplatsen.", "Kontoret är stängt på måndag på grund av helgen.",
        "Sommarrean gäller alla trädgårdsmöbler.", "Beställning nummer 4512 väntar på upphämtning.",
        "Priset inkluderar leverans och montering.", "Ström saknades i hela huset i går.",
    ),
    "de": (
        "Das Paket kam zu spät und der Karton war beschädigt.", "Kann ich die Größe der Schuhe vor Freitag ändern?",
        "Ich rufe morgen wieder an, wenn sich nichts ändert.", "Die Rechnung für März zeigt einen falschen Betrag von 49,90 Euro.",
        "Bitte kündigen Sie das Abonnement zum Monatsende.", "Danke für die schnelle Antwort, jetzt funktioniert alles.",
        "Die App stürzt ab, wenn ich die Einstellungen öffne.", "Der Koch hat die Suppe zu stark gewürzt.",
        "Ein Wolf wurde in der Nähe des Lagers gesehen.", "Der Bauer liefert jeden Morgen frische Milch.",
        "Unser Büro ist am Montag wegen des Feiertags geschlossen.", "Der Sommerschlussverkauf gilt für alle Gartenmöbel.",
        "Die Bestellung Nummer 4512 wartet in der Filiale.", "Der Preis enthält Lieferung und Montage.",
        "Der Fischer verkauft seinen Fang am Hafen.", "Klein aber fein ist unser neues Sortiment.",
    ),
}

SPELLED = {"en": ("dot", "at"), "pl": ("kropka", "małpa"), "fi": ("piste", "ät"), "nl": ("punt", "apenstaartje"),
           "sv": ("punkt", "snabel-a"), "de": ("Punkt", "at")}
_DOB_FORMAT = {"en": "%d %B %Y", "pl": "%d.%m.%Y", "fi": "%d.%m.%Y", "nl": "%d-%m-%Y", "sv": "%Y-%m-%d",
               "de": "%d.%m.%Y"}


@dataclass
class Entity:
    start: int
    end: int
    type: str
    author: bool


@dataclass
class Sample:
    text: str
    lang: str
    kind: str  # general | own | clean
    entities: list[Entity] = field(default_factory=list)
    known: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _inflect(lang: str, surname: str) -> str:
    """A case form of the surname as grammar books give it (Polish locative/genitive, Finnish allative)."""
    if lang == "pl":
        for end, repl in (("ski", "skim"), ("cki", "ckim"), ("dzki", "dzkim"), ("ska", "skiej"), ("cka", "ckiej")):
            if surname.endswith(end):
                return surname[: -len(end)] + repl
        if surname.endswith("a"):
            return surname[:-1] + "y"
        return surname + "a"
    if lang == "fi":
        if surname.endswith("nen"):
            return surname[:-3] + "selle"
        return surname + ("lle" if surname[-1] in "aeiouyäö" else "ille")
    return surname


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
    ex = phonenumbers.example_number(region)
    national = str(ex.national_number)[:-3] + f"{rng.randrange(1000):03d}"
    return phonenumbers.format_number(phonenumbers.parse("+" + str(ex.country_code) + national, None),
                                      phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _national_id(lang: str, fake: Faker, rng: random.Random) -> str:
    if lang == "de":
        from stdnum.de import idnr

        while True:
            body = str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(9))
            counts = [body.count(d) for d in set(body)]
            if max(counts) in (2, 3) and counts.count(max(counts)) == 1:
                for check in "0123456789":  # the ISO 7064 (11,10) check digit: the one stdnum accepts
                    if idnr.is_valid(body + check):
                        return body + check
    return fake.ssn()


def _ascii(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value)
    return "".join(c for c in folded if c.isascii() and c.isalnum()).lower() or "user"


def _values(lang: str, fake: Faker, rng: random.Random) -> dict[str, str]:
    first, last = fake.first_name(), fake.last_name()
    iban = fake.iban()
    user, domain = f"{_ascii(first)}.{_ascii(last)}", fake.free_email_domain()
    dot, at = SPELLED[lang]
    spelled = f"{_ascii(first)} {dot} {_ascii(last)} {at} {domain.replace('.', f' {dot} ')}"
    street = fake.street_address().replace("\n", " ")
    en_ssn = Faker("en_US")
    en_ssn.seed_instance(rng.randrange(10**6))
    return {
        "person": f"{fake.first_name()} {fake.last_name()}",
        "person2": f"{fake.first_name()} {fake.last_name()}",
        "first": fake.first_name(),
        "last": fake.last_name(),
        "phone": _valid_phone(fake, REGION[lang], rng),
        "card": fake.credit_card_number(),
        "street": fake.street_address().replace("\n", " "),
        "nid": en_ssn.ssn() if lang == "en" else _national_id(lang, fake, rng),
        "email": fake.free_email(),
        "iban": fake.iban(),
        "ip": fake.ipv4_public(),
        "dob": fake.date_of_birth(minimum_age=18, maximum_age=90).strftime(_DOB_FORMAT[lang]),
        "age": str(rng.randrange(18, 90)),
        "a_name": f"{first} {last}",
        "a_first": first,
        "a_last_infl": _inflect(lang, last),
        "a_email": f"{user}@{domain}",
        "a_email_spelled": spelled,
        "a_phone": re.sub(r"[\s\-]", lambda _m: rng.choice([" ", "-", "."]), _valid_phone(fake, REGION[lang], rng)),
        "a_iban": " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)).lower(),
        "a_iban_raw": iban,
        "a_street": street,
        "a_city": fake.city(),
        "a_nid": en_ssn.ssn() if lang == "en" else _national_id(lang, fake, rng),
    }


_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, values: dict[str, str], lang: str, kind: str) -> Sample:
    out: list[str] = []
    entities: list[Entity] = []
    pos = last = 0
    for m in _SLOT.finditer(template):
        literal = template[last:m.start()]
        out.append(literal)
        pos += len(literal)
        slot = m.group(1)
        value = values[slot]
        out.append(value)
        t = SLOT_TYPES.get(slot) or ("PERSON" if slot == "last" else None)
        if t:
            entities.append(Entity(pos, pos + len(value), t, slot.startswith("a_")))
        pos += len(value)
        last = m.end()
    out.append(template[last:])
    return Sample(text="".join(out), lang=lang, kind=kind, entities=entities)


def generate(*, general: int = 60, own: int = 30, seed: int = 18) -> list[Sample]:
    rng = random.Random(seed)
    samples: list[Sample] = []
    for lang, locale in LOCALES.items():
        fake = Faker(locale)
        fake.seed_instance(seed * 100 + sum(map(ord, lang)))
        for k in range(general):
            samples.append(_fill(GENERAL[lang][k % len(GENERAL[lang])], _values(lang, fake, rng), lang, "general"))
        for k in range(own):
            v = _values(lang, fake, rng)
            sample = _fill(OWN[lang][k % len(OWN[lang])], v, lang, "own")
            sample.known = {"names": (v["a_name"],), "emails": (v["a_email"],), "phones": (v["a_phone"],),
                            "addresses": (f"{v['a_street']}, {v['a_city']}",),
                            "other": (v["a_iban_raw"], v["a_nid"])}
            samples.append(sample)
        for text in CLEAN[lang]:
            samples.append(Sample(text=text, lang=lang, kind="clean"))
        lorem = Faker(locale)
        lorem.seed_instance(seed)
        if lang in ("pl", "nl", "de"):  # locales whose Faker word list is in the language itself
            samples += [Sample(text=lorem.sentence(nb_words=10), lang=lang, kind="clean") for _ in range(30)]
    return samples


def stats(samples: list[Sample]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in samples:
        out.setdefault(s.lang, {}).setdefault(s.kind, 0)
        out[s.lang][s.kind] += 1
    return out
