"""Operators' screens for repositories and runs. State columns are read-only here: they
belong to the state machines (apps/runs/states.py); admin actions call actions.py."""

from django.contrib import admin, messages
from django.urls import reverse

from apps.artifacts.retention import cleanup
from apps.audit.actions import actor_name, record
from apps.policies.audit import record_policy_edit
from apps.policies.forms import FIELDSETS, PolicyForm
from apps.policies.models import Policy
from apps.runs.cancelling import do_cancel_run
from apps.runs.models import Job, JobAttempt, Recipe, Repository, Run, StateEvent
from lib.admin import ReadOnlyAdmin


class PolicyInline(admin.StackedInline):
    model = Policy
    form = PolicyForm
    fieldsets = FIELDSETS
    can_delete = False
    extra = 1  # a repository added here gets its policy form too
    max_num = 1
    min_num = 0


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "url",
        "default_branch",
        "visibility",
        "environment",
        "github_full_name",
    ]
    search_fields = ["name", "url", "github_full_name"]
    list_filter = ["visibility", "environment"]
    filter_horizontal = ["members", "member_groups"]
    inlines = [PolicyInline]
    actions = ["retention_dry_run", "retention_cleanup"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            record("repository.add", actor=actor_name(request.user), repository=obj, url=obj.url)

    def save_formset(self, request, form, formset, change) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is Policy:
            Policy.objects.get_or_create(repository=form.instance)
            for policy_form in formset.forms:
                if policy_form.has_changed():
                    record_policy_edit(policy_form, form.instance, actor=actor_name(request.user))

    def _retention(self, request, queryset, *, dry_run: bool) -> None:
        report = cleanup(
            repositories=list(queryset), dry_run=dry_run, actor=actor_name(request.user)
        )
        for line in report.lines():
            self.message_user(request, line, messages.INFO if dry_run else messages.SUCCESS)

    @admin.action(description="Retention cleanup: dry run (counts only)", permissions=["view"])
    def retention_dry_run(self, request, queryset) -> None:
        self._retention(request, queryset, dry_run=True)

    @admin.action(
        description="Retention cleanup: delete expired logs and artifacts now",
        permissions=["change"],
    )
    def retention_cleanup(self, request, queryset) -> None:
        self._retention(request, queryset, dry_run=False)


_JOB_COLUMNS = ("name", "state", "required", "allow_failure", "reason_code", "reason")


class JobInline(admin.TabularInline):
    model = Job
    extra = 0
    can_delete = False
    fields = _JOB_COLUMNS
    readonly_fields = _JOB_COLUMNS
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "repository", "trigger", "ref", "short_sha", "state", "created_at"]
    list_filter = ["state", "trigger", "repository"]
    search_fields = ["ref", "commit_sha", "event_key"]
    list_select_related = ["repository"]
    inlines = [JobInline]
    actions = ["cancel_runs"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Run._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def view_on_site(self, obj: Run) -> str:
        return reverse("run-detail", args=[obj.pk])

    @admin.display(description="commit")
    def short_sha(self, obj: Run) -> str:
        return obj.commit_sha[:12]

    @admin.action(description="Cancel selected runs", permissions=["change"])
    def cancel_runs(self, request, queryset):
        done = sum(do_cancel_run(run, actor=actor_name(request.user)).accepted for run in queryset)
        self.message_user(request, f"cancellation requested for {done} run(s)", messages.SUCCESS)


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "name", "state", "reason_code"]
    list_filter = ["state"]
    search_fields = ["name"]
    list_select_related = ["run", "run__repository"]


@admin.register(JobAttempt)
class JobAttemptAdmin(ReadOnlyAdmin):
    list_display = ["id", "job", "attempt_number", "state", "exit_code", "failure_class"]
    list_filter = ["state", "failure_class"]
    list_select_related = ["job"]


@admin.register(StateEvent)
class StateEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "run",
        "kind",
        "object_id",
        "from_state",
        "to_state",
        "reason",
        "actor",
    ]
    list_filter = ["kind", "to_state"]
    list_select_related = ["run", "run__repository"]


@admin.register(Recipe)
class RecipeAdmin(ReadOnlyAdmin):
    list_display = ["repository", "fingerprint", "created_at"]
    list_select_related = ["repository"]
