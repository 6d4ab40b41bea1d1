"""The customer's own data in plain words, in the customer's language: the export as readable sections (HTML),
as flat rows (CSV), and the reasons of an automated decision as sentences.

The export document (``subject_rights.export``) is rendered *generically*: every top-level section it holds is
shown, whatever it is called (a section added later, such as CRM attributes, appears with a title made from its
name until it is given words here). Known names get translated labels; values are formatted for the active
language (dates, numbers, yes/no, known codes in words). Internal identifiers, hashes and model plumbing are left
to the JSON and CSV downloads, which hold everything.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.utils import formats, timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

#: Document keys that describe the document itself (shown in the page's header, not as sections).
META_KEYS = frozenset({"schema", "schema_version", "format", "generated_at", "request_id", "subject"})
#: Internal plumbing inside sections: kept in the downloads, not shown on the page.
HIDDEN_KEYS = frozenset({
    "customer", "customer_id", "event_id", "notice_hash", "evidence", "model_versions", "model_version",
    "churn_model_version", "consent_event_id", "features_hash", "explanation", "automated_tier", "stale",
    "text", "title", "unit", "baseline", "output", "other_features", "remainder", "summary", "reasons_explained",
    "how_to_contest", "main_reasons", "scored", "requester", "recipients_note", "decision_key",
})
MAX_DEPTH = 6

SECTION_TITLES = {
    "personal_data": (gettext_lazy("Your details"),
                      gettext_lazy("The personal details we hold about you.")),
    "source_identities": (gettext_lazy("Your records in our systems"),
                          gettext_lazy("The systems that know you, and your customer number in each.")),
    "facts": (gettext_lazy("Orders, interactions and support contacts"),
              gettext_lazy("What you bought, how you used our services and when you contacted us.")),
    "consent_history": (gettext_lazy("Your consents"),
                        gettext_lazy("Every consent you gave or withdrew, and the version of the notice you saw.")),
    "processing_restrictions": (gettext_lazy("Restrictions and objections"),
                                gettext_lazy("Limits you set on how we may use your data.")),
    "scores": (gettext_lazy("Your current scores"),
               gettext_lazy("What our automated scoring currently says about you, for each purpose.")),
    "decisions": (gettext_lazy("Automated decisions about you"),
                  gettext_lazy("Each automated decision, the information it used, and any review by a person.")),
    "processing": (gettext_lazy("Why and how we process your data"),
                   gettext_lazy("Purposes, legal grounds, how long we keep data, and where it comes from.")),
    "attributes": (gettext_lazy("Other information from our customer records"), None),
    "crm_attributes": (gettext_lazy("Other information from our customer records"), None),
}

LABELS = {
    # your details
    "name": gettext_lazy("Name"), "email": gettext_lazy("E-mail address"), "phone": gettext_lazy("Phone number"),
    "address": gettext_lazy("Postal address"), "company": gettext_lazy("Company"),
    "job_title": gettext_lazy("Job title"), "preferred_language": gettext_lazy("Preferred language"),
    "date_of_birth": gettext_lazy("Date of birth"),
    # records and facts
    "source": gettext_lazy("Source"), "external_id": gettext_lazy("Customer number"),
    "created_at": gettext_lazy("First seen"), "last_seen_at": gettext_lazy("Last seen"),
    "orders": gettext_lazy("Orders"), "interactions": gettext_lazy("Visits and e-mails"),
    "tickets": gettext_lazy("Support requests"), "notes": gettext_lazy("Notes"),
    "reviews": gettext_lazy("Reviews"), "nps": gettext_lazy("Survey answers"),
    "referrals": gettext_lazy("Referrals"), "kind": gettext_lazy("Kind"),
    "ordered_at": gettext_lazy("Ordered on"), "amount": gettext_lazy("Amount"), "margin": gettext_lazy("Margin"),
    "currency": gettext_lazy("Currency"), "returned": gettext_lazy("Returned"),
    "days_late": gettext_lazy("Days paid late"), "category": gettext_lazy("Category"), "at": gettext_lazy("When"),
    "count": gettext_lazy("Number"), "opened_at": gettext_lazy("Opened"), "closed_at": gettext_lazy("Closed"),
    "first_response_at": gettext_lazy("First answer"), "channel": gettext_lazy("Channel"),
    "escalated": gettext_lazy("Escalated"), "satisfaction": gettext_lazy("Your satisfaction rating"),
    "text_original": gettext_lazy("Your message"), "language": gettext_lazy("Language"),
    "sentiment_label": gettext_lazy("Mood we read in the message"),
    "sentiment_score": gettext_lazy("Mood score (-1 to 1)"), "rating": gettext_lazy("Rating"),
    "score": gettext_lazy("Score"), "comment": gettext_lazy("Comment"), "converted": gettext_lazy("Became a customer"),
    # consent and restrictions
    "purpose": gettext_lazy("Purpose"), "action": gettext_lazy("Action"),
    "notice_version": gettext_lazy("Notice version"), "occurred_at": gettext_lazy("When"),
    "recorded_at": gettext_lazy("Recorded"), "actor": gettext_lazy("Recorded by"),
    # scores and decisions
    "clv": gettext_lazy("Expected future value"), "clv_score": gettext_lazy("Value rank (percentile)"),
    "churn_probability": gettext_lazy("Chance of leaving"), "risk_level": gettext_lazy("Risk of leaving"),
    "upsell": gettext_lazy("Interest in more products"), "advocacy": gettext_lazy("Likelihood to recommend us"),
    "segment": gettext_lazy("Customer group"), "tier": gettext_lazy("Tier"),
    "service_level": gettext_lazy("Service level"), "recommendation": gettext_lazy("Recommended next step"),
    "computed_at": gettext_lazy("Computed"), "override": gettext_lazy("Set by a person after a review"),
    "response_time_hours": gettext_lazy("Answer within (hours)"), "response_time": gettext_lazy("Answer within"),
    "escalation": gettext_lazy("Handled by"), "extras": gettext_lazy("Extras"),
    "contributions": gettext_lazy("The main reasons"), "id": gettext_lazy("Number"),
    "decision_type": gettext_lazy("Kind of decision"), "outputs": gettext_lazy("Result"),
    "inputs": gettext_lazy("Information used"), "human_reviews": gettext_lazy("Reviews by a person"),
    "outcome": gettext_lazy("Outcome"), "rationale": gettext_lazy("Reviewer's explanation"),
    "since": gettext_lazy("Since"), "reviewer": gettext_lazy("Reviewer"),
    "review_of_decision": gettext_lazy("Decision reviewed"), "code": gettext_lazy("Code"),
    # processing
    "purposes": gettext_lazy("Purposes"), "description": gettext_lazy("Description"),
    "lawful_basis": gettext_lazy("Legal ground"), "retention_days": gettext_lazy("Kept for (days)"),
    "data_categories": gettext_lazy("Kinds of data"), "recipients": gettext_lazy("Recipients"),
    "sources": gettext_lazy("Where your data comes from"), "flag": gettext_lazy("Kind"),
    "lifted_at": gettext_lazy("Lifted"),
}

#: Feature names of the models in words (the "information used" and the reasons).
FEATURE_LABELS = {
    "recency_days": gettext_lazy("days since your last order"),
    "frequency": gettext_lazy("orders so far"),
    "monetary_total": gettext_lazy("amount spent so far"),
    "monetary_avg": gettext_lazy("average order value"),
    "margin_total": gettext_lazy("margin on your orders so far"),
    "tenure_days": gettext_lazy("days since your first order"),
    "orders_90d": gettext_lazy("orders in the last 90 days"),
    "revenue_90d": gettext_lazy("amount spent in the last 90 days"),
    "revenue_prev_90d": gettext_lazy("amount spent in the 90 days before that"),
    "revenue_trend": gettext_lazy("change in spending (last 90 days against the 90 before)"),
    "return_rate": gettext_lazy("share of orders returned"),
    "late_payment_rate": gettext_lazy("share of invoices paid late"),
    "avg_days_late": gettext_lazy("average days an invoice was paid late"),
    "categories_ordered": gettext_lazy("product categories you ordered from"),
    "tickets_total": gettext_lazy("support requests so far"),
    "tickets_90d": gettext_lazy("support requests in the last 90 days"),
    "escalations": gettext_lazy("support requests that were escalated"),
    "satisfaction_avg": gettext_lazy("your average satisfaction rating (1-5)"),
    "logins_90d": gettext_lazy("logins in the last 90 days"),
    "email_opens_90d": gettext_lazy("e-mails opened in the last 90 days"),
    "email_clicks_90d": gettext_lazy("e-mail links clicked in the last 90 days"),
    "feature_uses_90d": gettext_lazy("uses of our services in the last 90 days"),
    "cart_abandons_90d": gettext_lazy("shopping carts left in the last 90 days"),
    "nps_last": gettext_lazy("your last survey answer (0-10)"),
    "reviews_count": gettext_lazy("reviews written"),
    "review_rating_avg": gettext_lazy("your average review rating (1-5)"),
    "referrals_count": gettext_lazy("people you referred"),
    "sentiment_avg": gettext_lazy("mood of your support messages (-1 to 1)"),
    "sentiment_trend_90d": gettext_lazy("change in the mood of your messages (last 90 days)"),
    "sentiment_tickets_90d": gettext_lazy("support messages with a mood in the last 90 days"),
}

VALUE_WORDS = {
    "grant": gettext_lazy("consent given"), "withdraw": gettext_lazy("consent withdrawn"),
    "automated_scoring": gettext_lazy("automated customer scoring"),
    "service_prioritization": gettext_lazy("how quickly and by whom your requests are handled"),
    "marketing": gettext_lazy("personalised offers"),
    "crm": gettext_lazy("customer records"), "erp": gettext_lazy("orders and invoicing"),
    "support": gettext_lazy("support desk"), "web": gettext_lazy("website and app"),
    "positive": gettext_lazy("positive"), "neutral": gettext_lazy("neutral"), "negative": gettext_lazy("negative"),
    "unknown": gettext_lazy("not known"), "low": gettext_lazy("low"), "medium": gettext_lazy("medium"),
    "high": gettext_lazy("high"), "unavailable": gettext_lazy("not available"),
    "order": gettext_lazy("order"), "invoice": gettext_lazy("invoice"), "login": gettext_lazy("login"),
    "page_view": gettext_lazy("page visit"), "email_open": gettext_lazy("e-mail opened"),
    "email_click": gettext_lazy("e-mail link clicked"), "feature_use": gettext_lazy("use of a service"),
    "cart_abandon": gettext_lazy("shopping cart left"), "email": gettext_lazy("e-mail"),
    "phone": gettext_lazy("phone"), "chat": gettext_lazy("chat"), "social": gettext_lazy("social media"),
    "other": gettext_lazy("other"), "app": gettext_lazy("app"), "in_store": gettext_lazy("in a shop"),
    "served_score": gettext_lazy("score given to one of our systems"),
    "batch_rescore": gettext_lazy("regular score update"), "routing": gettext_lazy("routing of a support request"),
    "holdout_assignment": gettext_lazy("selection for proactive offers and calls"),
    "confirmed": gettext_lazy("confirmed"), "overridden": gettext_lazy("changed by a person"),
    "consent": gettext_lazy("consent"), "contract": gettext_lazy("contract"),
    "legitimate_interest": gettext_lazy("legitimate interest"), "legal_obligation": gettext_lazy("legal obligation"),
}
#: Keys whose string values are codes to put in words (other strings are shown as they are).
CODED_KEYS = frozenset({"action", "purpose", "source", "sentiment_label", "risk_level", "kind", "channel",
                        "decision_type", "outcome", "lawful_basis", "code"})

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def label(key: str) -> str:
    """A key in words: its translation, a feature's name in words, or the key made readable."""
    known = LABELS.get(key) or FEATURE_LABELS.get(key)
    if known is not None:
        return str(known)
    return key.replace("_", " ").strip().capitalize() or key


