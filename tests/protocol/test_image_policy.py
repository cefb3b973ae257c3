"""Images at lease time: invalid, forbidden or unpinned images fail before any runner
starts them; image_isolation decides which runners may take a job with an image; the
digest a container runner ran is recorded and shown, as is a host run's explanation."""

import pytest

from apps.policies.effective import policy_for
from apps.policies.images import reference_problem
from apps.policies.models import Policy
from apps.runs.actions import do_add_repository
from apps.runs.models import Job, JobAttempt
from tests.conftest import job_spec
from tests.protocol.proto import Proto

CONTAINER_RUNNER = ("os:linux", "executor:oci", "image:any")
HOST_RUNNER = ("os:linux", "executor:bwrap", "tool:python3")
PINNED = "registry.example.com/team/python@sha256:" + "ab" * 32
DIGEST = "sha256:" + "cd" * 32


@pytest.mark.parametrize(
    "image",
    [
        "python:3.12",
        "node",
        "docker.io/library/node:20-alpine",
        "localhost:5000/a/b_c/d-e:1.0",
        PINNED,
        "ghcr.io/o/r:v1@sha256:" + "0" * 64,
    ],
)
def test_valid_references_pass(image):
    assert reference_problem(image) is None


@pytest.mark.parametrize(
    "image",
    [
        "Not A Valid//Ref",
        "UPPER/case",
        "python:",
        "python::3",
        "../../etc/passwd",
        "-rm",
        "python:3.12 --privileged",
        "python:3.12\n",
        "python\x00:3",
        "a@sha256:xyz",
        "a:" + "t" * 200,
        "a/" * 300 + "b",
        "ünïcode:1",
    ],
)
def test_hostile_references_fail(image):
    assert reference_problem(image) is not None


def _refused(make_run, proto, image, **policy):
    if policy:
        Policy.objects.filter(repository=proto.runner_repo).update(**policy)
    make_run([job_spec("bad", image=image), job_spec("ok", image=PINNED)])
    granted = proto.take()
    assert granted["job_spec"]["name"] == "ok"
    return Job.objects.get(name="bad")


@pytest.fixture
def containers(runner_factory, repo):
    proto = Proto(runner_factory("containers", capabilities=CONTAINER_RUNNER))
    proto.runner_repo = repo
    return proto


def test_an_invalid_reference_fails_the_job_at_lease_time(make_run, containers):
    job = _refused(make_run, containers, "Not A Valid//Ref")
    assert job.state == "CANCELED" and job.reason_code == "IMAGE_INVALID"
    assert "not a valid image reference" in job.reason
    assert job.attempts.get().state == "CANCELED"


def test_an_unpinned_image_fails_when_digests_are_required(make_run, containers):
    job = _refused(make_run, containers, "python:3.12", require_digest=True)
    assert job.reason_code == "IMAGE_NOT_PINNED" and "sha256" in job.reason


def test_a_forbidden_image_fails_with_its_reason(make_run, containers):
    job = _refused(make_run, containers, "node:14", allowed_images=["registry.example.com/*"])
    assert job.reason_code == "IMAGE_NOT_ALLOWED"


def test_prod_repositories_default_to_required_isolation_and_digests(repo):
    prod = do_add_repository("payments", "/nonexistent/p.git", environment="prod", actor="system")
    assert (policy_for(prod).image_isolation, policy_for(prod).require_digest) == (
        "required",
        True,
    )
    assert (policy_for(repo).image_isolation, policy_for(repo).require_digest) == (
        "preferred",
        False,
    )
    Policy.objects.update_or_create(repository=prod, defaults={"require_digest": False})
    prod.refresh_from_db()
    assert policy_for(prod).require_digest is False


def test_required_isolation_leases_only_to_a_container_runner(make_run, runner_factory, repo):
    Policy.objects.filter(repository=repo).update(image_isolation="required")
    make_run([job_spec("in-image")])
    host = Proto(runner_factory("host", capabilities=HOST_RUNNER))
    assert host.lease().status_code == 204
    assert JobAttempt.objects.get().state == "QUEUED"
    container = Proto(runner_factory("box", capabilities=CONTAINER_RUNNER))
    granted = container.take()
    assert "image_note" not in granted and granted["policy"]["image_isolation"] == "required"


