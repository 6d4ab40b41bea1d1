"""Signals of the scoring app. Receivers get ids only.

``rescore_run_completed(run_id=UUID, purpose=str)`` is sent inside the transaction of the chunk that completes
a rescore run. Higher apps (engagement: the next-best-action sweep) connect in their ``ready()`` and defer
their work with ``transaction.on_commit``; scoring never imports them.
"""

from django.dispatch import Signal

rescore_run_completed = Signal()
