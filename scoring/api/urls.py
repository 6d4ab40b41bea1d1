from django.urls import path

from scoring.api import views

urlpatterns = [
    path("customers/<uuid:customer_id>/score", views.CustomerScoreView.as_view(), name="customer-score"),
    path("score", views.ScoreLookupView.as_view(), name="score-lookup"),
    path("route", views.RouteView.as_view(), name="route"),
    path("outcomes", views.OutcomeView.as_view(), name="outcomes"),
    path("models/active", views.ActiveModelsView.as_view(), name="models-active"),
]
