"""Detected spans, overlap resolution and the per-customer placeholder state (pure Python)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .text import normalize

# Tiers for overlap resolution (lower wins first).
TIER_KNOWN, TIER_PATTERN, TIER_NER = 0, 1, 2

_STATE_VERSION = "1"
_STATE_SALT = "_salt"
_STATE_VERSION_KEY = "_v"
_STATE_COUNTER_PREFIX = "_n:"


@dataclass(frozen=True)
class PseudonymizedText:
    """Rewritten text plus a value-free summary."""

    text: str
    entities: tuple[tuple[str, int], ...]
    mapping_hash: str



@dataclass(frozen=True)
class Span:
    start: int
    end: int
    placeholder_type: str
    key: str  # normalized value; hashed before it reaches the state
    score: float
    tier: int

    @property
    def length(self) -> int:
        return self.end - self.start


def _overlaps(span: Span, accepted: Sequence[Span]) -> bool:
    return any(span.start < a.end and a.start < span.end for a in accepted)


def _uncovered(start: int, end: int, accepted: Sequence[Span]) -> list[tuple[int, int]]:
    segments = [(start, end)]
    for a in accepted:
        nxt = []
        for s, e in segments:
            if a.end <= s or a.start >= e:
                nxt.append((s, e))
                continue
            if s < a.start:
                nxt.append((s, a.start))
            if a.end < e:
                nxt.append((a.end, e))
        segments = nxt
    return segments


def _has_capitalized_word(value: str) -> bool:
    """Names are written capitalized; this drops English-NER noise on other languages ("mijn naam")."""
    return any(w[:1].isupper() for w in value.split())


def resolve_spans(text: str, spans: list[Span]) -> list[Span]:
    """Known ids win, then pattern hits (longer, then higher score); NER fills the remaining gaps."""
    accepted: list[Span] = []
    for span in sorted(
        (s for s in spans if s.tier != TIER_NER), key=lambda s: (s.tier, -s.length, -s.score, s.start)
    ):
        if not _overlaps(span, accepted):
            accepted.append(span)
    for span in sorted(
        (s for s in spans if s.tier == TIER_NER), key=lambda s: (-s.length, -s.score, s.start)
    ):
        if not _overlaps(span, accepted):
            accepted.append(span)
            continue
        # Keep the part of an NER entity not covered by a stronger match ("Anna Nowak" next to own name).
        for s, e in _uncovered(span.start, span.end, accepted):
            piece = text[s:e]
            lead = len(piece) - len(piece.lstrip(" \t\n,.;:'\"()-"))
            trail = len(piece) - len(piece.rstrip(" \t\n,.;:'\"()-"))
            s, e = s + lead, e - trail
            if e - s >= 2 and sum(c.isalnum() for c in text[s:e]) >= 2 and _has_capitalized_word(text[s:e]):
                accepted.append(
                    Span(
                        s,
                        e,
                        span.placeholder_type,
                        normalize(span.placeholder_type, text[s:e]),
                        span.score,
                        TIER_NER,
                    )
                )
    return sorted(accepted, key=lambda s: s.start)


# ---------------------------------------------------------------------------------------------------------
# Placeholder state
# ---------------------------------------------------------------------------------------------------------


class PlaceholderState:
    """View over the caller's ``dict[str, str]``: HMAC(salt, type|value) -> placeholder, plus counters."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        if _STATE_SALT not in data:
            data[_STATE_VERSION_KEY] = _STATE_VERSION
            data[_STATE_SALT] = secrets.token_hex(16)
        self._salt = bytes.fromhex(data[_STATE_SALT])

    def digest(self, placeholder_type: str, key: str) -> str:
        return hmac.new(self._salt, f"{placeholder_type}|{key}".encode(), hashlib.sha256).hexdigest()

    def placeholder_for(self, placeholder_type: str, key: str) -> tuple[str, str]:
        digest = self.digest(placeholder_type, key)
        existing = self.data.get(digest)
        if existing is not None:
            return existing, digest
        counter_key = _STATE_COUNTER_PREFIX + placeholder_type
        n = int(self.data.get(counter_key, "0")) + 1
        self.data[counter_key] = str(n)
        placeholder = f"<{placeholder_type}_{n}>"
        self.data[digest] = placeholder
        return placeholder, digest


def apply_spans(text: str, spans: list[Span], state: PlaceholderState) -> PseudonymizedText:
    if not spans:
        return PseudonymizedText(text=text, entities=(), mapping_hash="")
    assigned = [(span, *state.placeholder_for(span.placeholder_type, span.key)) for span in spans]
    out = text
    for span, placeholder, _digest in sorted(assigned, key=lambda a: a[0].start, reverse=True):
        out = out[: span.start] + placeholder + out[span.end :]
    counts = Counter(span.placeholder_type for span, _p, _d in assigned)
    pairs = sorted({f"{placeholder}={digest}" for _s, placeholder, digest in assigned})
    mapping_hash = hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:16]
    return PseudonymizedText(text=out, entities=tuple(sorted(counts.items())), mapping_hash=mapping_hash)

