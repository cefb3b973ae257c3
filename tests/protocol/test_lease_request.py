"""LeaseRequest -> LeaseGranted / 204: capability matching, oldest run first,
environments, concurrency limits, policy at dispatch, and the LeaseGranted message."""

from datetime import timedelta

import pytest

from apps.audit.models import AuditEvent
from apps.policies.models import Policy
from apps.policies.secrets import set_secret
from apps.runners.actions import do_set_runner_state
from apps.runners.models import Lease
from apps.runs.actions import do_add_repository
from apps.runs.models import Job, JobAttempt, Run, StateEvent
from tests.conftest import job_spec
from tests.protocol.proto import Proto, snapshot


def test_it_answers_204_when_nothing_is_queued(proto):
    r = proto.lease()
    assert r.status_code == 204 and r.content == b""


def test_it_grants_the_full_lease_message(make_run, proto, settings):
    run = make_run([job_spec("unit", steps=["pip install -e .", "pytest"], env={"A": "1"})])
    g = proto.take()
    attempt = JobAttempt.objects.get()
    assert g["type"] == "LeaseGranted"
    assert (g["run_id"], g["job_id"], g["attempt_id"]) == (
        str(run.pk),
        str(attempt.job_id),
        str(attempt.pk),
    )
    assert g["attempt_number"] == 1 and len(g["lease_id"]) >= 43
    assert g["lease_ttl_seconds"] > g["heartbeat_interval_seconds"]
    assert g["ack_timeout_seconds"] == settings.DELTACI_ACK_TIMEOUT_SECONDS
    assert g["max_runtime_seconds"] == 3600
    assert g["source"] == {
        "repo_url": run.repository.url,
        "ref": "refs/heads/main",
        "commit_sha": run.commit_sha,
    }
    spec = g["job_spec"]
    assert spec["steps"] == ["pip install -e .", "pytest"] and spec["image"] == "python:3.12"
    assert spec["env"] == {"A": "1", "CI": "true"} and spec["workdir"] == "."
    assert g["policy"] == {"egress": {"mode": "none", "allow": []}, "image_isolation": "preferred"}
    assert g["secrets"] == {}
    attempt.refresh_from_db()
    run.refresh_from_db()
    assert attempt.state == "LEASED" and attempt.job.state == "RUNNING" and run.state == "RUNNING"
    lease = Lease.objects.get()
    assert lease.state == "GRANTED" and lease.runner_id == proto.runner.pk
    assert AuditEvent.objects.filter(action="lease.grant", target=lease.lease_prefix).exists()


