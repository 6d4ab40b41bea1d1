"""German: the German Polarity Lexicon as packaged in ``textblob-de`` 0.4.3 (MIT; Klenner, Clematide,
Wiegand, Peters), read from ``data/de.tsv`` (no textblob, no NLTK), with German negation and intensifiers."""

from .base import LanguageRules, words

RULES = LanguageRules(
    code="de",
    lexicon_file="de.tsv",
    negators=words(["nicht", "kein", "keine", "keinen", "keinem", "keiner", "keines", "nie", "niemals",
                    "nichts", "ohne", "weder", "nirgends"]),
    boosters=words(["sehr", "extrem", "äußerst", "absolut", "total", "völlig", "wirklich", "echt", "besonders",
                    "höchst", "unglaublich", "ziemlich", "so", "zu", "richtig", "enorm", "überaus"]),
    dampeners=words(["etwas", "kaum", "wenig", "bisschen", "leicht", "eher", "relativ", "halbwegs"]),
    contrast=words(["aber", "jedoch", "allerdings", "trotzdem", "dennoch"]),
    ignore=words(["bitte", "ich", "du", "er", "sie", "es", "wir", "ihr", "mein", "meine", "meinen", "meinem", "meiner", "ihre", "ihr", "ihren", "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "und", "oder", "ist", "sind", "war", "waren", "bin", "habe", "hat", "haben", "hatte", "wird", "werden", "wurde", "kann", "können", "möchte", "möchten", "will", "wollen", "würde", "soll", "muss", "ändern", "senden", "schicken", "bestellen", "bestellung", "lieferung", "adresse", "konto", "rechnung", "frage", "für", "mit", "von", "bei", "auf", "aus", "nach", "zum", "zur", "im", "am", "an", "in", "wie", "was", "wann", "wo", "warum", "dass", "ob", "wenn", "auch", "noch", "schon", "mal", "hier", "da", "dann", "jetzt", "heute"]),
    suffixes=(("sten", ""), ("ste", ""), ("en", ""), ("em", ""), ("er", ""), ("es", ""), ("e", "")),
    stemmer="german",
)
