from typing import Any

from django import forms
from django.contrib import admin

from apps.audit.actions import actor_name
from apps.policies.audit import record_policy_edit
from apps.policies.forms import FIELDSETS, PolicyForm
from apps.policies.models import Policy, Secret
from apps.policies.secrets import SECRET_NAME, set_secret


class PolicyPageForm(PolicyForm):
    """The repository's inline policy form, plus the repository when added here."""

    class Meta(PolicyForm.Meta):
        fields = ["repository", *PolicyForm.Meta.fields]


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    """The same form, validation and audit as the policy inline on the repository."""

    form = PolicyPageForm
    fieldsets = [(None, {"fields": ["repository"]}), *FIELDSETS]
    list_display = ["repository", "egress_mode", "max_concurrent_jobs", "planning_mode"]
    list_select_related = ["repository"]

    def get_readonly_fields(self, request, obj=None):
        return ["repository"] if obj else []

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        record_policy_edit(form, obj.repository, actor=actor_name(request.user))


class SecretForm(forms.ModelForm):
    """The value is write-only: the field never renders what is stored (or what was
    typed, when the form comes back with an error)."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        strip=False,
        max_length=64 * 1024,
        help_text="Write-only. Leave empty to keep the current value.",
    )

    class Meta:
        model = Secret
        fields = ["repository", "environment", "name"]

    def clean_name(self) -> str:
        name = self.cleaned_data.get("name", "")
        if not SECRET_NAME.match(name):
            raise forms.ValidationError(
                "A secret's name is an environment variable name: letters, digits and _, "
                "not starting with a digit (the rule ci.ai.yaml applies to `secrets:`)."
            )
        return name

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean() returns
        if self.instance.pk is None and not data.get("value"):
            self.add_error("value", "A new secret needs a value.")
        return data


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    """Names only: the list, the search and the change page never show a value."""

    form = SecretForm
    list_display = ["name", "repository", "environment", "updated_at"]
    list_filter = ["environment"]
    list_select_related = ["repository"]
    search_fields = ["name", "repository__name"]

    def get_readonly_fields(self, request, obj=None):
        # Renaming or moving a secret would silently re-scope a value: delete and re-add.
        return ["repository", "environment", "name"] if obj else []

    def save_model(self, request, obj, form, change):
        value = form.cleaned_data.get("value")
        if value:
            saved = set_secret(
                obj.repository,
                obj.name,
                value,
                environment=obj.environment,
                actor=actor_name(request.user),
            )
            obj.pk, obj.ciphertext = saved.pk, saved.ciphertext
