"""Customer self-service pages."""

from django.urls import path

from . import views

app_name = "selfservice"
urlpatterns = [
    path("", views.start, name="start"),
    path("verify/", views.verify, name="verify"),
    path("verify/resend/", views.resend, name="resend"),
    path("status/<str:token>/", views.status, name="status"),
    path("status/<str:token>/rectify/", views.rectify, name="rectify"),
    path("status/<str:token>/why/", views.why, name="why"),
    path("status/<str:token>/contest/", views.contest, name="contest"),
    path("export/<str:token>/", views.export_download, name="export-download"),
    path("export/<str:token>/page/", views.export_page, name="export-page"),
    path("export/<str:token>/csv/", views.export_csv, name="export-csv"),
    path("export-schema.json", views.export_schema, name="export-schema"),
]
