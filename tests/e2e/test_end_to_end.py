"""End to end with real processes: gunicorn, a Celery worker on a real broker, and
reference runners executing real jobs from a git repository in a temp dir."""

import json
import signal
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.artifacts.models import Artifact, LogChunk
from apps.policies.secrets import set_secret
from apps.runners.actions import do_create_registration_token
from apps.runners.supervisor import supervise_once
from apps.runs.actions import do_add_repository
from apps.runs.cancelling import do_cancel_run
from apps.runs.choices import RUN_TERMINAL, Visibility
from apps.runs.models import JobAttempt, Run
from tests.e2e.stack import Stack, wait_for
from tests.gitrepo import GitRepo
from tests.runner.oci import PLAIN_IMAGE, PYTHON_IMAGE, build_images, needs_oci

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_setup, django_db_blocker):
    s = Stack(tmp_path_factory.mktemp("stack")).start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _shared_store(settings, stack):
    """Work this process does (supervisor passes) writes where the servers read."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(stack.data_dir / "artifacts")},
        },
    }


@pytest.fixture
def token(db):
    return do_create_registration_token(name="e2e")[1]


def project(tmp_path, config: str, name: str = "proj"):
    src = GitRepo(tmp_path / name)
    sha = src.commit({"ci.ai.yaml": config, "README.md": "hi\n"})
    repo = do_add_repository(name, str(src.path), visibility=Visibility.PUBLIC, actor="system")
    repo.policy.egress_mode = "open"
    repo.policy.save()
    return repo, sha


def trigger(stack, repo) -> Run:
    run_id = int(stack.manage("trigger_run", repo.name, "--ref", "main").strip().splitlines()[-1])
    return Run.objects.get(pk=run_id)


def api(stack, path: str) -> dict:
    with urllib.request.urlopen(stack.url + path, timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def finished(run: Run):
    run.refresh_from_db()
    return run.state in RUN_TERMINAL


def attempt_running(run: Run, job: str, number: int = 1):
    return JobAttempt.objects.filter(
        job__run=run, job__name=job, attempt_number=number, state="RUNNING"
    ).first()


def log_text(attempt) -> str:
    from apps.artifacts import logs

    return logs.read(attempt).decode("utf-8", "replace")


def test_it_runs_real_jobs_and_explains_the_failure(stack, token, tmp_path):
    repo, _ = project(
        tmp_path,
        """version: 1
jobs:
  ok:
    image: python:3.11
    steps: ["echo all good"]
  boom:
    image: python:3.11
    steps: ["echo about to fail", "exit 3", "echo never"]
  after-boom:
    image: python:3.11
    needs: [boom]
    steps: ["echo unreachable"]
""",
    )
    runner = stack.runner("r1", token, "--executor", "shell")
    run = trigger(stack, repo)
    wait_for(lambda: finished(run), what="run to finish", stack=stack)
    assert run.state == "FAILED"
    detail = api(stack, f"/api/v1/runs/{run.pk}")
    jobs = {j["job"]["name"]: j for j in detail["jobs"]}
    assert jobs["ok"]["job"]["state"] == "SUCCEEDED"
    assert jobs["boom"]["job"]["state"] == "FAILED"
    assert jobs["boom"]["attempts"][0]["exit_code"] == 3
    explanation = jobs["boom"]["failure_explanations"][0]
    assert "about to fail" in explanation["log_tail"] and "never" not in explanation["log_tail"]
    assert explanation["failure_class"] == "user"
    assert jobs["after-boom"]["job"]["state"] == "SKIPPED"
    assert jobs["after-boom"]["job"]["reason_code"] == "NEED_FAILED"
    # Logs are finalised into the store by the worker after each attempt ends.
    wait_for(
        lambda: Artifact.objects.filter(attempt__run=run, artifact_type="log").count() == 2,
        what="log artifacts",
        stack=stack,
    )
    stack.kill(runner, signal.SIGTERM)


def test_it_cancels_a_running_job_and_keeps_its_partial_log(stack, token, tmp_path):
    repo, _ = project(
        tmp_path,
        """version: 1
jobs:
  slow:
    image: python:3.11
    steps: ["echo started; sleep 120"]
""",
    )
    runner = stack.runner("r2", token, "--executor", "shell")
    run = trigger(stack, repo)
    attempt = wait_for(lambda: attempt_running(run, "slow"), what="slow to run", stack=stack)
    wait_for(lambda: "started" in log_text(attempt), what="partial log", stack=stack)
    assert do_cancel_run(run, actor="tester")
    wait_for(lambda: finished(run), seconds=60, what="cancel to finish", stack=stack)
    assert run.state == "CANCELED"
    attempt.refresh_from_db()
    assert attempt.state == "CANCELED"
    assert attempt.lease.state == "CANCELED"  # acknowledged by the runner, not forced
    assert "started" in log_text(attempt)
    stack.kill(runner, signal.SIGTERM)


def test_it_retries_on_another_runner_when_one_is_killed(stack, token, tmp_path):
    marks = stack.scratch("marks")
    repo, _ = project(
        tmp_path,
        f"""version: 1
jobs:
  flaky-host:
    image: python:3.11
    steps:
      - >-
        if [ -e {marks}/first ]; then echo second attempt;
        else touch {marks}/first; echo first attempt; sleep 120; fi
