"""A guard for the plaintext columns: no direct identifier where only a non-personal label belongs.

Order and ticket categories and plain (non-personal) CRM attributes are stored unencrypted, so an e-mail
address mapped into one of them by mistake would be personal data at rest in plaintext. Such a value is
refused at the door, with a code and never the value, and the sender is told to send it as a personal
field (encrypted under the customer's key).

A refusal must never fire on an ordinary label or product code, so only high-precision detections count:

* an e-mail address (``local@domain.tld``);
* a phone number written in international form (``+48 601 234 567``), valid per ``phonenumbers``;
* an IBAN, by Presidio's recognizer (country formats and check digits);
* a payment card number, by Presidio's recognizer (issuer patterns and the Luhn check).

Names, postal addresses and national-format phone numbers are not detectable here without false refusals
of brand names and reference numbers; attribute *names* that are direct identifiers (``email``, ``phone``,
``date_of_birth``, ...) are refused instead (:data:`DIRECT_IDENTIFIER_NAMES`). Pure Python: no Django.
"""

from __future__ import annotations

import re
import threading

import phonenumbers
from presidio_analyzer import EntityRecognizer
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, IbanRecognizer

from .pseudonymizer.shared import CARD_HINT, IBAN_HINT, harden_presidio_logging

__all__ = ["DIRECT_IDENTIFIER_NAMES", "identifier_kind", "is_direct_identifier_name"]

# Attribute names that say the value identifies a person directly: such a value is a personal field.
DIRECT_IDENTIFIER_NAMES = frozenset({
    "name", "first_name", "last_name", "full_name", "given_name", "family_name", "surname",
    "email", "email_address", "e_mail",
    "phone", "phone_number", "mobile", "mobile_phone", "mobile_number", "telephone", "tel",
    "address", "street", "street_address", "home_address", "postal_address",
    "date_of_birth", "birth_date", "birthdate", "birthday", "dob",
    "iban", "bank_account", "card_number", "credit_card",
    "ip", "ip_address",
    "ssn", "national_id", "passport_number", "tax_id",
})

_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[^\W\d_]{2,}")

_recognizers_lock = threading.Lock()
_recognizers: tuple[EntityRecognizer, EntityRecognizer] | None = None


def _iban_and_card() -> tuple[EntityRecognizer, EntityRecognizer]:
    global _recognizers
    if _recognizers is None:
        with _recognizers_lock:
            if _recognizers is None:
                harden_presidio_logging()  # Presidio may log a matched value
                _recognizers = (IbanRecognizer(supported_language="en"), CreditCardRecognizer(supported_language="en"))
    return _recognizers


def is_direct_identifier_name(name: str) -> bool:
    """``name`` (an attribute's name, lower case) names a direct identifier."""
    return name.lower() in DIRECT_IDENTIFIER_NAMES


def _has_international_phone(text: str) -> bool:
    if "+" not in text:
        return False
    matcher = phonenumbers.PhoneNumberMatcher(text, None, leniency=phonenumbers.Leniency.VALID)
    return matcher.has_next()


def _found(recognizer: EntityRecognizer, text: str) -> bool:
    # Pattern recognizers read no NLP artifacts (Presidio types the argument as required).
    results = recognizer.analyze(text, recognizer.supported_entities, None)  # type: ignore[arg-type]
    return any(r.score >= 0.5 for r in results)


def identifier_kind(text: str) -> str | None:
    """``"email"``, ``"phone"``, ``"iban"`` or ``"payment_card"`` when ``text`` holds such an identifier,
    else ``None``. Cheap pre-filters first (an ``@``, a ``+``, enough digits), so an ordinary label costs
    microseconds. Nothing is cached: a refused value is not kept in memory past the call."""
    if "@" in text and _EMAIL.search(text):
        return "email"
    if _has_international_phone(text):
        return "phone"
    digits = sum(map(str.isdigit, text))
    if digits < 8:
        return None
    iban, card = _iban_and_card()
    if IBAN_HINT.search(text) and _found(iban, text):
        return "iban"
    if digits >= 13 and CARD_HINT.search(text) and _found(card, text):
        return "payment_card"
    return None
