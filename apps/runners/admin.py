from django.contrib import admin

from apps.runners.models import Lease, Runner, RunnerRegistrationToken


@admin.register(RunnerRegistrationToken)
class RegistrationTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "token_prefix", "expires_at", "revoked_at", "created_at"]
    readonly_fields = ["token_prefix", "created_by", "created_at"]


@admin.register(Runner)
class RunnerAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "enabled", "draining", "last_seen_at", "version"]
    list_filter = ["environment", "enabled", "draining"]
    readonly_fields = [
        "token_prefix",
        "capabilities",
        "registration_token",
        "created_at",
        "last_seen_at",
    ]


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["lease_prefix", "runner", "attempt", "state", "granted_at", "expires_at"]
    list_filter = ["state"]
    list_select_related = ["runner", "attempt"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Lease._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
