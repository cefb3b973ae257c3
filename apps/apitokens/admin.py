"""Operators create API tokens for users (shown once, in a message), see their hash
prefix, last use and expiry, and revoke them. The hash itself is never shown."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from apps.apitokens.actions import do_create_api_token, do_revoke_api_token
from apps.apitokens.models import ApiToken
from apps.audit.actions import actor_name
from lib.admin import adopt_created, show_token_once


class ApiTokenForm(forms.ModelForm):
    expires_at = forms.DateTimeField(
        required=False, help_text="Empty: DELTACI_API_TOKEN_DAYS from now."
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name", "expires_at"]

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return value


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = [
        "user",
        "name",
        "token_prefix",
        "token_status",
        "last_used_at",
        "expires_at",
        "created_at",
    ]
    list_select_related = ["user"]
    search_fields = ["name", "token_prefix", "user__username"]
    actions = ["revoke_tokens"]
    exclude = ["token_hash"]

    def get_readonly_fields(self, request, obj=None):
        base = ["token_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
        return base + ["user", "name", "expires_at"] if obj else base

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "token_prefix", "expires_at", "last_used_at", "revoked_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description="status")
    def token_status(self, obj: ApiToken) -> str:
        return obj.status()

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        row, token = do_create_api_token(
            form.cleaned_data["user"],
            name=form.cleaned_data.get("name") or "",
            expires_at=form.cleaned_data.get("expires_at"),
            actor=actor_name(request.user),
        )
        adopt_created(obj, row)
        show_token_once(self, request, f"API token for {row.user.get_username()}", token)

    @admin.action(description="Revoke selected API tokens", permissions=["delete"])
    def revoke_tokens(self, request, queryset) -> None:
        done = sum(do_revoke_api_token(t, actor=actor_name(request.user)) for t in queryset)
        self.message_user(request, f"revoked {done} API token(s)", messages.SUCCESS)
