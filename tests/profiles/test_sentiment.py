"""Offline ticket sentiment (issue 18 §4): per language, clear examples are labelled right, negation flips,
a language without a model is ``unknown``; nothing is loaded per call."""

from __future__ import annotations

import pytest

from profiles.sentiment import (
    LABEL_UNKNOWN,
    NEGATIVE_THRESHOLD,
    POSITIVE_THRESHOLD,
    analyzer_get,
    label_for,
    sentiment_analyze,
    sentiment_languages,
    sentiment_of,
)

# (positive, negative, neutral, (affirmative, the same negated)) per language, written for these tests.
CASES = {
    "en": ("The support agent was wonderful and solved everything quickly, thank you!",
           "Terrible service. The parcel arrived broken and nobody answers, I am very disappointed.",
           "Please send the invoice for order 4471 to the accounts department.",
           ("The replacement works well.", "The replacement does not work well.")),
    "de": ("Der Kundenservice war wirklich hervorragend und sehr freundlich, vielen Dank!",
           "Die Lieferung kam beschädigt an, ich bin sehr enttäuscht und verärgert.",
           "Bitte senden Sie die Rechnung für Bestellung 4471 an unsere Buchhaltung.",
           ("Das Ersatzgerät ist gut.", "Das Ersatzgerät ist nicht gut.")),
    "nl": ("Geweldige service, de medewerker was heel vriendelijk en behulpzaam!",
           "Het pakket kwam kapot aan en ik ben erg teleurgesteld, slechte service.",
           "Graag de factuur van bestelling 4471 naar onze administratie sturen.",
           ("Het apparaat is goed.", "Het apparaat is niet goed.")),
    "pl": ("Świetna obsługa, konsultantka była bardzo miła i pomocna, dziękuję!",
           "Paczka przyszła uszkodzona, jestem bardzo rozczarowany i zły, fatalna obsługa.",
           "Proszę przesłać fakturę do zamówienia 4471 do naszego działu księgowości.",
           ("Urządzenie jest dobre.", "Urządzenie nie jest dobre.")),
    "fi": ("Todella hyvää ja ystävällistä palvelua, kiitos paljon avusta!",
           "Paketti tuli rikki ja olen todella pettynyt, huono palvelu.",
           "Lähettäkää tilauksen 4471 lasku kirjanpitoomme.",
           ("Uusi laite on hyvä.", "Uusi laite ei ole hyvä.")),
    "sv": ("Fantastisk service, personalen var mycket trevlig och hjälpsam, tack!",
           "Paketet kom trasigt och jag är mycket besviken, dålig service.",
           "Skicka fakturan för order 4471 till vår ekonomiavdelning.",
           ("Leveransen var bra.", "Leveransen var inte bra.")),
}


def test_every_supported_language_has_a_model():
    assert set(sentiment_languages()) == {"en", "de", "nl", "pl", "fi", "sv"}


@pytest.mark.parametrize("language", sorted(CASES))
def test_clear_examples_are_labelled_right(language):
    positive, negative, neutral, _ = CASES[language]
    assert sentiment_analyze(positive, language=language).label == "positive"
    assert sentiment_analyze(negative, language=language).label == "negative"
    assert sentiment_analyze(neutral, language=language).label == "neutral"


@pytest.mark.parametrize("language", sorted(CASES))
def test_negation_flips_the_polarity(language):
    plain, negated = CASES[language][3]
    a = sentiment_analyze(plain, language=language)
    b = sentiment_analyze(negated, language=language)
    assert a.score is not None and b.score is not None
    assert a.score > 0 > b.score, (a, b)
    assert (a.label, b.label) == ("positive", "negative")


@pytest.mark.parametrize("language", sorted(CASES))
def test_scores_are_in_range_and_labels_follow_the_thresholds(language):
    for text in CASES[language][:3]:
        result = sentiment_analyze(text, language=language)
        assert -1.0 <= result.score <= 1.0
        assert result.label == label_for(result.score)
    assert label_for(POSITIVE_THRESHOLD) == "positive" and label_for(NEGATIVE_THRESHOLD) == "negative"
    assert label_for((POSITIVE_THRESHOLD + NEGATIVE_THRESHOLD) / 2) == "neutral"


