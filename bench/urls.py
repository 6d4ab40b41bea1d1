"""Bench-only URLconf: the product's URLs plus the bare baseline endpoint (section 1)."""

from django.urls import path

from bench.bare import BareCustomerView
from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as product_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("bench/bare/customers/<uuid:customer_id>", BareCustomerView.as_view(), name="bench-bare"),
    *product_urlpatterns,
]
