"""The run API: trigger, list, detail, cancel, rerun. Thin: parse, authorize, one action."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.artifacts import logs, storage
from apps.artifacts.models import Artifact
from apps.audit.actions import actor_name
from apps.runs import access
from apps.runs.actions import RunError, do_cancel_run, do_create_run, do_rerun_run
from apps.runs.api.serializers import (
    RerunSerializer,
    TriggerRunSerializer,
    attempt_dict,
    job_dict,
    run_dict,
)
from apps.runs.choices import AttemptState, RunState, Trigger
from apps.runs.models import Job, JobAttempt, Run
from lib import gitmirror
from lib.api_errors import ApiError

LOG_TAIL_BYTES = 4096


class RunPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


def _visible_run(request, run_id) -> Run:
    if not str(run_id).isdigit():
        raise ApiError("NOT_FOUND", "no such run")
    return get_object_or_404(
        access.visible_runs(request.user).select_related("repository"), pk=run_id
    )


def _require(request, run: Run, perm: str) -> None:
    if not access.can_act(request.user, run.repository, perm):
        raise ApiError(
            "FORBIDDEN", f"you may not {perm.replace('_run', '')} runs of this repository"
        )


class RunListView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    def get(self, request):
        qs = access.visible_runs(request.user).select_related("repository")
        for param, field in (
            ("repo", "repository__name"),
            ("ref", "ref"),
            ("state", "state"),
            ("trigger", "trigger"),
        ):
            value = request.query_params.get(param)
            if value:
                qs = qs.filter(**{field: value})
        page = RunPagination()
        rows = page.paginate_queryset(qs.order_by("-created_at", "-id"), request, view=self)
        return page.get_paginated_response([run_dict(r) for r in rows])

    def post(self, request):
        ser = TriggerRunSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        repo = (
            access.visible_repositories(request.user)
            .filter(name=ser.validated_data["repo"])
            .first()
        )
        if repo is None:
            raise ApiError("NOT_FOUND", "no such repository")
        if not access.can_act(request.user, repo, "trigger_run"):
            raise ApiError("FORBIDDEN", "you may not trigger runs of this repository")
        ref = ser.validated_data["ref"]
        sha = ser.validated_data.get("commit_sha") or resolve_ref(repo, ref)
        key = request.headers.get("Idempotency-Key")
        run, created = do_create_run(
            repo,
            trigger=Trigger.API,
            ref=ref,
            commit_sha=sha,
            event_key=f"api:{key[:200]}" if key else None,
            actor=actor_name(request.user),
        )
        return Response(
            run_dict(run), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


def resolve_ref(repo, ref: str) -> str:
    """The commit `ref` names now (syncs the mirror); a clear 400 if it names none."""
    from django.conf import settings

    from apps.vcs.auth import clone_token_for

    try:
        mirror = gitmirror.sync_mirror(
            settings.DELTACI_MIRROR_DIR, repo.name, repo.url, token=clone_token_for(repo)
        )
        return gitmirror.resolve(mirror, ref)
    except gitmirror.GitError as exc:
        raise ApiError("INVALID_REQUEST", f"cannot resolve {ref!r}: {exc}") from None


def run_detail(run: Run) -> dict:
    attempts = JobAttempt.objects.select_related("lease__runner").order_by("attempt_number")
    jobs = list(
        Job.objects.filter(run=run)
        .prefetch_related(Prefetch("attempts", queryset=attempts))
        .order_by("position", "id")
    )
    artifacts: dict[int, list[dict]] = {}
    for art in Artifact.objects.filter(attempt__run=run, recorded=True, deleted_at__isnull=True):
        artifacts.setdefault(art.attempt_id, []).append(
            {
                "id": str(art.pk),
                "name": art.name,
                "type": art.artifact_type,
                "size": art.size,
                "uri": storage.uri_for(art.key),
                "attempt_id": str(art.attempt_id),
            }
        )
    out = []
    for job in jobs:
        atts = list(job.attempts.all())
        explanations = [
            {
                "attempt_id": str(a.pk),
                "failure_class": a.failure_class,
                "confidence": a.failure_confidence,
                "detail": a.failure_detail,
                "exit_code": a.exit_code,
                "log_tail": logs.tail(a, LOG_TAIL_BYTES).decode("utf-8", "replace"),
            }
            for a in atts
            if a.state in (AttemptState.FAILED, AttemptState.TIMED_OUT, AttemptState.STALE)
            and a.failure_class
        ]
        out.append(
            {
                "job": job_dict(job),
                "attempts": [attempt_dict(a) for a in atts],
                "artifacts": [x for a in atts for x in artifacts.get(a.pk, [])],
                "failure_explanations": explanations,
            }
        )
    plan = run.plan or {}
    return {
        "run": run_dict(run),
        "jobs": out,
        "plan": {
            "source": plan.get("source"),
            "fingerprint": plan.get("fingerprint"),
            "base_sha": plan.get("base_sha"),
            "changed_paths": plan.get("changed_paths", []),
            "explain": plan.get("explain"),
            "fallback_reason": plan.get("fallback_reason"),
            "skipped_jobs": plan.get("skipped", []),
        },
    }


class RunDetailView(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    def get(self, request, run_id):
        return Response(run_detail(_visible_run(request, run_id)))


class RunCancelView(APIView):
    def post(self, request, run_id):
        run = _visible_run(request, run_id)
        _require(request, run, "cancel_run")
        if run.state in (RunState.SUCCESS, RunState.FAILED, RunState.TIMEOUT):
            raise ApiError("INVALID_STATE", f"run is already {run.state}")
        if run.state != RunState.CANCELED:
            do_cancel_run(run, actor=actor_name(request.user))
        run.refresh_from_db()
        return Response(run_dict(run), status=status.HTTP_202_ACCEPTED)


class RunRerunView(APIView):
    def post(self, request, run_id):
        run = _visible_run(request, run_id)
        _require(request, run, "rerun_run")
        ser = RerunSerializer(data=request.data if isinstance(request.data, dict) else {})
        ser.is_valid(raise_exception=True)
        try:
            new, created = do_rerun_run(
                run,
                failed_only=ser.validated_data["failed_only"],
                actor=actor_name(request.user),
                idempotency_key=(request.headers.get("Idempotency-Key") or "")[:200],
            )
        except RunError as exc:
            raise ApiError("INVALID_STATE", str(exc)) from None
        return Response(
            run_dict(new), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
