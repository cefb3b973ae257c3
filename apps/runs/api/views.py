"""The run API: trigger, list, detail, cancel, rerun. Thin: parse, authorize, one action.

Reads follow apps/runs/access.py (a private repository is invisible — 404 — to whoever
may not read it); writes need the run permissions (trigger_run, cancel_run, rerun_run)
on a repository the user can read. API token authentication comes first so that an
anonymous write is a 401 naming the scheme; browser sessions work too (with CSRF).
"""

from django.conf import settings
from django.db.models import Prefetch
from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apitokens.auth import ApiTokenAuthentication
from apps.artifacts import logs, storage
from apps.artifacts.models import Artifact
from apps.audit.actions import actor_name
from apps.runs import access
from apps.runs.actions import RunError, do_create_run, do_rerun_run
from apps.runs.api import schema
from apps.runs.api.serializers import (
    RerunSerializer,
    RunListQuery,
    TriggerRunSerializer,
    attempt_dict,
    job_dict,
    run_dict,
)
from apps.runs.cancelling import do_cancel_run
from apps.runs.choices import ATTEMPT_FAILED, Trigger
from apps.runs.models import Job, JobAttempt, Run
from lib.api_errors import ApiError, StrictJSONParser, check_size


class RunApiView(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticatedOrReadOnly]
    parser_classes = [StrictJSONParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        check_size(request, settings.DELTACI_MAX_BODY_BYTES)

    def body(self, request) -> dict:
        """The JSON object sent (an empty body is an empty object)."""
        data = request.data
        if not isinstance(data, dict):
            raise ApiError("INVALID_REQUEST", "body must be a JSON object")
        return data


def _idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key") or ""
    if len(key) > 200 or any(ord(c) < 32 for c in key):
        raise ApiError(
            "INVALID_REQUEST", "Idempotency-Key must be at most 200 printable characters"
        )
    return key


def _visible_run(request, run_id: str) -> Run:
    run = None
    if run_id.isdigit() and len(run_id) <= 18:
        run = (
            access.visible_runs(request.user).select_related("repository").filter(pk=run_id).first()
        )
    if run is None:
        raise ApiError("NOT_FOUND", "no such run")
    return run


def _require(request, run: Run, perm: str) -> None:
    if not access.can_act(request.user, run.repository, perm):
        raise ApiError(
            "FORBIDDEN", f"you may not {perm.replace('_run', '')} runs of this repository"
        )


class RunPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class RunListView(RunApiView):
    @extend_schema(**schema.LIST)
    def get(self, request):
        query = RunListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        qs = access.visible_runs(request.user).select_related("repository")
        for param, field in (
            ("repo", "repository__name"),
            ("ref", "ref"),
            ("state", "state"),
            ("trigger", "trigger"),
        ):
            if q.get(param):
                qs = qs.filter(**{field: q[param]})
        page = RunPagination()
        rows = page.paginate_queryset(qs.order_by("-created_at", "-id"), request, view=self)
        assert rows is not None  # None only without a limit; RunPagination has a default
        return page.get_paginated_response([run_dict(r) for r in rows])

    @extend_schema(**schema.TRIGGER)
    def post(self, request):
        ser = TriggerRunSerializer(data=self.body(request))
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        key = _idempotency_key(request)
        repo = access.visible_repositories(request.user).filter(name=data["repo"]).first()
        if repo is None:
            raise ApiError("NOT_FOUND", "no such repository")
        if not access.can_act(request.user, repo, "trigger_run"):
            raise ApiError("FORBIDDEN", "you may not trigger runs of this repository")
        ref = data["ref"] if data["ref"].startswith("refs/") else f"refs/heads/{data['ref']}"
        run, created = do_create_run(
            repo,
            trigger=Trigger.API,
            ref=ref,
            commit_sha=data.get("commit_sha") or "",  # "": planning resolves the ref
            event_key=f"api:{key}" if key else None,
            actor=actor_name(request.user),
        )
        run.refresh_from_db()
        return Response(
            run_dict(run), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


def _artifact(art: Artifact) -> dict:
    try:
        download = reverse("artifact-download", args=[art.pk])
    except NoReverseMatch:
        download = None
    return {
        "id": str(art.pk),
        "name": art.name,
        "type": art.artifact_type,
        "size": art.size,
        "uri": storage.uri_for(art.key),
        "download_url": download,
        "attempt_id": str(art.attempt_id),
    }


# Log tails are read for the latest failed attempt of at most this many failed jobs, so
# the detail stays a bounded number of queries (and store reads) whatever the run's size.
LOG_TAIL_JOBS = 10
LOG_TAIL_BYTES = 4096


def _explanations(attempts: list[JobAttempt], tails: dict[int, str]) -> list[dict]:
    """The deterministic failure classification of each failed attempt, with the end of
    its log where `tails` has it."""
    out = []
    for a in attempts:
        if a.state not in ATTEMPT_FAILED or not a.failure_class:
            continue
        item = {
            "attempt_id": str(a.pk),
            "attempt_number": a.attempt_number,
            "failure_class": a.failure_class,
            "confidence": a.failure_confidence,
            "detail": a.failure_detail,
            "exit_code": a.exit_code,
        }
        if a.pk in tails:
            item["log_tail"] = tails[a.pk]
        out.append(item)
    return out


def _log_tails(jobs: list[Job]) -> dict[int, str]:
    latest_failed = []
    for job in jobs:
        failed = [a for a in job.attempts.all() if a.state in ATTEMPT_FAILED]
        if failed:
            latest_failed.append(failed[-1])
    return {
        a.pk: logs.tail(a, LOG_TAIL_BYTES).decode("utf-8", "replace")
        for a in latest_failed[:LOG_TAIL_JOBS]
    }


def run_detail(run: Run) -> dict:
    """The run, its jobs with their attempts, artifacts and failure explanations, and
    its plan — in a fixed number of queries, whatever the number of jobs."""
    attempts = JobAttempt.objects.select_related("lease__runner").order_by("attempt_number")
    jobs = list(
        Job.objects.filter(run=run)
        .prefetch_related(Prefetch("attempts", queryset=attempts))
        .order_by("position", "id")
    )
    artifacts: dict[int, list[dict]] = {}
    recorded = Artifact.objects.filter(attempt__run=run, recorded=True, deleted_at__isnull=True)
    for art in recorded.order_by("attempt_id", "name", "id"):
        artifacts.setdefault(art.attempt_id, []).append(_artifact(art))
    tails = _log_tails(jobs)
    out = []
    for job in jobs:
        atts = list(job.attempts.all())
        out.append(
            {
                "job": job_dict(job),
                "attempts": [attempt_dict(a) for a in atts],
                "artifacts": [x for a in atts for x in artifacts.get(a.pk, [])],
                "failure_explanations": _explanations(atts, tails),
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


class RunDetailView(RunApiView):
    @extend_schema(**schema.DETAIL)
    def get(self, request, run_id):
        return Response(run_detail(_visible_run(request, run_id)))


class RunCancelView(RunApiView):
    @extend_schema(**schema.CANCEL)
    def post(self, request, run_id):
        run = _visible_run(request, run_id)
        _require(request, run, "cancel_run")
        outcome = do_cancel_run(run, actor=actor_name(request.user))
        if not outcome.settled:
            raise ApiError("INVALID_STATE", f"run is already {outcome.state}")
        run.refresh_from_db()
        return Response(run_dict(run), status=status.HTTP_202_ACCEPTED)


class RunRerunView(RunApiView):
    @extend_schema(**schema.RERUN)
    def post(self, request, run_id):
        run = _visible_run(request, run_id)
        _require(request, run, "rerun_run")
        ser = RerunSerializer(data=self.body(request))
        ser.is_valid(raise_exception=True)
        key = _idempotency_key(request)
        try:
            new, created = do_rerun_run(
                run,
                failed_only=ser.validated_data["failed_only"],
                actor=actor_name(request.user),
                idempotency_key=key,
            )
        except RunError as exc:
            raise ApiError("INVALID_STATE", str(exc)) from None
        new.refresh_from_db()
        return Response(
            run_dict(new), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
