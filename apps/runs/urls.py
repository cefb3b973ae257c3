"""Run pages for teams (server-rendered)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from apps.runs import views

urlpatterns = [
    path("", views.repositories, name="home"),
    # Members of private repositories need not be staff, so not the admin's login page.
    path("login", auth_views.LoginView.as_view(), name="login"),
    path("logout", auth_views.LogoutView.as_view(next_page="home"), name="logout"),
    path("runs", views.run_list, name="run-list"),
    path("runs/live", views.run_list_live, name="run-list-live"),
    path("repos/<slug:name>/tests", views.repository_test_history, name="repo-tests"),
    path("runs/<int:run_id>", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/live", views.run_live, name="run-live"),
    path("runs/<int:run_id>/cancel", views.cancel_run, name="run-cancel"),
    path("runs/<int:run_id>/rerun", views.rerun_run, name="run-rerun"),
    path(
        "runs/<int:run_id>/attempts/<int:attempt_id>/log",
        views.attempt_log,
        name="attempt-log",
    ),
    path(
        "runs/<int:run_id>/attempts/<int:attempt_id>/log/tail",
        views.attempt_log_tail,
        name="attempt-log-tail",
    ),
    path(
        "runs/<int:run_id>/attempts/<int:attempt_id>/log/lines",
        views.attempt_log_lines,
        name="attempt-log-lines",
    ),
    path(
        "runs/<int:run_id>/attempts/<int:attempt_id>/log/raw",
        views.attempt_log_raw,
        name="attempt-log-raw",
    ),
]
