"""Errors raised by the subject-rights services (subclasses of the one vocabulary in config.errors)."""

from __future__ import annotations

from config.errors import ApplicationError, Conflict


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_detail = "The request cannot move to that status from its current status."


class ExtensionTooLate(Conflict):
    code = "extension_too_late"
    default_detail = "The deadline can only be extended before the first month ends."


class ExtensionExhausted(Conflict):
    code = "extension_exhausted"
    default_detail = "The deadline can be extended by at most two further months."


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    default_detail = "This idempotency key was already used for a different request."


class LegalHoldActive(Conflict):
    code = "legal_hold"
    default_detail = "A legal hold prevents erasure."


class TooManyRequests(ApplicationError):
    status_code = 429
    code = "throttled"
    default_detail = "Too many requests. Try again later."
