"""URL map. The API lives under /api/v1/, the DPO console under /console/, the customer pages under /me/."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import health, landing, schema  # noqa: F401  (registers the OpenAPI auth extension)

handler400 = "config.errors.json_bad_request"
handler403 = "config.errors.json_forbidden"
handler404 = "config.errors.json_not_found"
handler500 = "config.errors.json_server_error"

api_v1 = [
    path("", include("profiles.api.urls")),
    path("", include("consent.api.urls")),
    path("", include("scoring.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("engagement.api.urls")),  # issue 17: next-best actions
    path("", include("kpis.api.urls")),  # issue 17: KPIs
    path("", include("subject_rights.api.urls")),
]

urlpatterns = [
    path("", landing.landing, name="landing"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its initialiser as a script file: no inline script (Content-Security-Policy).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("console/", include("console.urls")),
    path("me/", include("subject_rights.selfservice.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the customer's stored language choice
]
if settings.ADMIN_ENABLED:  # production: only with ADMIN_ENABLED=true
    urlpatterns.append(path("admin/", admin.site.urls))
