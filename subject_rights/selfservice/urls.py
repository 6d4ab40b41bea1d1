"""Customer self-service pages."""

from django.urls import path  # noqa: F401

app_name = "selfservice"
urlpatterns: list = []
