from django.urls import path

from apps.vcs import views

urlpatterns = [
    path("github", views.github_webhook, name="github-webhook"),
]
