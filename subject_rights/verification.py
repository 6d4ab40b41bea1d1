"""One-time codes for self-service identity verification, and the rate limiter in front of them.

- Codes are 8 random digits, stored only as HMAC-SHA256 (keyed with SECRET_KEY, bound to the request).
- The limiter counts per hashed e-mail (its blind index, re-keyed) and per hashed client address:
  cache keys never contain an e-mail or an IP address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from uuid import UUID

from django.conf import settings

from config.throttling import increment

CODE_DIGITS = 8
_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def code_generate() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(*, request_id: UUID | str, code: str) -> str:
    message = f"dsr-otp|{request_id}|{code.strip()}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def code_matches(*, request_id: UUID | str, code: str, stored_hash: str) -> bool:
    return hmac.compare_digest(code_hash(request_id=request_id, code=code), stored_hash)


def _rate() -> tuple[int, int]:
    """The OTP rate from REST_FRAMEWORK's ``otp`` throttle rate (e.g. ``5/min``)."""
    rest: dict[str, Any] = dict(settings.REST_FRAMEWORK)
    raw = str(rest.get("DEFAULT_THROTTLE_RATES", {}).get("otp") or "5/min")
    count, _, period = raw.partition("/")
    return int(count), _PERIODS.get(period.strip().lower(), 60)


def retry_after_seconds() -> int:
    """The window of the code limits: a throttled client may try again after at most this long."""
    return _rate()[1]


def _hashed(kind: str, value: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"dsr-limit|{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:40]


def _hit(key: str, limit: int, period: int) -> bool:
    """Count one hit in a fixed window; True when the limit is exceeded."""
    # config.throttling.increment: a local count while the shared cache is unreachable, never an error.
    return increment(key, timeout=period) > limit


def limit_exceeded(*, email_digest: str, client_address: str) -> bool:
    """Count a code request; True when the e-mail (hashed) or the client address (hashed) is over the rate.

    The per-address limit is four times the per-e-mail limit (shared offices and mobile networks).
    """
    limit, period = _rate()
    over_email = _hit(f"dsr-otp:e:{_hashed('email', email_digest)}", limit, period) if email_digest else False
    over_address = _hit(f"dsr-otp:a:{_hashed('addr', client_address or '-')}", limit * 4, period)
    return over_email or over_address
