from django.contrib import admin

from apps.audit.models import AuditEvent
from lib.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only and undeletable: the audit log is append-only."""

    list_display = ["created_at", "action", "actor", "repository", "run", "target", "details"]
    list_filter = ["action", "repository", ("run", admin.EmptyFieldListFilter)]
    search_fields = ["action", "actor", "target"]
    date_hierarchy = "created_at"
    list_select_related = ["repository", "run", "run__repository"]
