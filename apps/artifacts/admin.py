from django.contrib import admin

from apps.artifacts.models import Artifact


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "artifact_type",
        "attempt",
        "size",
        "recorded",
        "created_at",
        "deleted_at",
    ]
    list_filter = ["artifact_type", "recorded"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Artifact._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
