"""DPO console: webhook delivery health and dead letters (GDPR Art. 19 notices included), with one-click replay.

Thin views over ``webhooks.selectors`` and ``webhooks.services``. The page shows endpoints by host, event
types, pseudonyms, states and short error codes: no personal data, no secrets. Replay is a POST (CSRF) and
is audited by the service.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from config.errors import ApplicationError
from console.auth import actor_of, dpo_required
from webhooks import selectors, services


def _host(url: str) -> str:
    return urlsplit(url).netloc


@never_cache
@require_GET
@dpo_required
def webhook_health(request: HttpRequest) -> HttpResponse:
    health = selectors.delivery_health()
    dead = selectors.dead_letters()
    return render(request, "console/webhooks/health.html", {
        "health": health,
        "dead": [{"d": d, "host": _host(d.subscription.url)} for d in dead],
        "failures": [{"d": d, "host": _host(d.subscription.url)} for d in health["recent_failures"]],
        "subscriptions": [{"s": s, "host": _host(s.url)} for s in selectors.subscription_list()],
    })


@require_POST
@dpo_required
def webhook_replay(request: HttpRequest, delivery_id: int) -> HttpResponse:
    try:
        services.delivery_replay(delivery_id=delivery_id, actor=actor_of(request))
    except ApplicationError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Delivery {delivery_id} queued again.")
    return HttpResponseRedirect(reverse("console:webhooks"))


urlpatterns = [
    path("webhooks/", webhook_health, name="webhooks"),
    path("webhooks/deliveries/<int:delivery_id>/replay/", webhook_replay, name="webhook-replay"),
]
