"""Artifact pages (included from deltaci/urls.py)."""

from django.urls import path

from apps.artifacts import views

urlpatterns = [
    path("artifacts/<int:artifact_id>/download", views.download_artifact, name="artifact-download"),
]
