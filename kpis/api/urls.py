from django.urls import path

from kpis.api import views

urlpatterns = [path("kpis", views.KpiView.as_view(), name="kpis")]
