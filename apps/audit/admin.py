from django.contrib import admin

from apps.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only and undeletable: the audit log is append-only."""

    list_display = ["created_at", "action", "actor", "repository", "run", "target", "details"]
    list_filter = ["action", "repository", ("run", admin.EmptyFieldListFilter)]
    search_fields = ["action", "actor", "target"]
    date_hierarchy = "created_at"
    list_select_related = ["repository", "run", "run__repository"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
