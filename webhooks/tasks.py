"""Thin Celery tasks: the outbox relay (kicked on commit and by beat) and the delivery pass (after a relay,
and by beat for retries). No arguments: each pass claims its own work (PostgreSQL: SKIP LOCKED)."""

from __future__ import annotations

from celery import shared_task

from webhooks import services


@shared_task(acks_late=True, time_limit=300, soft_time_limit=240, ignore_result=True)
def relay_outbox() -> int:
    relayed = services.outbox_relay_all()
    if relayed:
        deliver_due.delay()
    return relayed


@shared_task(acks_late=True, time_limit=600, soft_time_limit=540, ignore_result=True)
def deliver_due() -> int:
    return services.deliveries_send_due().attempted