def section_title(key: str) -> tuple[str, str]:
    title, intro = SECTION_TITLES.get(key, (None, None))
    return (str(title) if title is not None else label(key)), (str(intro) if intro is not None else "")


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return formats.number_format(value, use_l10n=True, force_grouping=True)
    return formats.number_format(round(value, 2), decimal_pos=2 if value != int(value) else 0, use_l10n=True,
                                 force_grouping=True)


def value_text(value: Any, key: str = "") -> str:
    """One value in words for the active language."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, datetime):
        return formats.date_format(timezone.localtime(value) if timezone.is_aware(value) else value,
                                   "DATETIME_FORMAT")
    if isinstance(value, date):
        return formats.date_format(value, "DATE_FORMAT")
    text = str(value)
    if _ISO_DATETIME.match(text) and (parsed := parse_datetime(text)) is not None:
        return value_text(parsed)
    if _ISO_DATE.match(text) and (day := parse_date(text)) is not None:
        return value_text(day)
    if key in CODED_KEYS and text in VALUE_WORDS:
        return str(VALUE_WORDS[text])
    return text


def reason_sentence(feature: str, value: Any, contribution: float, unit: str, currency: str = "") -> str:
    """One reason of an automated result in words: what we used, its value, and which way it moved the result."""
    shown = value_text(value) if value is not None else _("not given")
    amount = abs(float(contribution))
    if unit == "points":
        size = _("%(n)s points") % {"n": _number(round(amount, 1))}
    elif unit == "currency":
        size = f"{_number(round(amount, 2))} {currency}".strip()
    else:
        size = _number(round(amount, 3))
    words = {"what": label(feature), "value": shown, "size": size}
    if contribution >= 0:
        return _("%(what)s: %(value)s - raised the result by %(size)s") % words
    return _("%(what)s: %(value)s - lowered the result by %(size)s") % words


@dataclass
class Node:
    """A piece of the readable page: text, a list, label/value pairs, or a table."""

    kind: str  # "text" | "list" | "fields" | "table"
    text: str = ""
    items: list[Node] = field(default_factory=list)
    rows: list[tuple[str, Node]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    cells: list[list[Node]] = field(default_factory=list)


def _visible(mapping: dict[str, Any]) -> list[str]:
    return [k for k in mapping if k not in HIDDEN_KEYS]


def node(value: Any, key: str = "", depth: int = 0) -> Node:
    if depth > MAX_DEPTH:
        return Node("text", text=str(value))
    if isinstance(value, dict):
        if "feature" in value and "contribution" in value:
            return Node("text", text=reason_sentence(str(value["feature"]), value.get("value"),
                                                     float(value.get("contribution") or 0.0),
                                                     str(value.get("unit") or "")))
        keys = _visible(value)
        if not keys:
            return Node("text", text="—")
        return Node("fields", rows=[(label(k), node(value[k], k, depth + 1)) for k in keys])
    if isinstance(value, list | tuple):
        if not value:
            return Node("text", text=_("None"))
        if all(isinstance(v, dict) for v in value):
            columns: list[str] = []
            for row in value:
                columns.extend(k for k in _visible(row) if k not in columns)
            if not columns:
                return Node("text", text="—")
            return Node("table", columns=[label(c) for c in columns],
                        cells=[[node(row.get(c), c, depth + 1) for c in columns] for row in value])
        if all(not isinstance(v, dict | list | tuple) for v in value):
            return Node("text", text=", ".join(value_text(v, key) for v in value))
        return Node("list", items=[node(v, key, depth + 1) for v in value])
    return Node("text", text=value_text(value, key))


@dataclass
class Section:
    key: str
    title: str
    intro: str
    body: Node


def _score_node(score: dict[str, Any] | None) -> Node:
    """A purpose's score: the figures in words, and its reasons as sentences."""
    if not score:
        return Node("text", text=_("No score is held for this purpose."))
    rows = [(label(k), node(score[k], k, 1)) for k in _visible(score)]
    reasons = reasons_of(score)
    if reasons:
        rows.append((str(LABELS["contributions"]), Node("list", items=[Node("text", text=r) for r in reasons])))
    return Node("fields", rows=rows)


