from django.urls import path

from apps.runs.api import views

urlpatterns = [
    path("runs", views.RunListView.as_view(), name="api-runs"),
    path("runs/<str:run_id>", views.RunDetailView.as_view(), name="api-run"),
    path("runs/<str:run_id>/cancel", views.RunCancelView.as_view(), name="api-run-cancel"),
    path("runs/<str:run_id>/rerun", views.RunRerunView.as_view(), name="api-run-rerun"),
]
