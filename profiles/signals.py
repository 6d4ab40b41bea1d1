"""Signals of the profiles app. Receivers get pseudonymous ids only.

``customer_facts_changed(customer_ids=[UUID, ...])`` is sent inside the writing transaction after new or
changed facts, rectification or a retention purge. Receivers that enqueue work must do it on commit
(``transaction.on_commit`` / ``delay_on_commit``); a rolled-back row discards its callbacks.

``customers_merged(survivor_id=UUID, loser_ids=[UUID, ...])`` is sent when identity resolution joined
customers; the losers remain as aliases (``merged_into``) so higher apps may re-point what they hold.
"""

from django.dispatch import Signal

customer_facts_changed = Signal()
customers_merged = Signal()
