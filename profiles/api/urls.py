from django.urls import path

from .views import CustomerLookupView, IngestView

urlpatterns = [
    path("ingest/<str:kind>/", IngestView.as_view(), name="ingest"),
    path("customers/lookup", CustomerLookupView.as_view(), name="customer-lookup"),
]
