"""``event_recorded(event=OutboxEvent)`` is sent inside the writing transaction by ``events.services.event_record``.

Receivers (higher apps, connected in their ``AppConfig.ready``) run in the same transaction: an exception
rolls the change back with its event. Receivers that do I/O must defer it with ``transaction.on_commit``.
"""

from django.dispatch import Signal

event_recorded = Signal()
