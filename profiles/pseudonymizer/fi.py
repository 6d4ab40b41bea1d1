"""Finnish: cues, case endings (Virtasen, Virtaselle), "-katu/-tie/-kuja" streets, NNNNN postal codes."""

from __future__ import annotations

from .base import CAP, HOUSE, LanguageSpec

_STREET = (
    rf"(?<!\w)(?:{CAP}[ \t]+){{0,2}}[A-ZÅÄÖ][^\W\d_]*[ \t]?(?:katu|kadulla|kadun|tie|tiellä|tien|kuja|kujalla|polku|"
    rf"tori|kaari|rinne|ranta|väylä|raitti|aukio|puistikko|katu|bulevardi|piha|mäki|penger|portti|"
    rf"ntie|nkatu)\s+{HOUSE}(?:\s+[A-Z]\s*\d{{1,3}}|\s+as\.?\s*\d{{1,3}})?"
)
_POSTAL_CITY = rf"\d{{5}}(?:[ \t]+{CAP}(?:[ \t\-]+{CAP}){{0,1}})?"

_ENDINGS = []
for _nom, _stem in (("nen", "se"),):
    for _case in ("n", "lle", "lla", "lta", "ssa", "sta", "en", "na", "ksi", "ni", "mme", "nne", "lleen"):
        _ENDINGS.append((_stem + _case, _nom))
_ENDINGS += [("sta", "nen"), ("seen", "nen"), ("sia", "nen"), ("sten", "nen"), ("sille", "nen")]
for _case in ("n", "lle", "lla", "lta", "ssa", "sta", "a", "ä", "ksi", "na", "nä", "han", "hin", "lleen", "ineen"):
    _ENDINGS.append((_case, ""))
_ENDINGS += [("tin", "tti"), ("tille", "tti"), ("kin", "kki"), ("kille", "kki"), ("pin", "ppi"), ("pille", "ppi"),
             ("lin", "li"), ("nin", "ni"), ("rin", "ri"), ("in", "i"), ("ille", "i"), ("ilta", "i"), ("iä", "i"),
             ("ia", "i"), ("en", "i"), ("elle", "i"), ("ltä", ""), ("llä", ""), ("ssä", ""), ("stä", "")]

SPEC = LanguageSpec(
    code="fi",
    country="FI",
    name_cues=("nimeni on", "minun nimeni on", "nimi", "herra", "rouva", "neiti", "terveisin", "puhuin", "yhteyshenkilö"),
    titles=("herra", "rouva", "neiti", "tri", "hra", "rva"),
    signoffs=("terveisin", "ystävällisin terveisin", "parhain terveisin", "t.", "terv.", "yst. terv.", "hyvää päivänjatkoa"),
    weak_cues=("olen", "asiakas", "asiakkaan", "kollega", "naapuri", "naapurini", "hei", "moi", "hyvä", "kiittäen", "kiitos"),
    phone_regions=("FI",),
    street=_STREET,
    postal_city=_POSTAL_CITY,
    months=("tammi", "helmi", "maalis", "huhti", "touko", "kesä", "heinä", "elo", "syys", "loka", "marras", "joulu"),
    dob_cues=("syntyn", "syntymäaika", "syntymäpäivä", "synt."),
    ages=(r"\b(\d{1,3})\s*-?\s*vuotia(?:s|an|aan|alle|ana|ita)\b", r"\bolen\s+(\d{1,3})\s+vuotta\b",
          r"\bikä[:\s]+(\d{1,3})\b"),
    name_endings=tuple(_ENDINGS),
)
