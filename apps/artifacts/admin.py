"""Read-only screens for artifacts and parsed test reports. Artifacts are never deleted
here (that would orphan their stored object): retention deletes them, storage first."""

from django.contrib import admin

from apps.artifacts.models import Artifact, TestReport
from lib.admin import ReadOnlyAdmin


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "artifact_type",
        "attempt",
        "size",
        "recorded",
        "created_at",
        "deleted_at",
    ]
    list_filter = ["artifact_type", "recorded", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key"]
    list_select_related = ["attempt", "attempt__job"]


@admin.register(TestReport)
class TestReportAdmin(ReadOnlyAdmin):
    list_display = ["artifact", "attempt", "total", "truncated", "error", "parsed_at"]
    list_filter = [("error", admin.EmptyFieldListFilter), "truncated"]
    list_select_related = ["artifact", "attempt", "attempt__job"]
