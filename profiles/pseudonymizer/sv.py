"""Swedish: cues, "-gatan/-vägen/-gränd/..." streets, NNN NN postal codes."""

from __future__ import annotations

from .base import CAP, HOUSE, LanguageSpec

_STREET = (
    rf"(?<!\w)(?:{CAP}[ \t]+){{0,2}}[A-ZÅÄÖ][^\W\d_]*(?:gatan|vägen|gränd|torget|stigen|backen|allén|plan|leden|"
    rf"gata|väg|platsen|stråket|kajen|esplanaden|parken|slingan|svängen|liden|höjden|ringen|tået|torg)\s+{HOUSE}"
    rf"(?:\s*(?:lgh|tr)\.?\s*\d{{1,4}})?"
)
_POSTAL_CITY = rf"(?:SE-?)?\d{{3}}\s?\d{{2}}(?:[ \t]+{CAP}(?:[ \t\-]+{CAP}){{0,1}})?"

SPEC = LanguageSpec(
    code="sv",
    country="SE",
    name_cues=("jag heter", "mitt namn är", "namn", "herr", "fru", "fröken", "bästa", "talade med", "pratade med", "kontaktperson"),
    titles=("herr", "fru", "fröken", "dr", "hr"),
    signoffs=("hälsningar", "med vänliga hälsningar", "vänliga hälsningar", "mvh", "bästa hälsningar", "hälsning", "allt gott"),
    weak_cues=("jag är", "kund", "kunden", "kollega", "granne", "grannen", "hej", "hejsan", "tack", "tack på förhand", "vänligen"),
    phone_regions=("SE",),
    street=_STREET,
    postal_city=_POSTAL_CITY,
    months=("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
    dob_cues=("född", "födelsedatum", "födelsedag", "f."),
    ages=(r"\b(\d{1,3})\s+år\s+gammal\b", r"\bjag\s+är\s+(\d{1,3})(?:\s+år)?\b", r"\bålder[:\s]+(\d{1,3})\b",
          r"\b(\d{1,3})-åring\b"),
    name_endings=(("s", ""),),
)
