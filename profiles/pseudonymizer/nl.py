"""Dutch: cues, "-straat/-weg/-laan/..." streets, NNNN AA postal codes."""

from __future__ import annotations

from .base import CAP, HOUSE, LanguageSpec

_STREET = (
    rf"(?<!\w)(?:(?:{CAP}|van|de|der|den|het|'t|ter|ten)\s+){{0,3}}[A-Z][^\W\d_]*(?:straat|weg|laan|plein|gracht|kade|"
    rf"singel|dijk|hof|pad|steeg|dreef|markt|park|boulevard|plantsoen|baan|wal|burgwal|erf|ring|"
    rf"kanaal|poort|zijde|vaart|straatweg|allee|lei)(?:[ \t]+{CAP})?\s+{HOUSE}(?:[\s\-]?(?:hs|bis|huis|[IVX]+))?"
)
_POSTAL_CITY = rf"\d{{4}}\s?[A-Z]{{2}}(?:[ \t]+{CAP}(?:[ \t\-]+{CAP}){{0,2}})?"

SPEC = LanguageSpec(
    code="nl",
    country="NL",
    name_cues=("mijn naam is", "ik heet", "naam", "meneer", "mevrouw", "dhr.", "mevr.", "dhr", "mevr", "heer", "beste", "geachte", "sprak met", "gesproken met", "contactpersoon"),
    titles=("meneer", "mevrouw", "dhr.", "mevr.", "heer", "juffrouw", "dr.", "mr.", "ir.", "drs."),
    signoffs=("met vriendelijke groet", "met vriendelijke groeten", "vriendelijke groet", "vriendelijke groeten", "groeten", "groet", "hartelijke groet", "mvg", "m.v.g.", "alvast bedankt"),
    weak_cues=("ik ben", "klant", "collega", "buurman", "buurvrouw", "hallo", "hoi", "namens", "bedankt", "dank u wel"),
    phone_regions=("NL", "BE"),
    street=_STREET,
    postal_city=_POSTAL_CITY,
    months=("jan", "feb", "maart", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
    dob_cues=("geboren", "geboortedatum", "geb.", "geboortedag"),
    ages=(r"\b(\d{1,3})\s+jaar\s+oud\b", r"\bik\s+ben\s+(\d{1,3})(?:\s+jaar)?\b", r"\bleeftijd[:\s]+(\d{1,3})\b",
          r"\b(\d{1,3})-jarige?\b"),
    name_endings=(("'s", ""), ("s", "")),
)
