"""Signals of the consent app. Receivers get pseudonymous ids and purpose codes only.

``consent_changed(customer_id=UUID, purpose=str | None, kind=str)`` is sent inside the writing transaction
(by ``consent.services``) whenever a consent event or a processing flag is recorded:

- ``kind``: ``"withdrawn"`` | ``"restricted"`` | ``"objected"`` (processing for ``purpose`` must stop) or
  ``"granted"`` | ``"lifted"`` (processing may resume once the gate allows it);
- ``purpose``: the purpose code, or ``None`` for every purpose (a restriction/objection of all purposes).

Receivers run in the same transaction: an exception in a receiver rolls the consent change back with it,
so a withdrawal is never committed without its consequences (GDPR Art. 7(3): stored scores for that
purpose are invalidated). Receivers that enqueue work must do it on commit. Higher apps (scoring) connect
to this signal; consent never imports them.
"""

from django.dispatch import Signal

WITHDRAWN = "withdrawn"
RESTRICTED = "restricted"
OBJECTED = "objected"
GRANTED = "granted"
LIFTED = "lifted"

#: Kinds after which processing for the purpose must stop at once.
STOPPING_KINDS = frozenset({WITHDRAWN, RESTRICTED, OBJECTED})

consent_changed = Signal()
