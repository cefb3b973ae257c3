"""Fault injection with real processes (issue 13, "Proof"): runners SIGKILLed mid-job,
the private Redis stopped and started during runs, the worker killed while planning,
and PostgreSQL backends terminated during runs. Time limits are crossed by calling the
supervisor with an injected clock, never by waiting for them."""

import fcntl
import json
import signal
import time
import urllib.request
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from apps.apitokens.actions import do_create_api_token
from apps.artifacts.models import Artifact
from apps.artifacts.tasks import reconcile_logs
from apps.audit.models import AuditEvent
from apps.runners.models import Lease
from apps.runners.supervisor import replan_lost_planning, supervise_once
from apps.runs.actions import do_create_run
from apps.runs.choices import ATTEMPT_TERMINAL, JOB_TERMINAL, RUN_TERMINAL
from apps.runs.models import JobAttempt, Run, StateEvent
from apps.runs.tasks import reconcile_planning
from lib import gitmirror
from tests.e2e.stack import terminate_backends, wait_for
from tests.e2e.test_end_to_end import project
from tests.faults.conftest import finished, later

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LEASE_ENDS = ("EXPIRED", "REVOKED", "COMPLETED", "CANCELED")


def assert_nothing_lost_or_finalised_twice(run: Run) -> None:
    """Every job ended, and every run, job, attempt and lease reached a final state
    at most once (one event into its terminal states)."""
    assert run.state in RUN_TERMINAL
    for kind, ends, ids in (
        ("run", RUN_TERMINAL, [run.pk]),
        ("job", JOB_TERMINAL, list(run.jobs.values_list("pk", flat=True))),
        ("attempt", ATTEMPT_TERMINAL, list(run.attempts.values_list("pk", flat=True))),
        ("lease", LEASE_ENDS, list(run.attempts.values_list("lease__pk", flat=True))),
    ):
        finals = StateEvent.objects.filter(kind=kind, object_id__in=ids, to_state__in=ends)
        counts = {}
        for oid in finals.values_list("object_id", flat=True):
            counts[oid] = counts.get(oid, 0) + 1
        assert all(n == 1 for n in counts.values()), (kind, counts)
        if kind == "job":
            assert set(counts) == set(ids), "a job never ended"


def test_runners_sigkilled_mid_job_lose_nothing(stack, token, tmp_path):
    marks = stack.scratch("killed")
    jobs = "".join(
        f"""  job{i}:
    image: python:3.11
    steps:
      - >-
        if [ -e {marks}/{i} ]; then echo retried;
        else touch {marks}/{i}; echo first; sleep 300; fi
"""
        for i in range(3)
    )
    repo, sha = project(tmp_path, "version: 1\njobs:\n" + jobs, "killed")
    doomed = [stack.runner(f"doomed{i}", token, "--executor", "shell") for i in range(3)]
    run, _ = do_create_run(
        repo, trigger="manual", ref="refs/heads/main", commit_sha=sha, actor="system"
    )
    wait_for(lambda: len(list(marks.iterdir())) == 3, what="three jobs mid-step", stack=stack)
    for proc in doomed:
        stack.kill(proc)  # SIGKILL: no Complete, no CancelAck, no more heartbeats
    last_beat = max(
        Lease.objects.filter(attempt__run=run).values_list("last_heartbeat_at", flat=True)
    )
    survivors = [stack.runner(f"survivor{i}", token, "--executor", "shell") for i in range(3)]
    ttl = settings.DELTACI_LEASE_TTL_SECONDS
    assert supervise_once(last_beat + timedelta(seconds=ttl + 1))["leases_expired"] == 3
    expired_at = time.monotonic()
    retries = JobAttempt.objects.filter(run=run, attempt_number=2, leased_at__isnull=False)
    wait_for(lambda: retries.count() == 3, seconds=30, what="retries leased", stack=stack)
    retry_seconds = time.monotonic() - expired_at
    wait_for(lambda: finished(run), what="run to finish", stack=stack)
    assert run.state == "SUCCESS"
    assert sorted(run.attempts.values_list("attempt_number", "state")) == [
        (1, "STALE"), (1, "STALE"), (1, "STALE"),
        (2, "SUCCEEDED"), (2, "SUCCEEDED"), (2, "SUCCEEDED"),
    ]  # fmt: skip
    assert_nothing_lost_or_finalised_twice(run)
    print(f"FAULTS: retries leased {retry_seconds:.1f}s after the TTL passed")
    assert retry_seconds <= 5, "retry within TTL + 5 s"
    for proc in survivors:
        stack.kill(proc, signal.SIGTERM)


def api_token() -> str:
    user = User.objects.create_superuser(f"root{time.monotonic_ns()}", password="x")
    return do_create_api_token(user, actor="test")[1]


