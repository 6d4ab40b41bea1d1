from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhooks", views.SubscriptionListView.as_view(), name="webhook-list"),
    path("webhooks/event-schema", views.EventSchemaView.as_view(), name="webhook-event-schema"),
    path("webhooks/<uuid:subscription_id>", views.SubscriptionDetailView.as_view(), name="webhook-detail"),
]
