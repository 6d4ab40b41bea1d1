"""Response headers for pages and API answers about customers.

``Cache-Control: no-store`` on every API response, every console page, the self-service pages and the admin:
pseudonymised data is still personal data, and neither a browser nor a proxy may keep a copy. (A view that
sets its own ``Cache-Control`` keeps it only if it already says ``no-store``.)
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

NO_STORE_PREFIXES = ("/api/v1/", "/console/", "/me/", "/admin/")


class NoStoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(NO_STORE_PREFIXES) and "no-store" not in response.get("Cache-Control", ""):
            if response.has_header("Cache-Control"):
                del response["Cache-Control"]
            patch_cache_control(response, no_store=True, private=True, max_age=0)
        return response
