from django.contrib import admin

from apps.audit.models import AuditEvent
from lib.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only and undeletable: the audit log is append-only."""

    list_display = ["created_at", "action", "actor", "subject", "target", "details"]
    list_filter = ["action", "repository", ("run", admin.EmptyFieldListFilter)]
    search_fields = ["action", "actor", "subject", "target"]
    date_hierarchy = "created_at"