def post_run(stack, key: str, repo: str, sha: str) -> int:
    body = json.dumps({"repo": repo, "ref": "main", "commit_sha": sha}).encode()
    req = urllib.request.Request(
        stack.url + "/api/v1/runs",
        data=body,
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
        assert resp.status == 201
        return int(json.loads(resp.read())["id"])


def test_redis_stopped_and_started_during_runs(stack, token, tmp_path, private_redis):
    repo, sha = project(
        tmp_path,
        name="outage",
        config="version: 1\njobs:\n"
        + "".join(
            f"  j{i}:\n    image: python:3.11\n    steps: ['echo start; sleep 3; echo done']\n"
            for i in range(2)
        ),
    )
    runners = [stack.runner(f"steady{i}", token, "--executor", "shell") for i in range(2)]
    key = api_token()
    first = Run.objects.get(pk=post_run(stack, key, repo.name, sha))
    wait_for(
        lambda: JobAttempt.objects.filter(run=first, state="RUNNING").count() == 2,
        what="jobs running",
        stack=stack,
    )
    private_redis.stop()  # the broker and the wake-ups are gone
    # Both answer success though their planning task cannot be sent.
    during_api = Run.objects.get(pk=post_run(stack, key, repo.name, sha))
    out = stack.manage("trigger_run", repo.name, "--ref", "main", "--sha", sha)
    during_cli = Run.objects.get(pk=int(out.strip().splitlines()[-1]))
    # The running jobs complete (Complete answers 200; log finalisation is not sent).
    wait_for(lambda: finished(first), seconds=60, what="run during the outage", stack=stack)
    assert first.state == "SUCCESS"
    assert during_api.state == during_cli.state == "CREATED"
    assert "Internal Server Error" not in stack.log("web")
    wait_for(
        lambda: stack.log("web").count("could not send task deltaci.finalize_log") == 2,
        seconds=10,
        what="unsent log finalisations logged",
        stack=stack,
    )
    assert "could not send task deltaci.plan_run" in stack.log("web")

    private_redis.start()  # same port: the worker reconnects
    with time_machine.travel(later(180), tick=True):  # past the reconcilers' quiet time
        assert reconcile_planning() >= 2
        assert reconcile_logs() >= 2
    for run in (during_api, during_cli):
        wait_for(lambda run=run: finished(run), seconds=60, what="reconciled run", stack=stack)
        assert run.state == "SUCCESS"
    wait_for(
        lambda: Artifact.objects.filter(attempt__run=first, name="log.txt").count() == 2,
        seconds=30,
        what="logs finalised after the outage",
        stack=stack,
    )
    for run in (first, during_api, during_cli):
        assert_nothing_lost_or_finalised_twice(run)
    for proc in runners:
        stack.kill(proc, signal.SIGTERM)


def test_the_worker_killed_during_planning(stack, token, tmp_path):
    repo, sha = project(
        tmp_path,
        name="replanned",
        config="version: 1\njobs:\n  a:\n    image: python:3.11\n    steps: ['true']\n",
    )
    lock = gitmirror.mirror_path(stack.data_dir / "mirrors", repo.name)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(str(lock) + ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # planning blocks in its git fetch, mid-task
        run, _ = do_create_run(
            repo, trigger="manual", ref="refs/heads/main", commit_sha=sha, actor="system"
        )
        wait_for(
            lambda: Run.objects.get(pk=run.pk).state == "PLANNING", what="planning", stack=stack
        )
        worker = next(p for p in stack.procs if "worker" in p.args and p.poll() is None)
        stack.kill(worker)  # SIGKILL while the task holds the run in PLANNING
    stack.worker("worker2")
    run.refresh_from_db()
    assert run.state == "PLANNING" and run.planning_attempts == 1
    assert replan_lost_planning(run.planning_lease_until) == 1  # its lease ran out
    runner = stack.runner("planner-test", token, "--executor", "shell")
    wait_for(lambda: finished(run), seconds=90, what="replanned run", stack=stack)
    assert run.state == "SUCCESS" and run.planning_attempts == 2, (run.reason, run.plan_error)
    assert run.jobs.count() == 1
    assert AuditEvent.objects.filter(action="run.planning_redispatch", run=run).count() == 1
    assert_nothing_lost_or_finalised_twice(run)
    stack.kill(runner, signal.SIGTERM)


def own_backend() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_postgres_connections_terminated_during_runs(stack, token, tmp_path):
    repo, sha = project(
        tmp_path,
        name="pgkill",
        config="version: 1\njobs:\n"
        + "".join(
            f"  p{i}:\n    image: python:3.11\n"
            "    steps: ['for i in 1 2 3 4 5; do echo $i; sleep 1; done']\n"
            for i in range(2)
        ),
    )
    runners = [stack.runner(f"pg{i}", token, "--executor", "shell") for i in range(2)]
    run, _ = do_create_run(
        repo, trigger="manual", ref="refs/heads/main", commit_sha=sha, actor="system"
    )
    wait_for(
        lambda: JobAttempt.objects.filter(run=run, state="RUNNING").count() == 2,
        what="jobs running",
        stack=stack,
    )
    errors_before = stack.log("web").count("Internal Server Error")
    ended = 0
    for _ in range(3):
        cut = timezone.now()
        ended += terminate_backends(keep=(own_backend(),))  # all but this test's own
        # Heartbeats (and the log chunks between them) meet the dead connections: wait
        # until every runner's lease was renewed through a new one, or its job ended.
        wait_for(
            lambda cut=cut: not Lease.objects.filter(attempt__run=run, ended_at__isnull=True)
            .exclude(last_heartbeat_at__gt=cut)
            .exists(),
            what="heartbeats after the terminations",
            stack=stack,
        )
    wait_for(lambda: finished(run), seconds=90, what="run after the terminations", stack=stack)
    assert ended > 0
    assert run.state == "SUCCESS"
    assert sorted(run.attempts.values_list("attempt_number", flat=True)) == [1, 1]  # no retry
    assert_nothing_lost_or_finalised_twice(run)
    errors = stack.log("web").count("Internal Server Error") - errors_before
    print(f"FAULTS: {ended} backends terminated, {errors} requests answered 500")
    for proc in runners:
        stack.kill(proc, signal.SIGTERM)
