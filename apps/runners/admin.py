"""Operators' screens for registration tokens, runners and leases. Every change goes
through an action (apps/runners/actions.py, apps/runners/operator.py) so it is audited;
tokens are shown once, when created, and only their hash prefix afterwards."""

from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.audit.actions import actor_name
from apps.runners.actions import (
    do_create_registration_token,
    do_revoke_lease,
    do_revoke_runner,
    do_set_runner_state,
)
from apps.runners.models import Lease, Runner, RunnerRegistrationToken
from apps.runners.operator import do_revoke_registration_token
from apps.runs.choices import LEASE_LIVE
from lib.admin import ReadOnlyAdmin, adopt_created, show_token_once

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # the stubs' model-with-annotations type

    class _LiveLease(TypedDict):
        """The runner list's annotations: its live lease, if any (see get_queryset)."""

        lease_prefix: str | None
        lease_job: str | None
        lease_run: int | None


MAX_LABELS = 50


class RegistrationTokenForm(forms.ModelForm):
    class Meta:
        model = RunnerRegistrationToken
        fields = ["name", "environment", "labels", "expires_at"]
        help_texts = {
            "labels": 'JSON list of capabilities every runner it registers gets, e.g. ["gpu"].',
            "expires_at": "After this, no runner can register with the token. Empty: never.",
        }

    def clean_labels(self) -> list[str]:
        value = self.cleaned_data.get("labels")
        if value in (None, ""):
            return []
        if (
            not isinstance(value, list)
            or len(value) > MAX_LABELS
            or not all(isinstance(v, str) and 0 < len(v) <= 100 and v.isprintable() for v in value)
        ):
            raise forms.ValidationError(
                f"Enter a JSON list of at most {MAX_LABELS} labels (strings of 1-100 characters)."
            )
        return sorted(set(value))

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and self.instance.pk is None and value <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return value


@admin.register(RunnerRegistrationToken)
class RegistrationTokenAdmin(admin.ModelAdmin):
    form = RegistrationTokenForm
    list_display = [
        "name",
        "environment",
        "token_prefix",
        "status",
        "expires_at",
        "created_by",
        "created_at",
    ]
    list_filter = ["environment"]
    search_fields = ["name", "token_prefix"]
    actions = ["revoke_tokens"]

    def get_readonly_fields(self, request, obj=None):
        base = ["token_prefix", "created_by", "created_at", "revoked_at"]
        return base + ["environment", "labels"] if obj else base

    @admin.display(description="status")
    def status(self, obj: RunnerRegistrationToken) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        row, token = do_create_registration_token(
            environment=obj.environment,
            name=obj.name,
            labels=obj.labels,
            expires_at=obj.expires_at,
            actor=actor_name(request.user),
        )
        adopt_created(obj, row)
        show_token_once(self, request, f"Registration token for {row.environment}", token)

    @admin.action(description="Revoke selected registration tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset) -> None:
        done = sum(
            do_revoke_registration_token(t, actor=actor_name(request.user)) for t in queryset
        )
        self.message_user(request, f"revoked {done} registration token(s)", messages.SUCCESS)


def _live_lease(field: str) -> Subquery:
    live = Lease.objects.filter(runner=OuterRef("pk"), state__in=LEASE_LIVE).order_by("-granted_at")
    return Subquery(live.values(field)[:1])


@admin.register(Runner)
class RunnerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "environment",
        "enabled",
        "draining",
        "revoked_at",
        "last_seen_at",
        "current_lease",
        "version",
    ]
    list_filter = ["environment", "enabled", "draining"]
    search_fields = ["name", "token_prefix"]
    readonly_fields = [
        "environment",
        "enabled",
        "draining",
        "revoked_at",
        "token_prefix",
        "capabilities",
        "version",
        "registration_token",
        "created_at",
        "last_seen_at",
        "current_lease",
    ]
    actions = ["enable", "disable", "drain", "undrain", "revoke"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                lease_prefix=_live_lease("lease_prefix"),
                lease_job=_live_lease("attempt__job__name"),
                lease_run=_live_lease("attempt__run_id"),
            )
        )

    def has_add_permission(self, request) -> bool:
        return False  # runners register themselves with a registration token

    @admin.display(description="current lease")
    def current_lease(self, obj: "WithAnnotations[Runner, _LiveLease]") -> str:
        prefix = getattr(obj, "lease_prefix", None)
        if not prefix:
            return "—"
        return f"{prefix} (run {obj.lease_run}, {obj.lease_job})"

    def _set(self, request, queryset, verb: str, **state) -> None:
        actor = actor_name(request.user)
        count = 0
        for runner in queryset:
            do_set_runner_state(runner, actor=actor, **state)
            count += 1
        self.message_user(request, f"{verb} {count} runner(s)", messages.SUCCESS)

    @admin.action(description="Enable selected runners", permissions=["change"])
    def enable(self, request, queryset) -> None:
        self._set(request, queryset, "enabled", enabled=True)

    @admin.action(description="Disable selected runners (no new jobs)", permissions=["change"])
    def disable(self, request, queryset) -> None:
        self._set(request, queryset, "disabled", enabled=False)

    @admin.action(
        description="Drain selected runners (finish the current job, take no new one)",
        permissions=["change"],
    )
    def drain(self, request, queryset) -> None:
        self._set(request, queryset, "draining", draining=True)

    @admin.action(description="Stop draining selected runners", permissions=["change"])
    def undrain(self, request, queryset) -> None:
        self._set(request, queryset, "stopped draining", draining=False)

    @admin.action(
        description="Revoke selected runners (token stops working, leases revoked)",
        permissions=["change"],
    )
    def revoke(self, request, queryset) -> None:
        actor = actor_name(request.user)
        count = 0
        for runner in queryset:
            do_revoke_runner(runner, actor=actor)
            count += 1
        self.message_user(request, f"revoked {count} runner(s)", messages.SUCCESS)


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    """Read-only: leases change only through the lease service; operators may revoke."""

    list_display = [
        "lease_prefix",
        "runner",
        "run_id",
        "job",
        "attempt_number",
        "state",
        "granted_at",
        "last_heartbeat_at",
        "expires_at",
    ]
    list_filter = ["state", "runner"]
    search_fields = ["lease_prefix", "runner__name", "attempt__job__name"]
    list_select_related = ["runner", "attempt", "attempt__job"]
    actions = ["revoke"]

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("runners.change_lease")

    @admin.display(description="run")
    def run_id(self, obj: Lease) -> int:
        return obj.attempt.run_id

    @admin.display(description="job")
    def job(self, obj: Lease) -> str:
        return obj.attempt.job.name

    @admin.display(description="attempt")
    def attempt_number(self, obj: Lease) -> int:
        return obj.attempt.attempt_number

    @admin.action(
        description="Revoke selected leases (attempt retried elsewhere)", permissions=["revoke"]
    )
    def revoke(self, request, queryset) -> None:
        actor = actor_name(request.user)
        done = sum(bool(do_revoke_lease(lease, actor=actor)) for lease in queryset)
        skipped = queryset.count() - done
        self.message_user(
            request,
            f"revoked {done} lease(s)" + (f"; {skipped} had already ended" if skipped else ""),
            messages.SUCCESS,
        )
