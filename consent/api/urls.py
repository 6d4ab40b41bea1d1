from django.urls import path

from consent.api import views

urlpatterns = [
    path("consents/grant", views.ConsentGrantView.as_view(), name="consent-grant"),
    path("consents/withdraw", views.ConsentWithdrawView.as_view(), name="consent-withdraw"),
    path("consents/bulk", views.ConsentBulkView.as_view(), name="consent-bulk"),
    path("consents/<int:event_id>/receipt", views.ConsentReceiptView.as_view(), name="consent-receipt"),
    path("customers/<uuid:customer_id>/consents", views.CustomerConsentsView.as_view(), name="customer-consents"),
    path("customers/<uuid:customer_id>/consents/history", views.CustomerConsentHistoryView.as_view(),
         name="customer-consent-history"),
    path("purposes", views.PurposeListView.as_view(), name="purpose-list"),
]
