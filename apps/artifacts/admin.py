"""Read-only screens for artifacts and parsed test reports. Artifacts are never deleted
here (that would orphan their stored object): retention deletes them, storage first."""

from django.contrib import admin

from apps.artifacts.models import Artifact, TestReport


class ReadOnly(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Artifact)
class ArtifactAdmin(ReadOnly):
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
class TestReportAdmin(ReadOnly):
    list_display = ["artifact", "attempt", "total", "truncated", "error", "parsed_at"]
    list_filter = [("error", admin.EmptyFieldListFilter), "truncated"]
    list_select_related = ["artifact", "attempt", "attempt__job"]
