from django.contrib import admin

from apps.ai.models import FailureAnalysis


@admin.register(FailureAnalysis)
class FailureAnalysisAdmin(admin.ModelAdmin):
    """Read-only: analyses are written by the analysis task alone."""

    list_display = ["attempt", "outcome", "model_name", "confidence", "bytes_sent", "created_at"]
    list_filter = ["outcome"]
    list_select_related = ["attempt"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
