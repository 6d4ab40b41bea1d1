"""DPO console URLs. The console lives in the top app because it reads every app below it.

``audit_views`` holds the accountability pages (decisions, access log, consent and model overviews,
chain status, records of processing, exports); ``request_views`` holds the subject-request queue and
human reviews; ``breach_views`` holds the personal-data breach register (Art. 33).
"""

from console import (
    audit_views,
    breach_views,
    kpi_views,  # issue 17: KPI dashboard
    model_views,  # model governance: fairness, drift, training history
    request_views,
    webhook_views,
)

app_name = "console"
urlpatterns = [*audit_views.urlpatterns, *request_views.urlpatterns, *breach_views.urlpatterns,
               *webhook_views.urlpatterns]
urlpatterns += model_views.urlpatterns
urlpatterns += kpi_views.urlpatterns
