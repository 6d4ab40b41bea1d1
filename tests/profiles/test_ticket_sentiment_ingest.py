"""Ticket ingestion computes language and sentiment on the original text (issue 18 §4): single record,
batch and CSV paths; per-record errors unchanged; an update without text clears the mood."""

from __future__ import annotations

import io

import pytest

from profiles.models import Ticket

pytestmark = pytest.mark.django_db

ACTOR = "job:test_sentiment"


def _customer(external_id: str, *, country: str = "", preferred_language: str | None = None):
    from profiles.services import customer_ingest

    personal = {"preferred_language": preferred_language} if preferred_language else {}
    return customer_ingest(source="crm", external_id=external_id, country=country or None, personal=personal,
                           actor=ACTOR).customer_id


def _ticket(external_id: str) -> Ticket:
    from config import blind_index

    return Ticket.objects.get(source="support", external_digest=blind_index.source_index("support", external_id))


def test_single_record_ingest_stores_language_label_and_score_only():
    from profiles.services import ticket_ingest

    cid = _customer("S-1")
    text = "Awful experience, the product broke after one day and support was useless."
    ticket_ingest(source="support", external_id="T-1", customer_id=cid, opened_at="2025-06-01T10:00:00Z",
                  text=text, actor=ACTOR)
    t = _ticket("T-1")
    assert (t.language, t.sentiment_label) == ("en", "negative")
    assert t.sentiment_score is not None and t.sentiment_score < -0.2


def test_batch_ingest_scores_every_text_and_keeps_per_record_rejections():
    from profiles.services import facts_ingest_batch

    pl = _customer("S-PL", country="PL")
    de = _customer("S-DE", preferred_language="de")
    records = [
        {"source": "support", "external_id": "B-1", "customer_id": str(pl), "opened_at": "2025-06-01T10:00:00Z",
         "text": "Świetna obsługa, bardzo dziękuję za szybką pomoc!"},
        {"source": "support", "external_id": "B-2", "customer_id": str(de), "opened_at": "not a date",
         "text": "Das ist schrecklich."},
        {"source": "support", "external_id": "B-3", "customer_id": str(de), "opened_at": "2025-06-02T10:00:00Z",
         "text": "Ich bin sehr enttäuscht, die Lieferung war beschädigt."},
        {"source": "support", "external_id": "B-4", "customer_id": str(de), "opened_at": "2025-06-03T10:00:00Z"},
        {"source": "support", "external_id": "B-5", "customer_id": str(pl), "opened_at": "2025-06-03T10:00:00Z",
         "text": "Merci beaucoup, le service était vraiment excellent !"},
    ]
    results = facts_ingest_batch(kind="tickets", records=records, actor=ACTOR)
    assert [r.outcome for r in results] == ["created", "rejected", "created", "created", "created"]
    assert (results[1].field, results[1].code) == ("opened_at", "datetime")
    assert not Ticket.objects.filter(external_digest=_digest("B-2")).exists()
    b1, b3, b4, b5 = (_ticket(x) for x in ("B-1", "B-3", "B-4", "B-5"))
    assert (b1.language, b1.sentiment_label) == ("pl", "positive")
    assert (b3.language, b3.sentiment_label) == ("de", "negative")
    assert (b4.language, b4.sentiment_label, b4.sentiment_score) == ("", "", None)  # no text, no mood
    # French is not a supported language: the Polish prior or "und", and never a guess from another model
    assert b5.language in ("pl", "und")
    if b5.language == "und":
        assert (b5.sentiment_label, b5.sentiment_score) == ("unknown", None)


def _digest(external_id: str) -> str:
    from config import blind_index

    return blind_index.source_index("support", external_id)


def test_csv_import_scores_tickets_and_an_update_without_text_clears_the_mood():
    from profiles.imports import run_import
    from profiles.services import ticket_ingest

    cid = _customer("S-CSV", country="SE")
    csv_text = ("external_id,customer_external_id,customer_source,opened_at,text\n"
                "C-1,S-CSV,crm,2025-06-01T10:00:00Z,\"Jag är mycket besviken, paketet kom trasigt.\"\n")
    job = run_import(stream=io.BytesIO(csv_text.encode()), source="support", actor="cli")
    assert (job.created, job.rejected) == (1, 0)
    t = _ticket("C-1")
    assert (t.language, t.sentiment_label) == ("sv", "negative")
    ticket_ingest(source="support", external_id="C-1", customer_id=cid, opened_at="2025-06-01T10:00:00Z",
                  text="", actor=ACTOR)
    t.refresh_from_db()
    assert (t.language, t.sentiment_label, t.sentiment_score) == ("", "", None)


def test_reingesting_the_same_ticket_is_unchanged():
    from profiles.services import ticket_ingest

    cid = _customer("S-2")
    kwargs = {"source": "support", "external_id": "T-2", "customer_id": cid, "opened_at": "2025-06-01T10:00:00Z",
              "text": "Thanks, great help!", "actor": ACTOR}
    assert ticket_ingest(**kwargs).outcome == "created"
    assert ticket_ingest(**kwargs).outcome == "unchanged"


def test_a_language_set_by_an_earlier_ingestion_step_is_kept():
    from profiles.mood import tickets_mood_apply
    from profiles.sentiment import sentiment_analyze

    class Record:
        def __init__(self, text, values):
            self.customer_id, self.text, self.values = _customer(f"S-K-{len(values)}"), text, values

    english_as_dutch = Record("Terrible, awful service!", {"language": "nl"})
    tickets_mood_apply([english_as_dutch], {})
    dutch = sentiment_analyze("Terrible, awful service!", language="nl")
    assert english_as_dutch.values == {"language": "nl", "sentiment_label": dutch.label,
                                       "sentiment_score": dutch.score}  # kept, scored with the Dutch model


def test_the_subjects_facts_include_the_derived_language_and_mood():
    """Art. 15: derived data about the person (the mood of their tickets) is part of what they can access."""
    from profiles import selectors
    from profiles.services import ticket_ingest

    cid = _customer("S-EXP")
    ticket_ingest(source="support", external_id="T-EXP", customer_id=cid, opened_at="2025-06-01T10:00:00Z",
                  text="Thank you, wonderful and friendly help!", actor=ACTOR)
    [ticket] = selectors.customer_facts(customer_id=cid)["tickets"]
    assert (ticket["language"], ticket["sentiment_label"]) == ("en", "positive")
    assert ticket["sentiment_score"] == _ticket("T-EXP").sentiment_score
