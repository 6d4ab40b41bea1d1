"""One home for canaries and for scanning what is at rest for them (Art. 5(1)(c), 25, 32).

A canary is a fake person with unique identifiers. The scans look for the plain values *and* for the keyed
blind-index digests the service derives from them (``config.blind_index``, called by ``profiles.services``
for look-ups): a digest in a log line, a task message or any column other than the index itself would
re-identify the person through the index key. While the person exists, their digests belong only in the
index columns (``BLIND_INDEX_HOMES``); after erasure, nowhere.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import phonenumbers
from django.db import connection

from config.blind_index import email_index, phone_index, source_index

K = TypeVar("K", bound=Hashable)

# The columns where a living customer's blind-index digests are stored on purpose (look-ups by e-mail, phone,
# source id; a self-service request keeps the digest of the address it was filed from).
BLIND_INDEX_HOMES = frozenset({
    ("profiles_blindindexentry", "digest"),
    ("profiles_sourceidentity", "digest"),
    ("subject_rights_subjectrequest", "email_digest"),
})


@dataclass(frozen=True)
class Canary:
    """A fake person. ``phone`` is E.164; ``phone_written`` is how they write it in a ticket (defaults to E.164)."""

    name: str
    email: str
    phone: str
    external_id: str
    source: str = "crm"
    customer_id: uuid.UUID | None = None
    locale: str = ""
    phone_written: str = ""
    iban: str = ""
    phrase: str = ""  # a word only this canary's ticket contains
    attribute: str = ""  # a plain CRM attribute value (lifecycle_stage), encrypted under the customer's key

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def last(self) -> str:
        return self.name.split()[-1]

    def plain(self) -> dict[str, str]:
        """The personal values, by name. The national number is a substring of every way of writing it."""
        national = str(phonenumbers.national_significant_number(phonenumbers.parse(self.phone)))
        optional = {"iban": self.iban, "phrase": self.phrase, "attribute": self.attribute}
        return {"name": self.name, "surname": self.last, "email": self.email, "phone": self.phone,
                "phone_national": national, "external_id": self.external_id,
                **{k: v for k, v in optional.items() if v}}

    def digests(self) -> dict[str, str]:
        """The blind-index digests the service stores for look-ups of this person."""
        return {"email_digest": email_index(self.email), "phone_digest": phone_index(self.phone),
                "source_digest": source_index(self.source, self.external_id)}

    def identifiers(self) -> dict[str, str]:
        """What identifies the person directly (no ticket phrase, CRM attribute or source id) and their digests:
        what a page shown before an explicit reveal must not contain."""
        keep = ("name", "surname", "email", "phone", "phone_national", "iban")
        return {**{k: v for k, v in self.plain().items() if k in keep}, **self.digests()}

    def needles(self) -> dict[str, str]:
        """Everything that must not be at rest outside its encrypted field or its index column."""
        return {**self.plain(), **self.digests()}


class Hit(NamedTuple):
    table: str
    column: str
    needle: Hashable  # the needle's key (its name, or whatever key the caller gave it)


def as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str).encode()
    return str(value).encode()


def _keyed(needles: Mapping[K, str] | Iterable[str]) -> dict[Any, bytes]:
    pairs = needles.items() if isinstance(needles, Mapping) else ((n, n) for n in needles)
    return {key: value.lower().encode() for key, value in pairs if value}


def scan_text(blob: Any, needles: Mapping[K, str] | Iterable[str]) -> set[Any]:
    """The keys of the needles found (case-insensitively) in a text, bytes or JSON-able value."""
    lowered = as_bytes(blob).lower()
    return {key for key, needle in _keyed(needles).items() if needle in lowered}


def scan_database(needles: Mapping[K, str] | Iterable[str], *, allowed: Iterable[tuple[str, str]] = ()) -> set[Hit]:
    """Every value of every column of every table (text, JSON and bytes, raw), searched case-insensitively for
    every needle. ``needles`` is a list of values or a mapping key -> value (the hits then carry the key).
    Hits in ``allowed`` (table, column) pairs are left out."""
    keyed = _keyed(needles)
    skip = set(allowed)
    hits: set[Hit] = set()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608 - names from introspection
            columns = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if value is None or isinstance(value, int | float | bool) or (table, column) in skip:
                        continue
                    blob = as_bytes(value).lower()
                    hits.update(Hit(table, column, key) for key, needle in keyed.items() if needle in blob)
    return hits


def index_hits(canaries: Iterable[Canary]) -> set[Hit]:
    """Where a scan finds the canaries' digests when each has its e-mail, phone and source-id index entry."""
    return {Hit("profiles_blindindexentry", "digest", (c.external_id, "email_digest")) for c in canaries} | {
        Hit("profiles_blindindexentry", "digest", (c.external_id, "phone_digest")) for c in canaries} | {
        Hit("profiles_sourceidentity", "digest", (c.external_id, "source_digest")) for c in canaries}


def keyed_needles(canaries: Iterable[Canary]) -> dict[tuple[str, str], str]:
    """All canaries' needles keyed by (external id, needle name), for one scan over many canaries."""
    return {(c.external_id, name): value for c in canaries for name, value in c.needles().items()}
