"""Run API shapes. Read functions render rows; write serializers only parse. No lease id
(or hash of one) ever appears in an answer."""

import re

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from apps.runs.choices import RunState, Trigger
from apps.runs.models import Job, JobAttempt, Run

# What `trigger_run` accepts: no option-like, whitespace or revision-syntax characters.
REF = re.compile(r"^(?!-)[^\s~^:?*\[\\\x00-\x1f\x7f]{1,255}$")


class TriggerRunSerializer(serializers.Serializer):
    repo = serializers.CharField(max_length=100)
    ref = serializers.RegexField(REF, max_length=255)
    commit_sha = serializers.RegexField(r"^[0-9a-f]{40}([0-9a-f]{24})?$", required=False)

    def validate_ref(self, value: str) -> str:
        if ".." in value:
            raise serializers.ValidationError("must not contain '..'")
        return value


class RerunSerializer(serializers.Serializer):
    failed_only = serializers.BooleanField(default=False)


class RunListQuery(serializers.Serializer):
    """The list's filters and page; unknown parameters are ignored, bad values are 400."""

    repo = serializers.CharField(max_length=100, required=False)
    ref = serializers.CharField(max_length=255, required=False)
    state = serializers.ChoiceField(choices=RunState.values, required=False)
    trigger = serializers.ChoiceField(choices=Trigger.values, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=10**9, default=0)


def iso(dt) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def run_dict(run: Run) -> dict:
    return {
        "id": str(run.pk),
        "repo": run.repository.name,
        "trigger": run.trigger,
        "ref": run.ref,
        "commit_sha": run.commit_sha,
        "base_sha": run.base_sha or None,
        "pr_number": run.pr_number,
        "is_fork": run.is_fork,
        "untrusted_reason": run.untrusted_reason or None,
        "state": run.state,
        "reason": run.reason or None,
        "plan_error": run.plan_error or None,
        "cancel_reason": run.cancel_reason or None,
        "attempt": run.attempt,
        "rerun_of": str(run.rerun_of_id) if run.rerun_of_id else None,
        "rerun_scope": run.rerun_scope or None,
        "started_by": run.started_by,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "reported_at": iso(run.reported_at),
        "report_status": run.report_status or None,
    }


def attempt_dict(a: JobAttempt) -> dict:
    try:
        lease = a.lease
    except ObjectDoesNotExist:
        lease = None
    return {
        "id": str(a.pk),
        "attempt_number": a.attempt_number,
        "state": a.state,
        "runner": lease.runner.name if lease else None,
        "exit_code": a.exit_code,
        "summary": a.summary or None,
        "failure_class": a.failure_class or None,
        "failure_confidence": a.failure_confidence,
        "cancel_reason": a.cancel_reason or None,
        "infra_retry": a.infra_retry,
        "queued_at": iso(a.queued_at),
        "leased_at": iso(a.leased_at),
        "started_at": iso(a.started_at),
        "finished_at": iso(a.finished_at),
        "log_size": a.log_size,
        "log_truncated": a.log_truncated,
        "image_digest": a.image_digest or None,
        "image_note": a.image_note or None,
    }


def job_dict(j: Job) -> dict:
    return {
        "id": str(j.pk),
        "name": j.name,
        "project": j.project,
        "ecosystem": j.ecosystem,
        "state": j.state,
        "needs": j.needs,
        "required": j.required,
        "allow_failure": j.allow_failure,
        "retries": j.retries,
        "reason_code": j.reason_code,
        "reason": j.reason,
        "triggered_by": j.triggered_by,
        "started_at": iso(j.started_at),
        "finished_at": iso(j.finished_at),
    }