def reasons_of(score: dict[str, Any], limit: int = 3) -> list[str]:
    """The main reasons of a stored score (value and churn models), as sentences in the active language."""
    out: list[str] = []
    for key in ("clv", "churn"):
        exp = (score.get("explanation") or {}).get(key)
        if not exp:
            continue
        for c in exp.get("contributions", [])[:limit]:
            out.append(reason_sentence(str(c["feature"]), c.get("value"), float(c["contribution"]),
                                       str(exp.get("unit") or ""), str(score.get("currency") or "")))
    return out


def sections(document: dict[str, Any]) -> list[Section]:
    """Every section the export holds, in its order, as readable nodes."""
    out = []
    for key, value in document.items():
        if key in META_KEYS:
            continue
        if key == "explanation":  # the same reasons as "scores", in words there (and on the "why" page)
            continue
        title, intro = section_title(key)
        if key == "scores" and isinstance(value, dict):
            body = Node("fields", rows=[(value_text(purpose, "purpose"), _score_node(score))
                                        for purpose, score in value.items()])
        elif key == "facts" and isinstance(value, dict):
            body = Node("fields", rows=[(f"{label(kind)} ({len(rows) if isinstance(rows, list) else 1})",
                                         node(rows, kind, 1)) for kind, rows in value.items()])
        else:
            body = node(value, key)
        out.append(Section(key=key, title=title, intro=intro, body=body))
    return out


# --------------------------------------------------------------------------- CSV

def _flatten(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        if not value:
            yield path, ""
        for k, v in value.items():
            yield from _flatten(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        if not value:
            yield path, ""
        for i, v in enumerate(value):
            yield from _flatten(v, f"{path}[{i}]")
    else:
        yield path, value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is prefixed with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text.startswith(_FORMULA_START) and not re.fullmatch(r"-?\d+(\.\d+)?", text):
        return "'" + text
    return text


class _Line:
    def write(self, text: str) -> str:
        return text


def csv_lines(document: dict[str, Any]) -> Iterable[str]:
    """The whole export as CSV lines (``section,field,value``, one leaf value a row; ``field`` is the path in
    the JSON document, e.g. ``facts.orders[0].amount``), generated lazily for a streamed response."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(["section", "field", "value"])
    for key, value in document.items():
        for path, leaf in _flatten(value, str(key)):
            yield writer.writerow([key, path, _cell(leaf)])
