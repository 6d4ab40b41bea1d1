"""English: VADER (``vaderSentiment`` 3.3.2, MIT) with its own lexicon and rules; only politeness markers are unscored."""

from __future__ import annotations

from .base import LanguageRules, Sentiment, label_for

POLITE = ("please", "pls", "plz")

RULES = LanguageRules(code="en", lexicon_file="", negators=frozenset())


class VaderAnalyzer:
    """Adapter with the same interface as :class:`LexiconAnalyzer`."""

    rules = RULES

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()
        # Politeness markers are not a mood in a support ticket ("Please send the invoice" is neutral); the
        # other languages' lists leave "bitte", "proszę", "alstublieft", "snälla" out likewise.
        for word in POLITE:
            self._vader.lexicon.pop(word, None)
        self.lexicon: dict[str, float] = self._vader.lexicon

    def compound(self, text: str) -> float:
        from .base import MAX_CHARS

        return round(float(self._vader.polarity_scores(text[:MAX_CHARS])["compound"]), 4)

    def analyze(self, text: str) -> Sentiment:
        score = self.compound(text)
        return Sentiment(label_for(score), score)

    def plain_polarity(self, text: str) -> int:
        from .base import WORD

        return sum((v > 0) - (v < 0) for v in (self.lexicon.get(w.lower(), 0.0) for w in WORD.findall(text)))
