"""Operators' read-only view of what GitHub sent and what Delta CI reported back."""

from django.contrib import admin

from apps.vcs.models import PullRequestComment, RunReport, WebhookDelivery
from lib.admin import ReadOnlyAdmin


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "event",
        "action",
        "full_name",
        "outcome",
        "run",
        "times_received",
        "delivery_id",
    ]
    list_filter = ["event", "outcome"]
    list_select_related = ["run__repository"]
    search_fields = ["delivery_id", "full_name"]
    date_hierarchy = "received_at"


@admin.register(RunReport)
class RunReportAdmin(ReadOnlyAdmin):
    list_display = ["run", "last_state", "check_run_id", "attempts", "last_error", "updated_at"]
    list_select_related = ["run__repository"]
    search_fields = ["run__id"]


@admin.register(PullRequestComment)
class PullRequestCommentAdmin(ReadOnlyAdmin):
    list_display = ["repository", "pr_number", "comment_id", "run", "updated_at"]
    list_select_related = ["repository", "run__repository"]