@pytest.mark.parametrize("language", ["fr", "da", "und", "xx", ""])
def test_a_language_without_a_model_is_unknown_never_guessed(language):
    result = sentiment_analyze("C'est vraiment excellent, merci beaucoup !", language=language)
    assert (result.label, result.score) == (LABEL_UNKNOWN, None)
    assert analyzer_get(language) is None


def test_an_english_text_under_another_languages_model_is_not_scored_with_english_words():
    # The German model does not know English words: an English text declared German stays near neutral,
    # it is not silently scored with the English lexicon.
    text = "Awesome, wonderful, fantastic service!"
    assert sentiment_analyze(text, language="en").label == "positive"
    assert sentiment_analyze(text, language="de").score != sentiment_analyze(text, language="en").score


def test_no_text_has_no_mood():
    assert sentiment_analyze("", language="en") == sentiment_analyze("   ", language="de")
    assert sentiment_analyze(None, language="en").label == ""
    assert sentiment_of("") == ("", sentiment_analyze("", language="en"))


@pytest.mark.parametrize("language", sorted(CASES))
def test_language_detection_then_sentiment(language):
    positive = CASES[language][0]
    detected, result = sentiment_of(positive, prior=language)
    assert (detected, result.label) == (language, "positive")


def test_inflected_forms_count_through_the_stem_fallback():
    # "tyytyväisiä" (partitive plural) is not in the Finnish list, "tyytyväinen" is.
    fi = analyzer_get("fi")
    assert "tyytyväisiä" not in fi.lexicon and fi.valence("tyytyväisiä") > 0
    de = analyzer_get("de")
    assert de.valence("schlechten") < 0
    # short stems collide and are not used ("ändern" would otherwise take the valence of "anders")
    assert de.valence("ändern") == 0.0


def test_polish_fused_negation_prefix():
    pl = analyzer_get("pl")
    assert pl.valence("dobry") > 0
    assert sentiment_analyze("Obsługa była niedobra.", language="pl").label == "negative"


def test_intensifiers_raise_and_contrast_shifts_the_weight():
    base = sentiment_analyze("Die Lieferung war gut.", language="de").score
    boosted = sentiment_analyze("Die Lieferung war sehr gut.", language="de").score
    assert boosted > base > 0
    but = sentiment_analyze("Die Lieferung war gut, aber der Service war schlecht.", language="de").score
    assert but < 0


def test_analyzers_are_built_once_per_process():
    assert analyzer_get("pl") is analyzer_get("pl")
    assert analyzer_get("en") is analyzer_get("en")


def test_dutch_and_swedish_negating_prefixes_and_no_stem_collisions():
    nl, sv = analyzer_get("nl"), analyzer_get("sv")
    # "on-" / "o-" negate a known word the lexicon lacks in its prefixed form
    assert "onbereikbaar" not in nl.lexicon and nl.valence("bereikbaar") > 0 > nl.valence("onbereikbaar")
    assert "otrevlig" not in sv.lexicon and sv.valence("trevlig") > 0 > sv.valence("otrevlig")
    assert sentiment_analyze("Servitören var otrevlig.", language="sv").label == "negative"
    # no Snowball stem fallback: "stuur" (I send) is not "stuurs" (surly), "behöver" (needs) not "behövande"
    assert nl.valence("stuurs") < 0 and nl.valence("stuur") == 0.0
    assert sv.valence("behövande") < 0 and sv.valence("behöver") == 0.0
    assert sentiment_analyze("Ik stuur u vandaag het formulier.", language="nl").label == "neutral"


def test_a_dutch_or_swedish_question_counts_half_unless_it_exclaims():
    asked = sentiment_analyze("Is de helpdesk in het weekend bereikbaar?", language="nl")
    stated = sentiment_analyze("De helpdesk is in het weekend bereikbaar.", language="nl")
    assert asked.label == "neutral" and 0 < asked.score < stated.score
    nl = analyzer_get("nl")
    assert nl.compound("Waarom is de helpdesk zo onvriendelijk?!") < nl.compound("Waarom is de helpdesk zo onvriendelijk?") < 0
    # other languages keep the plain VADER-style rules
    assert analyzer_get("de").rules.question_scale == 1.0
