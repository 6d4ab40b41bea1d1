from django.urls import path

from . import views

urlpatterns = [
    path("subject-requests", views.SubjectRequestCreateApi.as_view(), name="subject-request-create"),
    path("subject-requests/<uuid:request_id>", views.SubjectRequestDetailApi.as_view(), name="subject-request-detail"),
    path("subject-requests/<uuid:request_id>/export", views.SubjectRequestExportApi.as_view(),
         name="subject-request-export"),
]
