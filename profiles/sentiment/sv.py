"""Swedish: the Swedish VADER lexicon of ``vaderSentiment-swedish`` 1.0.3 (MIT; copied, since the package
clashes with ``vaderSentiment``'s module name), AFINN-165 Swedish (Apache-2.0) filling its gaps, both in
``data/sv.tsv``; negators and intensifiers as in that package.

Changes chosen on the development set only (``bench/data/sentiment/dev/sv.jsonl`` + ``sv-2.jsonl``, 90 texts;
never on the benchmark's 210): no Snowball stem fallback (the Swedish stemmer merges words of other meaning:
"behöver" (needs) with "behövande" (needy), "ställde" with "ställdes"), the inflection rewrites stay; the
negating prefix "o-" ("otrevlig", "ovänlig", "otålig": the rest's valence negated, only for a word the
lexicon lacks); a question without "!" counts half (a request, not a mood)."""

from .base import LanguageRules, words

RULES = LanguageRules(
    code="sv",
    lexicon_file="sv.tsv",
    negators=words(["inte", "icke", "ej", "varken", "aldrig", "ingen", "inget", "inga", "ingenting",
                    "ingenstans", "utan", "sällan"]),
    boosters=words(["absolut", "otroligt", "väldigt", "helt", "mycket", "extremt", "ytterst", "riktigt",
                    "verkligen", "särskilt", "enormt", "fruktansvärt", "så", "för", "jätte",
                    "totalt", "oerhört"]),
    dampeners=words(["lite", "något", "ganska", "knappt", "nästan", "delvis", "relativt", "aningen"]),
    contrast=words(["men", "dock", "ändå"]),
    ignore=words(["jag", "du", "han", "hon", "den", "det", "vi", "ni", "de", "min", "mitt", "mina", "er", "ert", "era", "en", "ett", "och", "eller", "är", "var", "varit", "har", "hade", "blir", "blev", "kan", "kunna", "vill", "ville", "skulle", "ska", "måste", "ändra", "skicka", "skickade", "beställa", "beställning", "leverans", "adress", "konto", "faktura", "fråga", "för", "med", "från", "hos", "på", "ur", "till", "i", "vid", "hur", "vad", "när", "var", "varför", "att", "om", "också", "redan", "här", "där", "då", "nu", "idag", "snälla"]),
    suffixes=(("aste", ""), ("are", ""), ("na", "en"), ("a", ""), ("t", ""), ("e", "")),
    stemmer=None,
    negation_prefixes=("o",),
    question_scale=0.5,
)
