"""Who may use the DPO console: members of the group ``dpo`` and superusers.

Anonymous visitors are sent to the console login; signed-in users outside the group get 403.
``request_views`` (subject requests, reviews) uses the same decorator.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render

DPO_GROUP = "dpo"


def is_dpo(user: Any) -> bool:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return bool(user.is_superuser or user.groups.filter(name=DPO_GROUP).exists())


def actor_of(request: HttpRequest) -> str:
    """The audit actor string of the console user: ``user:<username>``."""
    return f"user:{request.user.get_username()}"


def forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "console/forbidden.html", status=403)


ViewT = TypeVar("ViewT", bound=Callable[..., HttpResponseBase])


def dpo_required(view: ViewT) -> ViewT:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_dpo(request.user):
            return forbidden(request)
        return view(request, *args, **kwargs)

    return cast(ViewT, wrapper)
