"""Finnish: AFINN-165 translated (Apache-2.0, Finn Årup Nielsen), ``data/fi.tsv``; inflected forms through
the Snowball Finnish stemmer; negation by the negative verb (``ei``, ``en``, ``et``, ...)."""

from .base import LanguageRules, words

RULES = LanguageRules(
    code="fi",
    lexicon_file="fi.tsv",
    negators=words(["ei", "en", "et", "emme", "ette", "eivät", "eikä", "enkä", "etkä", "ilman"]),
    boosters=words(["erittäin", "todella", "tosi", "hyvin", "aivan", "täysin", "äärimmäisen", "uskomattoman",
                    "kovin", "niin", "liian", "ihan", "hirveän", "kauhean", "valtavan"]),
    dampeners=words(["hieman", "vähän", "melko", "aika", "jokseenkin", "hiukan", "tuskin", "lähes"]),
    contrast=words(["mutta", "kuitenkin", "silti"]),
    ignore=words(["minä", "mä", "sinä", "hän", "me", "te", "he", "se", "ne", "minun", "mun", "teidän", "on", "ovat", "oli", "olivat", "olen", "olla", "ollut", "olisi", "voi", "voisin", "voitteko", "haluan", "haluaisin", "haluaisimme", "pitää", "vaihtaa", "lähettää", "lähettäkää", "muuttaa", "tilaus", "tilauksen", "toimitus", "osoite", "lasku", "kysymys", "ja", "tai", "että", "kun", "jos", "myös", "vielä", "jo", "nyt", "tänään", "tämä", "tuo", "mikä", "miten", "milloin", "missä", "miksi"]),
    suffixes=(("isesti", "inen"), ("isessa", "inen"), ("isessä", "inen"), ("isena", "inen"),
              ("isenä", "inen"), ("isten", "inen"), ("isiä", "inen"), ("isia", "inen"), ("isen", "inen"),
              ("ista", "inen"), ("istä", "inen"), ("iset", "inen"), ("lla", ""), ("llä", ""), ("ssa", ""),
              ("ssä", ""), ("sta", ""), ("stä", ""), ("lle", ""), ("ksi", ""), ("ta", ""), ("tä", ""),
              ("a", ""), ("ä", ""), ("n", ""), ("t", "")),
    stemmer="finnish",
)