""",
    )
    doomed = stack.runner("doomed", token, "--executor", "shell")
    run = trigger(stack, repo)
    first = wait_for(lambda: attempt_running(run, "flaky-host"), what="attempt 1", stack=stack)
    wait_for(lambda: "first attempt" in log_text(first), what="attempt 1 mid-job", stack=stack)
    stack.kill(doomed)  # SIGKILL to the runner and its job: no Complete, no CancelAck
    counts = supervise_once(timezone.now() + timedelta(seconds=600))
    assert counts["leases_expired"] == 1
    first.refresh_from_db()
    assert first.state == "STALE" and first.lease.state == "EXPIRED"
    assert first.failure_class == "infrastructure"
    survivor = stack.runner("survivor", token, "--executor", "shell")
    wait_for(lambda: finished(run), what="attempt 2", stack=stack)
    assert run.state == "SUCCESS"
    second = JobAttempt.objects.get(job__run=run, attempt_number=2)
    assert second.state == "SUCCEEDED" and second.lease.runner.name == "survivor"
    assert "second attempt" in log_text(second)
    stack.kill(survivor, signal.SIGTERM)


def test_it_ignores_the_result_of_a_runner_whose_lease_expired(stack, token, tmp_path):
    marks = stack.scratch("marks2")
    repo, _ = project(
        tmp_path,
        f"""version: 1
jobs:
  late:
    image: python:3.11
    steps:
      - >-
        if [ -e {marks}/first ]; then echo fresh;
        else touch {marks}/first; echo started; sleep 4; echo late result; fi
""",
        name="late",
    )
    slow = stack.runner("slow", token, "--executor", "shell", "--once")
    run = trigger(stack, repo)
    first = wait_for(lambda: attempt_running(run, "late"), what="attempt 1", stack=stack)
    wait_for(lambda: "started" in log_text(first), what="attempt 1 mid-job", stack=stack)
    supervise_once(timezone.now() + timedelta(seconds=600))  # its lease expires mid-job
    first.refresh_from_db()
    assert first.state == "STALE"
    slow.wait(timeout=60)  # it learns from a 409 StaleLease and stops
    assert "stale" in stack.log("runner-slow").lower()
    first.refresh_from_db()
    assert first.state == "STALE" and first.exit_code is None  # its result was ignored
    other = stack.runner("other", token, "--executor", "shell")
    wait_for(lambda: finished(run), what="attempt 2", stack=stack)
    assert run.state == "SUCCESS"
    stack.kill(other, signal.SIGTERM)


def test_it_gives_a_secret_to_the_job_but_never_stores_it(stack, token, tmp_path):
    secret = "s3cr3t-VALUE-42"
    repo, _ = project(
        tmp_path,
        """version: 1
jobs:
  uses-secret:
    image: python:3.11
    secrets: [API_TOKEN]
    steps: ['test "$API_TOKEN" = "s3cr3t-VALUE-42"', 'echo "token=$API_TOKEN"']
""",
        name="secretive",
    )
    set_secret(repo, "API_TOKEN", secret)
    runner = stack.runner("r5", token, "--executor", "shell")
    run = trigger(stack, repo)
    wait_for(lambda: finished(run), what="run", stack=stack)
    assert run.state == "SUCCESS"
    attempt = JobAttempt.objects.get(job__run=run)
    text = log_text(attempt)
    assert "token=***" in text and secret not in text
    stored = b"".join(bytes(c) for c in LogChunk.objects.values_list("data", flat=True))
    for path in (stack.data_dir / "artifacts").rglob("*"):
        if path.is_file():
            stored += path.read_bytes()
    assert secret.encode() not in stored
    stack.kill(runner, signal.SIGTERM)


@needs_oci()
@pytest.mark.oci
def test_each_job_runs_in_its_declared_image(stack, token, tmp_path):
    """One run, jobs in two images (each proves it by the marker only its image has) and
    one whose image lacks the tool it calls: that one fails as tooling."""
    build_images()
    repo, _ = project(
        tmp_path,
        f"""version: 1
jobs:
  in-python:
    image: {PYTHON_IMAGE}
    steps: ["cat /etc/deltaci-image", "python3 -c 'print(6 * 7)'"]
  in-plain:
    image: {PLAIN_IMAGE}
    steps: ["cat /etc/deltaci-image"]
  no-tool:
    image: {PLAIN_IMAGE}
    steps: ["python3 -c 'print(1)'"]
""",
        name="images",
    )
    repo.policy.image_isolation = "required"
    repo.policy.job_retries = 0
    repo.policy.save()
    runner = stack.runner("boxes", token, "--executor", "oci")
    run = trigger(stack, repo)
    wait_for(lambda: finished(run), what="run to finish", stack=stack, seconds=180)
    attempts = {a.job.name: a for a in JobAttempt.objects.filter(run=run).select_related("job")}
    assert attempts["in-python"].state == "SUCCEEDED" and attempts["in-plain"].state == "SUCCEEDED"
    python_log, plain_log = log_text(attempts["in-python"]), log_text(attempts["in-plain"])
    assert PYTHON_IMAGE in python_log and "42" in python_log and PLAIN_IMAGE not in python_log
    assert PLAIN_IMAGE in plain_log and PYTHON_IMAGE not in plain_log
    digests = {attempts[n].image_digest for n in ("in-python", "in-plain")}
    assert len(digests) == 2 and all(d.startswith("sha256:") for d in digests)
    assert attempts["no-tool"].state == "FAILED" and attempts["no-tool"].failure_class == "tooling"
    with urllib.request.urlopen(f"{stack.url}/runs/{run.pk}", timeout=10) as page:  # noqa: S310
        assert attempts["in-python"].image_digest in page.read().decode()
    stack.kill(runner, signal.SIGTERM)
