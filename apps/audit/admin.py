from django.contrib import admin
from django.db.models import QuerySet

from apps.audit.models import AuditEvent
from lib.admin import ReadOnlyAdmin

NOISY = ("lease.grant",)  # one per job attempt: shown only when asked for
ALL = "*all*"


class ActionFilter(admin.SimpleListFilter):
    """By action; lease grants are hidden unless chosen (or "all actions, with lease
    grants")."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        actions = AuditEvent.objects.order_by("action").values_list("action", flat=True)
        return [(ALL, "all actions, with lease grants"), *((a, a) for a in actions.distinct())]

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] == "All":
                choice["display"] = "all but lease grants"
            yield choice

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == ALL:
            return queryset
        if value:
            return queryset.filter(action=value)
        return queryset.exclude(action__in=NOISY)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only and undeletable: the audit log is append-only."""

    list_display = ["created_at", "action", "actor", "subject", "target", "details"]
    list_filter = [ActionFilter, "repository", ("run", admin.EmptyFieldListFilter)]
    search_fields = ["action", "actor", "subject", "target"]
    date_hierarchy = "created_at"
