"""Errors raised by the profiles services (subclasses of the one error vocabulary in config.errors)."""

from __future__ import annotations

from config.errors import Conflict, ValidationFailed, field_message


class RecordInvalid(ValidationFailed):
    """One input field is invalid. Carries the field name and an error code, never the value."""

    def __init__(self, field: str, code: str = "invalid") -> None:
        self.field = field
        self.field_code = code
        super().__init__(
            "The record is invalid.",
            extra={"errors": {field: [{"code": code, "message": field_message(code)}]}},
        )


class MergeConflict(Conflict):
    """Identity resolution refused to join customers whose strong identifiers disagree."""

    code = "merge_conflict"
    default_detail = "The record's identifiers match different customers with conflicting identifiers."

    def __init__(self, reason: str) -> None:
        self.reason = reason  # a code: "conflicting_email" | "conflicting_phone"
        super().__init__(extra={"reason": reason})


class IdentifierInUse(Conflict):
    code = "identifier_in_use"
    default_detail = "This identifier belongs to another customer."

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(extra={"field": field})
