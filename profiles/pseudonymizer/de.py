"""German: cues, "-straße/-str./-weg/-allee/..." streets, NNNNN postal codes. Nouns are capitalised in
German, so capitalisation alone says little: common words count as names only in a name context."""

from __future__ import annotations

from .base import CAP, HOUSE, LanguageSpec

_STREET = (
    rf"(?<!\w)(?:{CAP}[ \t\-]+){{0,2}}[A-ZÄÖÜ][^\W\d_\-]*(?:-[A-ZÄÖÜ][^\W\d_\-]*)*"
    rf"(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|markt|graben|hof|"
    rf"wall|promenade|kai|stieg|twiete|zeile|park|-Straße|-Weg|-Allee|-Platz|-Ring|-Gasse)"
    rf"\s+{HOUSE}"
    # "Berliner Straße 5", "Am Alten Weg 3": a separate street word after a capitalised word (not an article)
    rf"|(?<!\w)(?!(?:Der|Die|Das|Den|Dem|Des|Ein|Eine|Einen|Im|Zum|Zur|Vom|Beim)\b){CAP}[ \t]+"
    rf"(?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee|Markt)\s+{HOUSE}"
)
_POSTAL_CITY = rf"(?:D-)?\d{{5}}(?:[ \t]+{CAP}(?:[ \t\-]+(?:{CAP}|am|an|der|im|in|ob|bei)){{0,3}})?"

SPEC = LanguageSpec(
    code="de",
    country="DE",
    name_cues=("mein name ist", "ich heiße", "ich heisse", "name", "herr", "herrn", "frau", "liebe", "lieber", "sehr geehrte", "sehr geehrter", "gesprochen mit", "ansprechpartner", "ansprechpartnerin"),
    titles=("herr", "herrn", "frau", "fräulein", "dr.", "prof.", "hr.", "fr."),
    signoffs=("mit freundlichen grüßen", "mit freundlichen grüssen", "freundliche grüße", "freundliche grüsse", "viele grüße", "viele grüsse", "beste grüße", "beste grüsse", "liebe grüße", "grüße", "grüsse", "mfg", "lg", "gruß", "gruss", "herzliche grüße"),
    weak_cues=("ich bin", "kunde", "kundin", "kollege", "kollegin", "nachbar", "nachbarin", "hallo", "von", "danke", "vielen dank"),
    phone_regions=("DE", "AT", "CH"),
    street=_STREET,
    postal_city=_POSTAL_CITY,
    months=("jan", "feb", "märz", "maerz", "apr", "mai", "jun", "jul", "aug", "sep", "okt", "nov", "dez"),
    dob_cues=("geboren", "geburtsdatum", "geb.", "geburtstag"),
    ages=(r"\b(\d{1,3})\s+jahre\s+alt\b", r"\bich\s+bin\s+(\d{1,3})(?:\s+jahre)?\b", r"\balter[:\s]+(\d{1,3})\b",
          r"\b(\d{1,3})-jährige[rn]?\b"),
    name_endings=(("s", ""), ("'", "")),
)
