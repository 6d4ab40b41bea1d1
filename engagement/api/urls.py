from django.urls import path

from engagement.api import views

urlpatterns = [
    path("actions", views.ActionListView.as_view(), name="actions"),
    path("actions/<int:action_id>/claim", views.ActionClaimView.as_view(), name="action-claim"),
    path("actions/<int:action_id>/complete", views.ActionCompleteView.as_view(), name="action-complete"),
    path("actions/<int:action_id>/dismiss", views.ActionDismissView.as_view(), name="action-dismiss"),
]
