from django.contrib import admin

from apps.policies.models import Policy, Secret


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ["repository", "egress_mode", "max_concurrent_jobs", "planning_mode"]
    list_select_related = ["repository"]


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    list_display = ["name", "repository", "environment", "updated_at"]
    exclude = ["ciphertext"]