def test_it_leases_the_oldest_run_first(make_run, proto, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    old = make_run([job_spec("a"), job_spec("b")])
    time_machine.shift(timedelta(minutes=1))
    new = make_run([job_spec("c")])
    got = [proto.take()["run_id"] for _ in range(3)]
    assert got == [str(old.pk), str(old.pk), str(new.pk)]


def test_it_matches_runs_on_against_the_runner_capabilities(make_run, runner_factory):
    make_run([job_spec("gpu", runs_on=["os:linux", "gpu:a100"]), job_spec("plain")])
    plain = Proto(runner_factory("plain", capabilities=["os:linux"]))
    gpu = Proto(runner_factory("gpu", capabilities=["os:linux", "gpu:a100"]))
    assert plain.take()["job_spec"]["name"] == "plain"
    assert plain.lease().status_code == 204
    assert gpu.take()["job_spec"]["name"] == "gpu"


def test_it_lets_a_request_narrow_but_never_widen_capabilities(make_run, runner_factory):
    make_run([job_spec("docker", runs_on=["tool:docker"])])
    r = Proto(runner_factory("r", capabilities=["os:linux", "tool:docker"]))
    assert r.lease(capabilities=["os:linux"]).status_code == 204
    liar = Proto(runner_factory("liar", capabilities=["os:linux"]))
    assert liar.lease(capabilities=["os:linux", "tool:docker"]).status_code == 204
    assert r.lease(capabilities=["os:linux", "tool:docker"]).status_code == 200


def test_it_looks_past_many_jobs_the_runner_cannot_take(make_run, proto):
    make_run([job_spec(f"gpu{i}", runs_on=["gpu"]) for i in range(60)] + [job_spec("cpu")])
    assert proto.take()["job_spec"]["name"] == "cpu"


def test_a_prod_runner_never_gets_a_dev_repositorys_job(make_run, runner_factory):
    make_run([job_spec("dev-job")])
    containers = ("os:linux", "executor:oci", "image:any")  # prod: images run isolated
    prod = Proto(runner_factory("prod", environment="prod", capabilities=containers))
    assert prod.lease().status_code == 204
    prod_repo = do_add_repository(
        "payments", "/nonexistent/p.git", environment="prod", actor="system"
    )
    pinned = "python@sha256:" + "a" * 64  # prod: images pinned by digest
    make_run([job_spec("prod-job", image=pinned)], repository=prod_repo)
    assert prod.take()["job_spec"]["name"] == "prod-job"
    assert prod.lease().status_code == 204
    dev = Proto(runner_factory("dev"))
    assert dev.take()["job_spec"]["name"] == "dev-job"


def test_it_refuses_a_draining_runner_only_for_lease_requests(make_run, proto):
    make_run([job_spec("a"), job_spec("b")])
    g = proto.take()
    do_set_runner_state(proto.runner, draining=True, actor="op")
    r = proto.lease()
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    assert proto.ack(g["lease_id"]).status_code == 200
    assert proto.heartbeat(g["lease_id"]).status_code == 200
    assert proto.complete(g["lease_id"]).status_code == 200


def test_it_refuses_a_disabled_runner_everything(make_run, proto):
    make_run()
    g = proto.take()
    do_set_runner_state(proto.runner, enabled=False, actor="op")
    before = snapshot()
    for r in (proto.lease(), proto.heartbeat(g["lease_id"]), proto.complete(g["lease_id"])):
        assert r.status_code == 403
        assert r.json()["error"] == {
            "code": "FORBIDDEN",
            "message": "runner is disabled",
            "details": {},
        }
    assert snapshot() == before


def test_it_holds_the_global_limit_of_live_leases(make_run, proto, settings):
    settings.DELTACI_MAX_CONCURRENT_LEASES = 2
    make_run([job_spec(n) for n in "abc"])
    g1, _ = proto.take(), proto.take()
    assert proto.lease().status_code == 204
    assert proto.complete(g1["lease_id"]).status_code == 200
    assert proto.take()["job_spec"]["name"] == "c"


def test_it_holds_the_repository_limit_of_concurrent_jobs(make_run, proto, repo, runner_factory):
    Policy.objects.filter(repository=repo).update(max_concurrent_jobs=1)
    other = do_add_repository("other", "/nonexistent/o.git", actor="system")
    make_run([job_spec("a"), job_spec("b")])
    make_run([job_spec("x")], repository=other)
    g = proto.take()
    assert g["job_spec"]["name"] == "a"
    assert proto.take()["job_spec"]["name"] == "x"  # the other repository is not held up
    assert proto.lease().status_code == 204
    assert proto.complete(g["lease_id"]).status_code == 200
    assert proto.take()["job_spec"]["name"] == "b"


def test_a_full_repository_never_holds_up_the_others(make_run, proto, repo):
    Policy.objects.filter(repository=repo).update(max_concurrent_jobs=1)
    other = do_add_repository("other", "/nonexistent/o.git", actor="system")
    make_run([job_spec(f"a{i}") for i in range(200)])
    make_run([job_spec("x")], repository=other)
    assert proto.take()["job_spec"]["name"] == "a0"
    assert proto.take()["job_spec"]["name"] == "x"  # behind 199 held-up attempts


def test_it_holds_a_runs_own_max_concurrency(make_run, proto):
    run = make_run([job_spec("a"), job_spec("b")])
    Run.objects.filter(pk=run.pk).update(plan={"jobs": [], "policies": {"max_concurrency": 1}})
    g = proto.take()
    assert proto.lease().status_code == 204
    assert proto.complete(g["lease_id"]).status_code == 200
    assert proto.take()["job_spec"]["name"] == "b"


def test_it_ends_a_job_whose_image_is_no_longer_allowed(make_run, proto, repo):
    run = make_run([job_spec("old", image="node:14"), job_spec("ok", image="python:3.12")])
    Policy.objects.filter(repository=repo).update(allowed_images=["python:*"])
    assert proto.take()["job_spec"]["name"] == "ok"
    job = Job.objects.get(name="old")
    assert job.state == "CANCELED" and job.reason_code == "IMAGE_NOT_ALLOWED"
    assert "node:14" in job.reason
    assert job.attempts.get().state == "CANCELED"
    ev = AuditEvent.objects.get(action="policy.violation")
    assert ev.details["image"] == "node:14" and ev.run_id == run.pk
    assert not Lease.objects.filter(attempt__job=job).exists()


def test_it_refuses_a_wait_beyond_twenty_seconds(proto):
    for wait in (21, -1, "soon"):
        r = proto.lease(wait_seconds=wait)
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"


def test_it_grants_at_most_one_lease_per_attempt_and_writes_events(make_run, proto, runner_factory):
    make_run()
    g = proto.take()
    other = Proto(runner_factory("r2"))
    assert other.lease().status_code == 204
    assert Lease.objects.count() == 1
    kinds = set(StateEvent.objects.values_list("kind", "to_state"))
    assert {("attempt", "LEASED"), ("job", "RUNNING"), ("run", "RUNNING")} <= kinds
    assert g["attempt_number"] == 1


def test_it_delivers_only_the_declared_secrets_and_none_to_forks(make_run, proto, repo):
    set_secret(repo, "PYPI_TOKEN", "s3cr3t-value")
    set_secret(repo, "OTHER", "nope")
    make_run([job_spec("pub", secrets=["PYPI_TOKEN"], caches=[{"type": "deps", "key": "pip:1"}])])
    g = proto.take()
    assert g["secrets"] == {"PYPI_TOKEN": "s3cr3t-value"}
    cache = g["job_spec"]["caches"][0]
    assert cache["key"] == "dev:pip:1" and cache["read_only"] is False
    ev = AuditEvent.objects.get(action="secret.read")
    assert ev.details["names"] == ["PYPI_TOKEN"] and "s3cr3t-value" not in str(ev.details)


def test_a_fork_run_gets_no_secrets_and_read_only_caches(make_run, proto, repo):
    set_secret(repo, "PYPI_TOKEN", "s3cr3t-value")
    make_run(
        [job_spec("pub", secrets=["PYPI_TOKEN"], caches=[{"type": "deps", "key": "pip:1"}])],
        is_fork=True,
    )
    g = proto.take()
    assert g["secrets"] == {}
    assert g["job_spec"]["caches"][0]["read_only"] is True


@pytest.mark.parametrize("timeout", [None, 0, "x"])
def test_it_falls_back_to_the_policy_job_timeout(make_run, proto, timeout, settings):
    settings.DELTACI_JOB_TIMEOUT_SECONDS = 1234
    make_run([job_spec("a", timeout_seconds=timeout)])
    assert proto.take()["max_runtime_seconds"] == 1234