def test_preferred_isolation_runs_on_the_host_and_says_so(make_run, runner_factory, admin_client):
    run = make_run([job_spec("in-image", image="node:20")])
    host = Proto(runner_factory("host", capabilities=HOST_RUNNER))
    granted = host.take()
    assert "node:20 was not used" in granted["image_note"]
    assert "image_isolation=preferred" in granted["image_note"]
    attempt = JobAttempt.objects.get()
    assert attempt.image_note == granted["image_note"]
    page = admin_client.get(f"/runs/{run.pk}").content.decode()
    assert "node:20 was not used" in page


def test_isolation_off_says_nothing(make_run, runner_factory, repo):
    Policy.objects.filter(repository=repo).update(image_isolation="off")
    make_run([job_spec("in-image")])
    granted = Proto(runner_factory("host", capabilities=HOST_RUNNER)).take()
    assert "image_note" not in granted and JobAttempt.objects.get().image_note == ""


def test_the_digest_the_runner_ran_is_recorded_and_shown(make_run, containers, admin_client):
    run = make_run([job_spec("in-image", image="python:3.12")])
    granted = containers.start()
    image = {"ref": "python:3.12", "digest": DIGEST}
    assert containers.complete(granted["lease_id"], image=image).status_code == 200
    assert JobAttempt.objects.get().image_digest == DIGEST
    assert DIGEST in admin_client.get(f"/runs/{run.pk}").content.decode()
    detail = admin_client.get(f"/api/v1/runs/{run.pk}").json()
    assert detail["jobs"][0]["attempts"][0]["image_digest"] == DIGEST


@pytest.mark.parametrize(
    "image",
    [
        {"digest": "sha256:XYZ"},
        {"digest": "sha256:" + "a" * 10_000},
        {"ref": "x" * 600, "digest": DIGEST},
        {"ref": ["list"], "digest": DIGEST},
        {},
        "sha256:" + "a" * 64,
        [DIGEST],
    ],
)
def test_a_malformed_image_result_is_refused(make_run, containers, image):
    make_run([job_spec("in-image")])
    granted = containers.start()
    r = containers.complete(granted["lease_id"], image=image)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    assert JobAttempt.objects.get().image_digest == ""


@pytest.mark.parametrize(
    ("line", "klass", "why"),
    [
        (
            "out of memory: the container's memory limit (64Mi) was reached",
            "infrastructure",
            "out of memory",
        ),
        ("image unavailable (configuration): x is not on this runner", "user", "configuration"),
        ("image pull failed (configuration): ghcr.io/o/r:1", "user", "configuration"),
        ("image pull failed (infrastructure): ghcr.io/o/r:1", "infrastructure", "image registry"),
    ],
)
def test_the_container_executors_verdicts_classify(line, klass, why):
    from apps.runs.failures import classify

    tail = f"pulling\n[deltaci] {line}\n[deltaci] finished: FAILED\n".encode()
    found = classify(status="FAILED", exit_code=None, log_tail=tail, job_name="a:test")
    assert found.failure_class == klass and found.detail.startswith(why)
    # the same words printed by the job itself, not the runner, do not count
    forged = classify(status="FAILED", exit_code=1, log_tail=line.encode(), job_name="a:x")
    assert not forged.detail.startswith(why) or "out of memory" in why


def test_a_host_runner_reaches_past_many_jobs_it_may_not_take(make_run, runner_factory, repo):
    """More required-image jobs than a claim examines do not hide a job without an image
    from a host runner (they are filtered in the claim query, not one by one)."""
    Policy.objects.filter(repository=repo).update(image_isolation="required")
    make_run([job_spec(f"in-image-{n}") for n in range(105)])  # > CLAIM_ROUNDS x CLAIM_SCAN
    make_run([job_spec("no-image", image="")])
    host = Proto(runner_factory("host", capabilities=HOST_RUNNER))
    assert host.take()["job_spec"]["name"] == "no-image"
    assert host.lease().status_code == 204
    box = Proto(runner_factory("box", capabilities=CONTAINER_RUNNER))
    assert box.take()["job_spec"]["name"] == "in-image-0"
