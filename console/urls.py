"""DPO console URLs. The console is the top app of the house: it reads every app below it, and nothing
imports it.

``customer_views`` holds the home page (the DPO's work queue) and the Customer 360; ``audit_views`` the
accountability pages (decisions, access log, consent and model overviews, chain status, records of
processing, exports); ``request_views`` the subject-request queue, erasure confirmation and human reviews;
``breach_views`` the personal-data breach register (Art. 33); ``model_views`` model governance;
``kpi_views`` the KPI dashboard; ``webhook_views`` webhook delivery health.
"""

from console import (
    audit_views,
    breach_views,
    customer_views,
    kpi_views,
    model_views,
    request_views,
    webhook_views,
)

app_name = "console"
urlpatterns = [
    *customer_views.urlpatterns,
    *audit_views.urlpatterns,
    *request_views.urlpatterns,
    *breach_views.urlpatterns,
    *webhook_views.urlpatterns,
    *model_views.urlpatterns,
    *kpi_views.urlpatterns,
]
