"""Synthetic customers for the database sections (1, 2, 5): generated vectorised, loaded with COPY.

The population is deterministic for a seed and generated in fixed chunks (``chunk_seed = (seed, chunk)``),
so ``load(n)`` at any scale gives the first ``n`` customers of one population.

Per customer (defaults): a real per-customer data key (AES-256-GCM DEK wrapped under the bench KEK), the
personal fields name / e-mail / phone (60 %) / address encrypted under it with the product's AAD, blind-index
entries for e-mail and phone and a CRM source identity (keyed HMAC digests computed by
``config.blind_index``), ~10 orders with a skewed (lognormal + Pareto tail) value distribution, ~1 ticket,
~5 interactions, some reviews / NPS answers / referrals, and consent events (grant for most customers, a
few later withdrawals) with the denormalised current-state rows the gate reads, and a few restrictions.

What is *not* generated per customer: governance audit records for the consent events (the loader writes
the consent ledger directly; the scoring gate reads the ledger, not the audit log).

Pure numpy generation (:func:`population`) needs no Django; :func:`load` runs inside a Django process
against whatever database is configured (the harness points it at a ``bench_*`` database).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

CHUNK = 10_000
DAYS = 1095
INTERACTION_KINDS = ("login", "page_view", "email_open", "email_click", "feature_use", "cart_abandon")
PURPOSE_CONSENT_RATE = {"automated_scoring": 0.92, "service_prioritization": 0.90, "marketing": 0.40}
WITHDRAW_RATE = 0.03
RESTRICT_RATE = 0.005
PHONE_RATE = 0.6
FIRST = ("Anna", "Jan", "Emma", "Lucas", "Sofia", "Mateusz", "Aino", "Elias", "Maja", "Noah", "Olivia", "Liam",
         "Julia", "Oskar", "Eva", "Finn", "Zofia", "Leo", "Ida", "Hugo", "Alice", "Ben", "Chloe", "David")
LAST = ("Nowak", "Jansen", "Virtanen", "Andersson", "Smith", "Kowalski", "de Vries", "Korhonen", "Johansson",
        "Brown", "Wiśniewska", "Bakker", "Nieminen", "Karlsson", "Taylor", "Lewandowski", "Visser", "Mäkinen")


@dataclass
class Population:
    """One chunk of customers (global indices ``start .. start + n``), as arrays."""

    start: int
    n: int
    ids: list[uuid.UUID]
    signup_day: np.ndarray
    order_customer: np.ndarray
    order_day: np.ndarray
    order_amount: np.ndarray
    order_margin: np.ndarray
    order_returned: np.ndarray
    order_days_late: np.ndarray
    ticket_customer: np.ndarray
    ticket_day: np.ndarray
    ticket_escalated: np.ndarray
    ticket_satisfaction: np.ndarray  # 0 = none
    interaction_customer: np.ndarray
    interaction_day: np.ndarray
    interaction_kind: np.ndarray
    review_customer: np.ndarray
    review_day: np.ndarray
    review_rating: np.ndarray
    nps_customer: np.ndarray
    nps_day: np.ndarray
    nps_score: np.ndarray
    referral_customer: np.ndarray
    referral_day: np.ndarray
    has_phone: np.ndarray
    consent: dict[str, np.ndarray]  # purpose -> granted (bool) per customer
    withdrawn: dict[str, np.ndarray]  # purpose -> withdrawn later (bool)
    restricted: np.ndarray

    def counts(self) -> dict[str, int]:
        granted = sum(int(v.sum()) for v in self.consent.values())
        withdrawn = sum(int(v.sum()) for v in self.withdrawn.values())
        return {
            "customers": self.n,
            "customer_keys": self.n,
            "personal_fields": 3 * self.n + int(self.has_phone.sum()),
            "blind_index_entries": self.n + int(self.has_phone.sum()),
            "source_identities": self.n,
            "orders": len(self.order_customer),
            "tickets": len(self.ticket_customer),
            "interactions": len(self.interaction_customer),
            "reviews": len(self.review_customer),
            "nps_answers": len(self.nps_customer),
            "referrals": len(self.referral_customer),
            "consent_events": granted + withdrawn,
            "consent_current": granted,
            "processing_flags": int(self.restricted.sum()),
        }


def _uniform_days(rng: np.random.Generator, cust: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.maximum(hi[cust] - lo[cust], 0.0)
    return np.floor(lo[cust] + rng.random(len(cust)) * span).astype(np.int64)


def _chunk(seed: int, chunk: int, n: int) -> Population:
    rng = np.random.default_rng([seed, chunk])
    id_bytes = rng.bytes(16 * n)
    ids = [uuid.UUID(bytes=id_bytes[16 * i:16 * i + 16], version=4) for i in range(n)]
    end = float(DAYS)
    signup = np.floor(rng.random(n) * DAYS * 0.85)
    # Half the customers stay active, the others stop somewhere between signup and today.
    alive = rng.random(n) < 0.5
    active_end = np.where(alive, end, signup + (end - signup) * rng.random(n) ** 0.5)
    active_end = np.maximum(active_end, signup + 1)
    # Orders: 1 + negative binomial (mean 9, strongly skewed).
    n_orders = 1 + rng.negative_binomial(1.2, 1.2 / (1.2 + 9.0), n)
    oc = np.repeat(np.arange(n), n_orders)
    od = _uniform_days(rng, oc, signup, active_end)
    first = np.concatenate([[0], np.cumsum(n_orders)[:-1]])
    od[first] = signup.astype(np.int64)  # the first order on the signup day
    base = rng.lognormal(3.8, 0.8, n) * np.where(rng.random(n) < 0.05, 1.0 + rng.pareto(2.5, n), 1.0)
    amount = np.round(base[oc] * rng.lognormal(0.0, 0.4, len(oc)), 2) + 0.01
    margin = np.round(amount * rng.uniform(0.15, 0.45, n)[oc], 2)
    returned = rng.random(len(oc)) < 0.05
    days_late = np.where(rng.random(len(oc)) < 0.1, 1 + rng.poisson(8.0, len(oc)), 0)
    # Tickets, interactions, reviews, NPS, referrals.
    tn = rng.poisson(1.0, n)
    tc = np.repeat(np.arange(n), tn)
    td = _uniform_days(rng, tc, signup, np.minimum(active_end + 30, end))
    t_esc = rng.random(len(tc)) < 0.15
    t_sat = np.where(rng.random(len(tc)) < 0.6, rng.integers(1, 6, len(tc)), 0)
    inn = rng.poisson(5.0, n)
    ic = np.repeat(np.arange(n), inn)
    idays = _uniform_days(rng, ic, signup, np.minimum(active_end + 45, end))
    ikind = rng.integers(0, len(INTERACTION_KINDS), len(ic))
    rvc = np.flatnonzero(rng.random(n) < 0.10)
    rvd = _uniform_days(rng, rvc, signup, active_end)
    rating = rng.integers(1, 6, len(rvc))
    npc = np.flatnonzero(rng.random(n) < 0.20)
    npd = _uniform_days(rng, npc, signup, active_end)
    nps = rng.integers(0, 11, len(npc))
    rfc = np.flatnonzero(rng.random(n) < 0.03)
    rfd = _uniform_days(rng, rfc, signup, active_end)
    consent = {p: rng.random(n) < rate for p, rate in PURPOSE_CONSENT_RATE.items()}
    withdrawn = {p: consent[p] & (rng.random(n) < WITHDRAW_RATE) for p in PURPOSE_CONSENT_RATE}
    restricted = rng.random(n) < RESTRICT_RATE
    return Population(
        start=chunk * CHUNK, n=n, ids=ids, signup_day=signup.astype(np.int64),
        order_customer=oc, order_day=od, order_amount=amount, order_margin=margin, order_returned=returned,
        order_days_late=days_late,
        ticket_customer=tc, ticket_day=td, ticket_escalated=t_esc, ticket_satisfaction=t_sat,
        interaction_customer=ic, interaction_day=idays, interaction_kind=ikind,
        review_customer=rvc, review_day=rvd, review_rating=rating,
        nps_customer=npc, nps_day=npd, nps_score=nps, referral_customer=rfc, referral_day=rfd,
        has_phone=rng.random(n) < PHONE_RATE, consent=consent, withdrawn=withdrawn, restricted=restricted,
    )


def _slice(pop: Population, lo: int, hi: int) -> Population:
    """Customers ``lo .. hi`` (chunk-local indices) of a chunk, with their events."""
    if lo == 0 and hi == pop.n:
        return pop

    def events(cust: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
        keep = (cust >= lo) & (cust < hi)
        return [cust[keep] - lo, *(o[keep] for o in others)]

    oc, od, oa, om, orr, ol = events(pop.order_customer, pop.order_day, pop.order_amount, pop.order_margin,
                                     pop.order_returned, pop.order_days_late)
    tc, td, te, ts = events(pop.ticket_customer, pop.ticket_day, pop.ticket_escalated, pop.ticket_satisfaction)
    ic, idays, ik = events(pop.interaction_customer, pop.interaction_day, pop.interaction_kind)
    rc, rd, rr = events(pop.review_customer, pop.review_day, pop.review_rating)
    nc, nd, ns = events(pop.nps_customer, pop.nps_day, pop.nps_score)
    fc, fd = events(pop.referral_customer, pop.referral_day)
    return Population(
        start=pop.start + lo, n=hi - lo, ids=pop.ids[lo:hi], signup_day=pop.signup_day[lo:hi],
        order_customer=oc, order_day=od, order_amount=oa, order_margin=om, order_returned=orr, order_days_late=ol,
        ticket_customer=tc, ticket_day=td, ticket_escalated=te, ticket_satisfaction=ts,
        interaction_customer=ic, interaction_day=idays, interaction_kind=ik,
        review_customer=rc, review_day=rd, review_rating=rr, nps_customer=nc, nps_day=nd, nps_score=ns,
        referral_customer=fc, referral_day=fd, has_phone=pop.has_phone[lo:hi],
        consent={k: v[lo:hi] for k, v in pop.consent.items()},
        withdrawn={k: v[lo:hi] for k, v in pop.withdrawn.items()}, restricted=pop.restricted[lo:hi],
    )


def population(n_customers: int, *, seed: int = 42, start: int = 0) -> Iterator[Population]:
    """Customers ``start .. start + n_customers`` of the population (chunks of :data:`CHUNK`, always generated
    whole, so any range gives the same customers)."""
    stop = start + n_customers
    pos = start
    while pos < stop:
        chunk = pos // CHUNK
        lo = pos - chunk * CHUNK
        hi = min(CHUNK, stop - chunk * CHUNK)
        yield _slice(_chunk(seed, chunk, CHUNK), lo, hi)
        pos = chunk * CHUNK + hi


def expected_counts(n_customers: int, *, seed: int = 42, start: int = 0) -> dict[str, int]:
    total: dict[str, int] = {}
    for pop in population(n_customers, seed=seed, start=start):
        for k, v in pop.counts().items():
            total[k] = total.get(k, 0) + v
    return total


# ---------------------------------------------------------------------------------------------------------
# Loading (inside Django)
# ---------------------------------------------------------------------------------------------------------


class _Table:
    """Column order and constant defaults of one model, for COPY/executemany with per-row values."""

    def __init__(self, model: Any, varying: list[str]) -> None:
        from django.db import connection

        self.model = model
        self.table = model._meta.db_table
        by_name = {f.name: f for f in model._meta.concrete_fields}
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        self.varying = varying
        cols: list[str] = []
        for name in varying:
            f = by_attname.get(name) or by_name[name]
            cols.append(f.column)
        self.constants: list[Any] = []
        for f in model._meta.concrete_fields:
            if f.attname in varying or f.name in varying:
                continue
            if f.primary_key and getattr(f, "db_returning", False):
                continue  # serial id
            if f.has_default():
                value = f.get_default()
            elif f.null:
                value = None
            else:
                raise ValueError(f"{self.table}.{f.column} needs a value")
            cols.append(f.column)
            self.constants.append(f.get_db_prep_save(value, connection))
        self.columns = cols

    raw = False  # rows already in COPY text form (set by the bulk loader on PostgreSQL)

    def write(self, rows: Iterator[tuple] | list[tuple], *, raw: bool | None = None) -> int:
        from .dbutil import copy_rows

        return copy_rows(self.table, self.columns, rows, suffix=self.constants,
                         raw=self.raw if raw is None else raw)


class _Clock:
    """Day numbers -> database timestamp values (aware datetimes on PostgreSQL, naive UTC text on SQLite)."""

    def __init__(self, end: dt.datetime) -> None:
        from django.db import connection

        self.end = end
        self.start = end - dt.timedelta(days=DAYS)
        self.pg = connection.vendor == "postgresql"
        self._cache: dict[int, Any] = {}

    def __call__(self, day: int, seconds: int = 0) -> Any:
        key = int(day) * 86400 + int(seconds)
        value = self._cache.get(key)
        if value is None:
            t = self.start + dt.timedelta(seconds=key)
            value = t.isoformat(sep=" ") if self.pg else t.replace(tzinfo=None).isoformat(sep=" ")
            if len(self._cache) < 200_000:
                self._cache[key] = value
        return value


class _FastIndex:
    """``config.blind_index.blind_index`` with the keyed HMAC state prepared once (checked equal at start)."""

    def __init__(self) -> None:
        import hashlib
        import hmac

        from django.conf import settings

        from config import blind_index

        self._base = hmac.new(settings.BLIND_INDEX_KEY, digestmod=hashlib.sha256)
        for kind, value in (("source", "crm:CRM-00000001"), ("email", "a@b.example"), ("phone", "+447000000001")):
            if self(kind, value) != blind_index.blind_index(kind, value):
                raise AssertionError("fast blind index differs from config.blind_index")

    def __call__(self, kind: str, normalized: str) -> str:
        h = self._base.copy()
        h.update(kind.encode() + b"\x00" + normalized.encode("utf-8"))
        return h.hexdigest()

    def source(self, source: str, external_id: str) -> str:
        return self("source", f"{source}:{external_id}")


def _uuid_value(u: uuid.UUID, pg: bool) -> str:
    return str(u) if pg else u.hex


@dataclass
class LoadReport:
    customers: int
    counts: dict[str, int]
    seconds: float
    seconds_crypto: float
    index_seconds: dict[str, float]


def load(n_customers: int, *, seed: int = 42, end: dt.datetime | None = None, progress: bool = False,
         defer_indexes: bool = True, start: int = 0) -> LoadReport:
    """Load customers ``start .. start + n_customers`` of the population into the configured database."""
    import time

    from django.db import connection, transaction

    from config import blind_index, envelope
    from consent.models import (
        ConsentEvent,
        ConsentNotice,
        ConsentStateCurrent,
        ProcessingFlag,
        ProcessingFlagCurrent,
        Purpose,
    )
    from profiles.models import (
        BlindIndexEntry,
        Customer,
        CustomerKey,
        Interaction,
        NpsAnswer,
        Order,
        PersonalField,
        Referral,
        SourceIdentity,
        Ticket,
    )

    from .dbutil import pg_deferred_indexes

    t_start = time.perf_counter()
    crypto = 0.0
    pg = connection.vendor == "postgresql"
    # Value encoders: COPY text on PostgreSQL (rows written raw), Python values on SQLite.
    if pg:
        enc_bool: Any = ("f", "t").__getitem__
        null: Any = "\\N"

        def blob(b: bytes) -> Any:
            return "\\\\x" + b.hex()
    else:
        enc_bool, null = int, None

        def blob(b: bytes) -> Any:
            return b
    end = end or dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = _Clock(end)
    now = clock(DAYS)
    kek_id = envelope.active_kek_id()
    purposes = {p.code: p.id for p in Purpose.objects.filter(code__in=list(PURPOSE_CONSENT_RATE))}
    notices = {}
    for code, pid in purposes.items():
        notice = ConsentNotice.objects.filter(purpose_id=pid).order_by("-published_at", "-id").first()
        if notice is not None:
            notices[code] = notice.id
    # Verify once that the E.164 shortcut equals the product's phone normalization.
    assert blind_index.normalize_phone("+447000000001") == "+447000000001"

    t_customer = _Table(Customer, ["id", "created_at", "updated_at", "country", "stale_since"])
    t_key = _Table(CustomerKey, ["customer_id", "kek_id", "wrapped", "key_version", "created_at"])
    t_field = _Table(PersonalField, ["customer_id", "field", "ciphertext", "key_version", "updated_at"])
    t_blind = _Table(BlindIndexEntry, ["kind", "digest", "customer_id", "created_at"])
    t_source = _Table(SourceIdentity, ["customer_id", "source", "digest", "external_id_encrypted", "key_version",
                                       "created_at", "last_seen_at"])
    t_order = _Table(Order, ["customer_id", "source", "external_digest", "created_at", "kind", "ordered_at",
                             "amount", "margin", "returned", "days_late"])
    t_ticket = _Table(Ticket, ["customer_id", "source", "external_digest", "created_at", "opened_at", "escalated",
                               "satisfaction", "channel"])
    t_inter = _Table(Interaction, ["customer_id", "source", "external_digest", "created_at", "kind", "at"])
    t_review = _Table(_review_model(), ["customer_id", "source", "external_digest", "created_at", "at", "rating"])
    t_nps = _Table(NpsAnswer, ["customer_id", "source", "external_digest", "created_at", "at", "score"])
    t_ref = _Table(Referral, ["customer_id", "source", "external_digest", "created_at", "at"])
    t_event = _Table(ConsentEvent, ["id", "customer_id", "purpose_id", "action", "notice_id", "source", "channel",
                                    "occurred_at", "recorded_at", "actor"])
    t_current = _Table(ConsentStateCurrent, ["customer_id", "purpose_id", "event_id", "granted", "notice_id",
                                             "occurred_at", "updated_at"])
    t_flag = _Table(ProcessingFlag, ["id", "customer_id", "kind", "action", "reason", "at", "actor"])
    t_flag_cur = _Table(ProcessingFlagCurrent, ["customer_id", "kind", "flag_id", "since"])

    next_event_id = (ConsentEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    next_flag_id = (ProcessingFlag.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    counts: dict[str, int] = {}

    def add(key: str, n: int) -> None:
        counts[key] = counts.get(key, 0) + n

    fast = _FastIndex()
    src_digest = fast.source
    assert blind_index.source_index("crm", "CRM-00000007") == src_digest("crm", "CRM-00000007")
    all_tables = (t_customer, t_key, t_field, t_blind, t_source, t_order, t_ticket, t_inter, t_review, t_nps, t_ref,
                  t_event, t_current, t_flag, t_flag_cur)
    for t in all_tables:
        t.raw = pg
    tables = [t.table for t in all_tables]
    with pg_deferred_indexes(tables if defer_indexes else []) as index_timings:
        for pop in population(n_customers, seed=seed, start=start):
            with transaction.atomic():
                g0 = pop.start
                uid = [_uuid_value(u, pg) for u in pop.ids]
                signup = [clock(d) for d in pop.signup_day]
                add("customers", t_customer.write(((uid[i], signup[i], now, "GB", null) for i in range(pop.n)), raw=pg))
                # Keys and encrypted personal data (real AES-GCM under a fresh DEK per customer).
                c0 = time.perf_counter()
                key_rows, field_rows, blind_rows, source_rows = [], [], [], []
                for i in range(pop.n):
                    cid = pop.ids[i]
                    g = g0 + i
                    dek = envelope.new_data_key()
                    wrapped = envelope.wrap_data_key(dek, customer_id=cid, kek_id=kek_id)
                    key_rows.append((uid[i], wrapped.kek_id, blob(wrapped.wrapped), 1, signup[i]))
                    name = f"{FIRST[g % len(FIRST)]} {LAST[(g // len(FIRST)) % len(LAST)]}"
                    email = f"customer{g}@bench.example.com"
                    values = {"name": name, "email": email, "address": f"{g % 400 + 1} High Street, Leeds LS{g % 30}"}
                    if pop.has_phone[i]:
                        values["phone"] = f"+447{g % 1_000_000_000:09d}"
                    for field, value in values.items():
                        aad = envelope.field_aad(customer_id=cid, field=field, key_version=1)
                        field_rows.append((uid[i], field, blob(envelope.encrypt_text(dek, value, aad)), 1, now))
                    blind_rows.append(("email", fast("email", email), uid[i], now))
                    if "phone" in values:
                        blind_rows.append(("phone", fast("phone", values["phone"]), uid[i], now))
                    ext = f"CRM-{g:08d}"
                    aad = envelope.field_aad(customer_id=cid, field="source:crm", key_version=1)
                    source_rows.append((uid[i], "crm", src_digest("crm", ext), blob(envelope.encrypt_text(dek, ext, aad)), 1,
                                        signup[i], now))
                crypto += time.perf_counter() - c0
                add("customer_keys", t_key.write(key_rows, raw=pg))
                add("personal_fields", t_field.write(field_rows, raw=pg))
                add("blind_index_entries", t_blind.write(blind_rows, raw=pg))
                add("source_identities", t_source.write(source_rows, raw=pg))
                # Facts.
                oc, od = pop.order_customer, pop.order_day
                amount = [f"{a:.2f}" for a in pop.order_amount]
                margin = [f"{m:.2f}" for m in pop.order_margin]
                add("orders", t_order.write(
                    (uid[c], "erp", src_digest("erp", f"O-{g0 + c}-{k}"), now, "order", clock(d, 36000),
                     amount[k], margin[k], enc_bool(r), late)
                    for k, (c, d, r, late) in enumerate(zip(oc.tolist(), od.tolist(), pop.order_returned.tolist(),
                                                            pop.order_days_late.tolist(), strict=True))))
                add("tickets", t_ticket.write(
                    (uid[c], "support", src_digest("support", f"T-{g0 + c}-{k}"), now, clock(d, 40000), enc_bool(e),
                     s if s else null, "email")
                    for k, (c, d, e, s) in enumerate(zip(pop.ticket_customer.tolist(), pop.ticket_day.tolist(),
                                                         pop.ticket_escalated.tolist(),
                                                         pop.ticket_satisfaction.tolist(), strict=True))))
                add("interactions", t_inter.write(
                    (uid[c], "web", src_digest("web", f"I-{g0 + c}-{k}"), now, INTERACTION_KINDS[kind], clock(d, 50000))
                    for k, (c, d, kind) in enumerate(zip(pop.interaction_customer.tolist(), pop.interaction_day.tolist(),
                                                         pop.interaction_kind.tolist(), strict=True))))
                add("reviews", t_review.write(
                    (uid[c], "web", src_digest("web", f"R-{g0 + c}"), now, clock(d, 55000), int(r))
                    for c, d, r in zip(pop.review_customer.tolist(), pop.review_day.tolist(), pop.review_rating.tolist(),
                                       strict=True)))
                add("nps_answers", t_nps.write(
                    (uid[c], "web", src_digest("web", f"N-{g0 + c}"), now, clock(d, 56000), int(s))
                    for c, d, s in zip(pop.nps_customer.tolist(), pop.nps_day.tolist(), pop.nps_score.tolist(),
                                       strict=True)))
                add("referrals", t_ref.write(
                    (uid[c], "crm", src_digest("crm", f"F-{g0 + c}"), now, clock(d, 57000))
                    for c, d in zip(pop.referral_customer.tolist(), pop.referral_day.tolist(), strict=True)))
                # Consent ledger and the current-state rows the gate reads.
                events, current = [], []
                for code, granted in pop.consent.items():
                    if code not in purposes or code not in notices:
                        continue
                    pid, nid = purposes[code], notices[code]
                    withdrawn = pop.withdrawn[code]
                    for i in np.flatnonzero(granted).tolist():
                        at = signup[i]
                        events.append((next_event_id, uid[i], pid, "grant", nid, "web", "web", at, at, "job:bench"))
                        last_id, last_at, is_granted = next_event_id, at, True
                        next_event_id += 1
                        if withdrawn[i]:
                            w_at = clock(min(int(pop.signup_day[i]) + 30, DAYS - 1), 3600)
                            events.append((next_event_id, uid[i], pid, "withdraw", nid, "web", "web", w_at, w_at,
                                           "job:bench"))
                            last_id, last_at, is_granted = next_event_id, w_at, False
                            next_event_id += 1
                        current.append((uid[i], pid, last_id, enc_bool(is_granted), nid, last_at, now))
                add("consent_events", t_event.write(events, raw=pg))
                add("consent_current", t_current.write(current, raw=pg))
                flags, flags_cur = [], []
                for i in np.flatnonzero(pop.restricted).tolist():
                    flags.append((next_flag_id, uid[i], "restriction", "set", "accuracy_contested", now, "job:bench"))
                    flags_cur.append((uid[i], "restriction", next_flag_id, now))
                    next_flag_id += 1
                add("processing_flags", t_flag.write(flags, raw=pg))
                t_flag_cur.write(flags_cur, raw=pg)
            if progress:
                print(f"    loaded {pop.start + pop.n - start:,} customers ({time.perf_counter() - t_start:.0f} s)", flush=True)
    _fix_sequences([ConsentEvent, ProcessingFlag])
    return LoadReport(customers=n_customers, counts=counts, seconds=time.perf_counter() - t_start,
                      seconds_crypto=crypto, index_seconds=dict(index_timings))


def _review_model() -> Any:
    from profiles.models import Review

    return Review


def _fix_sequences(models: list[Any]) -> None:
    from django.core.management.color import no_style
    from django.db import connection

    sql = connection.ops.sequence_reset_sql(no_style(), models)
    if sql:
        with connection.cursor() as cursor:
            for statement in sql:
                cursor.execute(statement)


# ---------------------------------------------------------------------------------------------------------
# One customer with a long history (section 5: export and erasure)
# ---------------------------------------------------------------------------------------------------------

HEAVY_MIX = {"orders": 0.40, "interactions": 0.40, "tickets": 0.10, "reviews": 0.04, "nps": 0.03,
             "referrals": 0.01, "decisions": 0.02}
HEAVY_TEXT_TICKETS = 100


def heavy_counts(events: int) -> dict[str, int]:
    counts = {k: int(events * share) for k, share in HEAVY_MIX.items()}
    counts["orders"] += events - sum(counts.values())
    return counts


def load_heavy_customer(index: int, *, events: int = 10_000, seed: int = 11,
                        text_tickets: int = HEAVY_TEXT_TICKETS) -> tuple[uuid.UUID, dict[str, int]]:
    """A customer created through the product's services (ingest, consent), with ``events`` history rows:
    orders, interactions and tickets bulk-loaded, 100 tickets with free text through ``facts_ingest_batch``
    (Presidio, original kept encrypted), and ~2 % decision records through ``decision_records_bulk``."""
    import time

    from audit import services as audit_services
    from consent import services as consent_services
    from profiles import services as profile_services
    from profiles.models import Interaction, NpsAnswer, Order, Referral, Ticket

    rng = np.random.default_rng([seed, index])
    counts = heavy_counts(events)
    result = profile_services.customer_ingest(
        source="crm", external_id=f"HEAVY-{seed}-{index}",
        personal={"name": "Anna Maria Nowak", "email": f"heavy{seed}.{index}@bench.example.com",
                  "phone": f"+4479{seed:03d}{index:05d}", "address": "12 Station Road, Leeds LS1 4AB"},
        actor="job:bench")
    cid = result.customer_id
    for purpose in ("automated_scoring", "service_prioritization"):
        consent_services.consent_grant(customer_id=cid, purpose=purpose, source="web", channel="web",
                                       actor="job:bench")
    from django.db import connection, transaction

    pg = connection.vendor == "postgresql"
    clock = _Clock(dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    u = _uuid_value(cid, pg)
    now = clock(DAYS)
    fast = _FastIndex()
    tag = f"{seed}-{index}"
    with transaction.atomic():
        _Table(Order, ["customer_id", "source", "external_digest", "created_at", "kind", "ordered_at", "amount",
                       "margin", "returned", "days_late"]).write(
            (u, "erp", fast.source("erp", f"HO-{tag}-{k}"), now, "order", clock(int(d), 36000), f"{a:.2f}",
             f"{a * 0.3:.2f}", False, 0)
            for k, (d, a) in enumerate(zip(rng.integers(0, DAYS, counts["orders"]).tolist(),
                                           (rng.lognormal(3.8, 0.8, counts["orders"]) + 0.01).tolist(), strict=True)))
        _Table(Interaction, ["customer_id", "source", "external_digest", "created_at", "kind", "at"]).write(
            (u, "web", fast.source("web", f"HI-{tag}-{k}"), now, INTERACTION_KINDS[int(kind)], clock(int(d), 50000))
            for k, (d, kind) in enumerate(zip(rng.integers(0, DAYS, counts["interactions"]).tolist(),
                                              rng.integers(0, len(INTERACTION_KINDS), counts["interactions"]).tolist(),
                                              strict=True)))
        plain_tickets = max(0, counts["tickets"] - min(text_tickets, counts["tickets"]))
        _Table(Ticket, ["customer_id", "source", "external_digest", "created_at", "opened_at", "escalated",
                        "satisfaction", "channel"]).write(
            (u, "support", fast.source("support", f"HT-{tag}-{k}"), now, clock(int(d), 40000), False, 4, "email")
            for k, d in enumerate(rng.integers(0, DAYS, plain_tickets).tolist()))
        _Table(_review_model(), ["customer_id", "source", "external_digest", "created_at", "at", "rating"]).write(
            (u, "web", fast.source("web", f"HR-{tag}-{k}"), now, clock(int(d), 55000), 4)
            for k, d in enumerate(rng.integers(0, DAYS, counts["reviews"]).tolist()))
        _Table(NpsAnswer, ["customer_id", "source", "external_digest", "created_at", "at", "score"]).write(
            (u, "web", fast.source("web", f"HN-{tag}-{k}"), now, clock(int(d), 56000), 9)
            for k, d in enumerate(rng.integers(0, DAYS, counts["nps"]).tolist()))
        _Table(Referral, ["customer_id", "source", "external_digest", "created_at", "at"]).write(
            (u, "crm", fast.source("crm", f"HF-{tag}-{k}"), now, clock(int(d), 57000))
            for k, d in enumerate(rng.integers(0, DAYS, counts["referrals"]).tolist()))
    text_tickets = min(text_tickets, counts["tickets"])
    if text_tickets:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=300)
        records = [{"source": "support", "external_id": f"HTT-{tag}-{k}", "customer_id": str(cid),
                    "opened_at": (start + dt.timedelta(days=k)).isoformat(), "channel": "email",
                    "text": f"Hi, Anna Nowak here (heavy{seed}.{index}@bench.example.com). Order #{10000 + k} "
                            f"arrived damaged, please call me on +4479{seed:03d}{index:05d}."}
                   for k in range(text_tickets)]
        profile_services.facts_ingest_batch(kind="tickets", records=records, actor="job:bench")
    t0 = time.perf_counter()
    decisions = counts["decisions"]
    if decisions:
        records = [{"customer": cid, "purpose": "automated_scoring", "decision_type": "batch_rescore",
                    "requester": "job:nightly_rescore", "consent_event_id": None, "notice_version": "v1",
                    "model_versions": {"clv": "v1", "churn": "v1"}, "features_hash": f"{k:064x}",
                    "outputs": {"tier": "Premium", "clv": 1000.0 + k, "churn_probability": 0.2},
                    "sealed_details": profile_services.customer_seal(
                        customer_id=cid, label="decision_details", payload={"features": {"orders": k}}),
                    "decision_key": f"heavy:{tag}:{k}"}
                   for k in range(decisions)]
        audit_services.decision_records_bulk(records=records)
        audit_services.chain_seal()
    counts["decision_seconds"] = int(time.perf_counter() - t0)
    return cid, counts
