"""URL map. The API lives under /api/v1/, the DPO console under /console/, the customer pages under /me/."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health, schema  # noqa: F401  (registers the OpenAPI auth extension)

handler400 = "config.errors.json_bad_request"
handler403 = "config.errors.json_forbidden"
handler404 = "config.errors.json_not_found"
handler500 = "config.errors.json_server_error"

api_v1 = [
    path("", include("profiles.api.urls")),
    path("", include("consent.api.urls")),
    path("", include("scoring.api.urls")),
    path("", include("engagement.api.urls")),  # issue 17: next-best actions
    path("", include("kpis.api.urls")),  # issue 17: KPIs
    path("", include("subject_rights.api.urls")),
]

urlpatterns = [
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("console/", include("subject_rights.console.urls")),
    path("me/", include("subject_rights.selfservice.urls")),
    path("admin/", admin.site.urls),
]
