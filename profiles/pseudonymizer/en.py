"""English: spaCy NER (only for English text) plus gazetteers, cues, UK/US addresses, ages and birth dates."""

from __future__ import annotations

from .base import CAP, LanguageSpec

# Street suffixes (the common USPS / Royal Mail forms, full and abbreviated).
_SUFFIXES = (
    "Street|St|Road|Rd|Avenue|Ave|Av|Lane|Ln|Drive|Dr|Close|Way|Court|Ct|Place|Pl|Square|Sq|Crescent|Cres|"
    "Terrace|Ter|Boulevard|Blvd|Gardens|Gdns|Grove|Gr|Hill|Park|Row|Mews|Walk|Parade|Parkway|Pkwy|Highway|Hwy|"
    "Circle|Cir|Trail|Trl|Plaza|Point|Pt|Ridge|Heights|Hts|View|Vale|Green|Rise|Wharf|Quay|Embankment|Gate|"
    "Passage|Alley|Bridge|Brg|Path|Pike|Loop|Bend|Crossing|Xing|Cove|Creek|Estates|Falls|Fields|Forest|Glen|Harbor|"
    "Harbour|Haven|Hollow|Island|Junction|Knoll|Lake|Lakes|Landing|Manor|Meadow|Meadows|Mill|Mills|Mount|"
    "Mountain|Mountains|Orchard|Oval|Pass|Pines|Plains|Port|Prairie|Ranch|Shore|Shores|Spring|Springs|Spur|"
    "Station|Stream|Summit|Trace|Track|Turnpike|Valley|Villages?|Ville|Vista|Well|Wells|Wood|Woods|Brooks?|"
    "Burgs?|Bypass|Camp|Canyon|Cape|Causeway|Center|Centre|Cliffs?|Common|Corners?|Courts|Curve|Dale|Dam|"
    "Divide|Expressway|Extension|Ferry|Flats?|Ford|Fork|Forks|Freeway|Garden|Groves|Harbors|Hills|Inlet|Isle|"
    "Key|Keys|Light|Lights|Locks?|Lodge|Motorway|Neck|Overpass|Parks|Parkways|Radial|Ramp|Rapids|Rest|Roads|"
    "Route|Shoal|Skyway|Squares|Streets|Throughway|Tunnel|Underpass|Union|Views|Walks|Ways"
)
_UNIT = r"(?:(?:,?\s*)(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|#)\s*\w{1,5})?"
_STREET = (
    rf"(?:(?:Flat|Apartment|Apt\.?|Unit|Studio|Suite|Room)[ \t]+\w{{1,5}},?[ \t]+(?:\d{{1,5}}[A-Za-z]?,?[ \t]+)?"
    rf"|(?<![\w.,])\d{{1,5}}[A-Za-z]?,?[ \t]+)"
    # a lower-case suffix ("Anthony circles") only after a capitalised word: "2 points" is no street
    rf"(?:(?:{CAP}[ \t]+){{0,3}}(?:{_SUFFIXES})|(?:{CAP}[ \t]+){{1,3}}(?i:{_SUFFIXES.lower()}))s?\b\.?{_UNIT}"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}"
_POSTAL_CITY = (
    rf"{_UK_POSTCODE}(?:[ \t]+{CAP}(?:[ \t]+{CAP}){{0,2}})?"
    rf"|{CAP}(?:[ \t]+{CAP}){{0,2}},?\s+(?:{_UK_POSTCODE}|[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?|\d{{5}}(?:-\d{{4}})?)"
)

SPEC = LanguageSpec(
    code="en",
    country="GB",
    name_cues=("my name is", "name:", "named", "signed", "dear", "contact person", "spoke to", "spoke with", "talked to", "sincerely,"),
    titles=("mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "lady", "lord"),
    signoffs=("regards", "kind regards", "best regards", "warm regards", "best wishes", "sincerely", "yours sincerely", "yours faithfully", "yours truly", "all the best"),
    weak_cues=("i am", "i'm", "this is", "called", "customer", "from", "colleague", "neighbour", "neighbor", "agent", "hi", "hello", "best", "thanks", "thank you", "many thanks", "cheers"),
    phone_regions=("GB", "US", "IE"),
    street=_STREET,
    postal_city=_POSTAL_CITY,
    months=("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    dob_cues=("born", "date of birth", "birth date", "birthdate", "birthday", "dob", "d.o.b."),
    ages=(r"\b(\d{1,3})[ -](?:years?|yrs?)[ -]old\b", r"\baged\s+(\d{1,3})\b", r"\bage(?:d)?[:\s]+(\d{1,3})\b",
          r"\b(?:i am|i'm|he is|she is|he's|she's)\s+(\d{1,3})\b(?!\s*(?:%|minutes|hours|days|items))"),
    name_endings=(("'s", ""), ("’s", ""), ("s", "")),
    use_ner=True,
)
