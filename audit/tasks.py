"""Audit tasks: seal the chain and sign its head (on commit of any audit write, and by beat every
``AUDIT_HEAD_SIGN_SECONDS``), write permanent signed checkpoints when due (beat, every minute) and verify on
demand. No arguments, so nothing personal."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from audit import services


@shared_task(name="audit.tasks.seal_chain", acks_late=True, ignore_result=True, soft_time_limit=300, time_limit=360)
def seal_chain() -> int:
    # Clear the de-duplication flag first: a write committing from now on queues a fresh run.
    cache.delete(services.SEAL_REQUEST_FLAG)
    return services.chain_seal_and_sign()


@shared_task(name="audit.tasks.write_checkpoint", acks_late=True, ignore_result=True, soft_time_limit=300,
             time_limit=360)
def write_checkpoint() -> int | None:
    services.chain_seal()
    services.chain_head_sign()
    checkpoint = services.checkpoint_write()
    return checkpoint.seq if checkpoint is not None else None


@shared_task(name="audit.tasks.verify_chain", acks_late=True, ignore_result=True, soft_time_limit=1500,
             time_limit=1800)
def verify_chain(user_id: int | None = None) -> bool:
    """Verify now (the console's button). Takes the console user's id, never a name."""
    actor = "job:audit_verify"
    if user_id is not None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id).first()
        if user is not None:
            actor = f"user:{user.get_username()}"
    return bool(services.chain_verify_run(actor=actor).ok)
