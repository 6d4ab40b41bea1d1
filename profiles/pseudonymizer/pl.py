"""Polish: cues, case endings of names (-ski/-cki/-ska backstop included), "ul."/"al." streets, NN-NNN."""

from __future__ import annotations

from .base import CAP, HOUSE, LanguageSpec

_STREET = (
    rf"(?<!\w)(?:ul\.|ulica|ulicy|al\.|aleja|alei|al|os\.|osiedle|osiedlu|pl\.|plac|placu|rondo|skwer|"
    rf"ul|bulwar)\s+(?:(?:{CAP}|\d{{1,2}}|[IVX]+)\s+){{0,3}}?(?:{CAP}|[IVX]+)\s+{HOUSE}(?:\s*m\.\s*\d{{1,4}})?"
)
_POSTAL_CITY = rf"\d{{2}}-\d{{3}}(?:[ \t]+{CAP}(?:[ \t\-]+{CAP}){{0,2}})?"

SPEC = LanguageSpec(
    code="pl",
    country="PL",
    name_cues=("nazywam się", "nazywa się", "mam na imię", "imię i nazwisko", "pan", "pani", "pana", "panem", "panią", "panu", "państwa", "rozmawiałem z", "rozmawiałam z", "podpisano", "szanowny panie", "szanowna pani"),
    titles=("pan", "pani", "p.", "dr", "mgr", "inż.", "prof."),
    signoffs=("pozdrawiam", "pozdrawiam serdecznie", "serdecznie pozdrawiam", "z poważaniem", "z wyrazami szacunku", "łączę pozdrowienia", "pozdrowienia"),
    weak_cues=("jestem", "klient", "klientka", "klienta", "od", "kolega", "koleżanka", "sąsiad", "sąsiadka", "sąsiada", "sąsiadki", "u", "dla", "z", "kontakt", "dzień dobry", "witam", "dziękuję", "dzięki"),
    phone_regions=("PL",),
    street=_STREET,
    postal_city=_POSTAL_CITY,
    months=("stycz", "lut", "mar", "kwie", "maj", "maja", "czerw", "lip", "sierp", "wrze", "paźdz", "pazdz",
            "listop", "grud"),
    dob_cues=("urodzi", "urodzon", "ur.", "data urodzenia", "daty urodzenia", "urodzin"),
    ages=(r"\b(?:mam|ma|miał|miała|lat(?:ek)?)\s+(\d{1,3})\s+(?:lat|lata|rok)\b", r"\b(\d{1,3})\s*-?\s*lat(?:ek|ni|nia|ka)\b",
          r"\b(?:mam|ma)\s+(\d{1,3})\s+lat[a]?\b", r"\bwiek(?:u)?[:\s]+(\d{1,3})\b"),
    name_endings=(
        ("skiego", "ski"), ("skiemu", "ski"), ("skim", "ski"), ("skich", "ski"), ("ską", "ska"), ("skiej", "ska"),
        ("ckiego", "cki"), ("ckiemu", "cki"), ("ckim", "cki"), ("cką", "cka"), ("ckiej", "cka"),
        ("dzkiego", "dzki"), ("dzkim", "dzki"), ("dzką", "dzka"), ("dzkiej", "dzka"),
        ("iego", "i"), ("iemu", "i"), ("ym", "y"), ("ego", "y"), ("emu", "y"), ("ej", "a"), ("ą", "a"),
        ("ę", "a"), ("ii", "ia"), ("ie", "a"), ("y", "a"), ("i", "a"), ("owi", ""), ("iem", ""), ("em", ""),
        ("a", ""), ("u", ""), ("ie", ""), ("ów", ""), ("owie", ""), ("ki", "ka"), ("dze", "ga"), ("ce", "ka"),
        ("rze", "r"), ("le", "ł"), ("ła", "ł"), ("cie", "ta"), ("ku", "ek"), ("ka", "ek"), ("kiem", "ek"),
        ("kowi", "ek"), ("ca", "ec"), ("cem", "ec"), ("cowi", "ec"), ("ńca", "niec"),
    ),
)
