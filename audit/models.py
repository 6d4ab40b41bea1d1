"""Audit models. The audit app depends on no other app of ours.

``ApiClient`` lives here because API clients are the *recipients* of decisions and the *requesters*
recorded in every decision record; the accountability layer owns who may ask for what.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class ApiClient(models.Model):
    """An internal system (support desk, CRM, marketing) calling the API with a bearer token.

    The token is stored only as a SHA-256 hash; it is shown once, at creation.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=12)
    scopes = models.JSONField(default=list)
    purposes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"api-client:{self.name}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def requester(self) -> str:
        return f"api:{self.name}"
