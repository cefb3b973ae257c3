"""The run API: trigger, list, detail, cancel, rerun — with token and session
authentication, run permissions, private repositories invisible to outsiders, and
bad input refused with the contract's error body."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.runs.actions import do_add_repository
from apps.runs.models import Run, StateEvent
from apps.runs.planning import do_plan_run
from tests.conftest import SHA, job_spec
from tests.gitrepo import GitRepo

RUNS = "/api/v1/runs"


@pytest.fixture
def public_repo(db):
    return do_add_repository("open", "/nonexistent/open.git", visibility="public", actor="system")


def trigger(client, **body):
    return client.post(
        RUNS, {"repo": "demo", "ref": "refs/heads/main", "commit_sha": SHA, **body}, format="json"
    )


def error_code(r) -> str:
    assert set(r.json()) >= {"error"}, r.content
    return r.json()["error"]["code"]


# --- trigger -------------------------------------------------------------------------


def test_a_member_triggers_a_run_with_a_drf_token(member, as_user):
    r = trigger(as_user(member))
    assert r.status_code == 201, r.content
    body = r.json()
    run = Run.objects.get()
    assert body["id"] == str(run.pk) and body["state"] == "CREATED" and body["trigger"] == "api"
    assert body["repo"] == "demo" and body["commit_sha"] == SHA and body["started_by"] == "user:mia"
    assert AuditEvent.objects.filter(action="run.create", run=run, actor="user:mia").exists()


def test_an_idempotency_key_returns_the_same_run(member, as_user):
    client = as_user(member)
    first = client.post(
        RUNS,
        {"repo": "demo", "ref": "main", "commit_sha": SHA},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    again = client.post(
        RUNS,
        {"repo": "demo", "ref": "main", "commit_sha": SHA},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    other = client.post(
        RUNS,
        {"repo": "demo", "ref": "main", "commit_sha": SHA},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k2",
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert first.json()["ref"] == "refs/heads/main"
    assert Run.objects.count() == 2


def test_a_ref_is_resolved_by_planning_not_in_the_request(
    member, as_user, repo, tmp_path, settings
):
    settings.DELTACI_MIRROR_DIR = tmp_path / "mirrors"
    git = GitRepo(tmp_path / "src")
    sha = git.commit({"README": "hi"})
    repo.url = str(git.path)
    repo.save()
    client = as_user(member)
    r = client.post(RUNS, {"repo": "demo", "ref": "main"}, format="json")
    assert r.status_code == 201 and r.json()["commit_sha"] == ""
    assert not (tmp_path / "mirrors").exists(), "no git work inside the request"
    do_plan_run(int(r.json()["id"]))
    assert Run.objects.get(pk=r.json()["id"]).commit_sha == sha
    r = client.post(RUNS, {"repo": "demo", "ref": "no-such-branch"}, format="json")
    assert r.status_code == 201
    do_plan_run(int(r.json()["id"]))
    failed = Run.objects.get(pk=r.json()["id"])
    assert failed.state == "FAILED" and "no-such-branch" in failed.plan_error


@pytest.mark.parametrize(
    "body",
    [
        {"ref": "main", "commit_sha": SHA},
        {"repo": "demo", "commit_sha": SHA},
        {"repo": "demo", "ref": "-x", "commit_sha": SHA},
        {"repo": "demo", "ref": "a b", "commit_sha": SHA},
        {"repo": "demo", "ref": "a..b", "commit_sha": SHA},
        {"repo": "demo", "ref": "main~1", "commit_sha": SHA},
        {"repo": "demo", "ref": "x" * 256, "commit_sha": SHA},
        {"repo": "demo", "ref": "main", "commit_sha": "abc"},
        {"repo": "demo", "ref": "main", "commit_sha": SHA.upper()},
        {"repo": ["demo"], "ref": "main", "commit_sha": SHA},
    ],
)
def test_a_bad_trigger_is_refused(member, as_user, body):
    r = as_user(member).post(RUNS, body, format="json")
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST"
    assert not Run.objects.exists()


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"demo"', b"null", b"[" * 50000])
def test_malformed_or_non_object_json_is_refused(member, as_user, raw):
    r = as_user(member).generic("POST", RUNS, raw, content_type="application/json")
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST"


def test_an_oversized_trigger_is_refused(member, as_user, settings):
    settings.DELTACI_MAX_BODY_BYTES = 1000
    r = trigger(as_user(member), pad="x" * 2000)
    assert r.status_code == 413 and error_code(r) == "PAYLOAD_TOO_LARGE"


def test_a_bad_idempotency_key_is_refused(member, as_user):
    r = as_user(member).post(
        RUNS,
        {"repo": "demo", "ref": "main", "commit_sha": SHA},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k" * 201,
    )
    assert r.status_code == 400


def test_triggering_needs_a_login_permission_and_access(repo, reader, outsider, as_user):
    anonymous = trigger(APIClient())
    assert anonymous.status_code == 401 and error_code(anonymous) == "UNAUTHORIZED"
    assert anonymous["WWW-Authenticate"] == "Token"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token nope")
    assert trigger(bad).status_code == 401
    no_perm = trigger(as_user(reader))
    assert no_perm.status_code == 403 and error_code(no_perm) == "FORBIDDEN"
    hidden = trigger(as_user(outsider))
    assert hidden.status_code == 404 and error_code(hidden) == "NOT_FOUND"
    assert trigger(as_user(reader), repo="nope").status_code == 404
    assert not Run.objects.exists()


def test_session_authentication_needs_csrf(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    r = client.post(
        RUNS, {"repo": "demo", "ref": "main", "commit_sha": SHA}, content_type="application/json"
    )
    assert r.status_code == 403
    client = Client()
    client.force_login(member)
    r = client.post(
        RUNS, {"repo": "demo", "ref": "main", "commit_sha": SHA}, content_type="application/json"
    )
    assert r.status_code == 201


# --- list ------------------------------------------------------------------------------


def test_the_list_shows_only_what_the_caller_may_read(
    make_run, public_repo, member, outsider, as_user
):
    private = make_run()
    public = make_run(repository=public_repo)
    ids = lambda r: [x["id"] for x in r.json()["results"]]  # noqa: E731
    assert ids(APIClient().get(RUNS)) == [str(public.pk)]
    assert ids(as_user(outsider).get(RUNS)) == [str(public.pk)]
    assert ids(as_user(member).get(RUNS)) == [str(public.pk), str(private.pk)]


def test_the_list_filters_and_pages(make_run, operator, as_user):
    for i in range(5):
        make_run(ref=f"refs/heads/b{i % 2}")
    Run.objects.filter(pk=Run.objects.order_by("id").first().pk).update(state="FAILED")
    client = as_user(operator)
    assert client.get(RUNS, {"ref": "refs/heads/b0"}).json()["count"] == 3
    assert client.get(RUNS, {"state": "FAILED"}).json()["count"] == 1
    assert client.get(RUNS, {"repo": "demo", "trigger": "manual"}).json()["count"] == 5
    assert client.get(RUNS, {"repo": "other"}).json()["count"] == 0
    page = client.get(RUNS, {"limit": 2, "offset": 1}).json()
    assert page["count"] == 5 and len(page["results"]) == 2
    assert "offset=3" in page["next"] and page["previous"]


@pytest.mark.parametrize(
    "params",
    [
        {"state": "DONE"},
        {"trigger": "cron"},
        {"limit": 0},
        {"limit": 201},
        {"limit": "x"},
        {"offset": -1},
    ],
)
def test_bad_list_parameters_are_refused(db, params):
    r = APIClient().get(RUNS, params)
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST"


def test_the_list_costs_a_fixed_number_of_queries(
    make_run, operator, as_user, django_assert_max_num_queries
):
    client = as_user(operator)
    make_run()
    with django_assert_max_num_queries(8):
        client.get(RUNS)
    for _ in range(10):
        make_run()
    with django_assert_max_num_queries(8):
        assert len(client.get(RUNS).json()["results"]) == 11


# --- detail ------------------------------------------------------------------------------


def test_the_detail_has_the_run_its_jobs_and_its_plan(make_run, member, as_user, runner):
    from tests.protocol.proto import Proto

    run = make_run([job_spec("build"), job_spec("test", needs=["build"])])
    Run.objects.filter(pk=run.pk).update(
        plan={
            "source": "config",
            "fingerprint": "sha256:abc",
            "explain": "why",
            "skipped": [{"name": "web:test", "reason_code": "NOT_AFFECTED", "reason": "no change"}],
            "jobs": [],
        }
    )
    proto = Proto(runner)
    g = proto.start()
    proto.complete(g["lease_id"], "FAILED", 127)
    r = as_user(member).get(f"{RUNS}/{run.pk}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"run", "jobs", "plan"}
    assert body["run"]["id"] == str(run.pk) and body["run"]["state"] == "FAILED"
    assert {"id", "repo", "ref", "commit_sha", "state"} <= set(body["run"])
    assert body["plan"]["source"] == "config" and body["plan"]["fingerprint"] == "sha256:abc"
    assert (
        body["plan"]["explain"] == "why" and body["plan"]["skipped_jobs"][0]["name"] == "web:test"
    )
    build, test = body["jobs"]
    assert set(build) == {"job", "attempts", "artifacts", "failure_explanations"}
    assert build["job"]["name"] == "build" and build["job"]["state"] == "FAILED"
    assert build["attempts"][0]["runner"] == "r1" and build["attempts"][0]["exit_code"] == 127
    explanation = build["failure_explanations"][0]
    assert explanation["failure_class"] == "tooling" and explanation["confidence"] > 0
    assert test["job"]["state"] == "SKIPPED" and test["job"]["reason_code"] == "NEED_FAILED"
    assert g["lease_id"] not in r.content.decode()
    assert "lease_id" not in r.content.decode()


def test_a_private_run_is_invisible_to_outsiders(make_run, outsider, reader, as_user):
    run = make_run()
    for client in (APIClient(), as_user(outsider)):
        r = client.get(f"{RUNS}/{run.pk}")
        assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    assert as_user(reader).get(f"{RUNS}/{run.pk}").status_code == 200


@pytest.mark.parametrize("run_id", ["abc", "0", "99999", "9" * 30, "1.0", "-1"])
def test_an_unknown_run_is_404(db, operator, as_user, run_id):
    r = as_user(operator).get(f"{RUNS}/{run_id}")
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"


def test_the_detail_costs_a_fixed_number_of_queries(
    make_run, operator, as_user, django_assert_max_num_queries
):
    client = as_user(operator)
    small = make_run([job_spec("a")])
    big = make_run([job_spec(f"j{i}") for i in range(30)])
    with django_assert_max_num_queries(10):
        client.get(f"{RUNS}/{small.pk}")
    with django_assert_max_num_queries(10):
        assert len(client.get(f"{RUNS}/{big.pk}").json()["jobs"]) == 30


# --- cancel ------------------------------------------------------------------------------


def test_a_member_cancels_a_run_twice_with_one_effect(make_run, member, as_user):
    run = make_run([job_spec("a")])
    client = as_user(member)
    r = client.post(f"{RUNS}/{run.pk}/cancel")
    assert r.status_code == 202 and r.json()["state"] == "CANCELED"
    assert r.json()["cancel_reason"] == "RUN_CANCELED"
    events = StateEvent.objects.count()
    again = client.post(f"{RUNS}/{run.pk}/cancel")
    assert again.status_code == 202 and again.json()["state"] == "CANCELED"
    assert StateEvent.objects.count() == events
    assert AuditEvent.objects.filter(action="run.cancel", actor="user:mia").count() == 1


def test_cancelling_a_leased_run_is_two_phase(make_run, member, as_user, runner):
    from tests.protocol.proto import Proto

    run = make_run([job_spec("a")])
    proto = Proto(runner)
    g = proto.start()
    r = as_user(member).post(f"{RUNS}/{run.pk}/cancel")
    assert r.status_code == 202 and r.json()["state"] == "CANCEL_REQUESTED"
    assert as_user(member).post(f"{RUNS}/{run.pk}/cancel").json()["state"] == "CANCEL_REQUESTED"
    assert proto.cancel_ack(g["lease_id"]).status_code == 200
    assert as_user(member).get(f"{RUNS}/{run.pk}").json()["run"]["state"] == "CANCELED"


def test_a_finished_run_cannot_be_cancelled(make_run, member, as_user):
    run = make_run([])
    assert run.state == "SUCCESS"
    r = as_user(member).post(f"{RUNS}/{run.pk}/cancel")
    assert r.status_code == 409 and error_code(r) == "INVALID_STATE"


def test_cancelling_needs_permission_and_access(make_run, reader, outsider, as_user):
    run = make_run()
    assert APIClient().post(f"{RUNS}/{run.pk}/cancel").status_code == 401
    assert as_user(reader).post(f"{RUNS}/{run.pk}/cancel").status_code == 403
    assert as_user(outsider).post(f"{RUNS}/{run.pk}/cancel").status_code == 404
    assert Run.objects.get(pk=run.pk).state == "QUEUED"


# --- rerun -------------------------------------------------------------------------------


def failed_run(make_run, runner):
    from tests.protocol.proto import Proto

    run = make_run([job_spec("a"), job_spec("b")])
    proto = Proto(runner)
    for status in ("FAILED", "SUCCEEDED"):
        g = proto.start()
        proto.complete(g["lease_id"], status, 1 if status == "FAILED" else 0)
    run.refresh_from_db()
    assert run.state == "FAILED"
    return run


def test_a_member_reruns_a_failed_run(make_run, member, as_user, runner):
    run = failed_run(make_run, runner)
    r = as_user(member).post(f"{RUNS}/{run.pk}/rerun", {}, format="json")
    assert r.status_code == 201
    body = r.json()
    assert body["rerun_of"] == str(run.pk) and body["attempt"] == 2 and body["rerun_scope"] == "all"
    assert body["trigger"] == "rerun" and body["commit_sha"] == run.commit_sha
    assert AuditEvent.objects.filter(action="run.rerun", actor="user:mia").exists()


def test_a_failed_only_rerun_with_an_idempotency_key(make_run, member, as_user, runner):
    run = failed_run(make_run, runner)
    client = as_user(member)
    url = f"{RUNS}/{run.pk}/rerun"
    first = client.post(url, {"failed_only": True}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    again = client.post(url, {"failed_only": True}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and first.json()["rerun_scope"] == "failed"
    assert Run.objects.filter(rerun_of=run).count() == 1
    no_key = client.post(url, {"failed_only": True}, format="json")
    assert no_key.status_code == 201 and no_key.json()["id"] != first.json()["id"]


def test_only_a_finished_run_can_be_rerun(make_run, member, as_user):
    run = make_run()
    r = as_user(member).post(f"{RUNS}/{run.pk}/rerun", {}, format="json")
    assert r.status_code == 409 and error_code(r) == "INVALID_STATE"
    done = make_run([])
    r = as_user(member).post(f"{RUNS}/{done.pk}/rerun", {"failed_only": True}, format="json")
    assert r.status_code == 409 and "no failed job" in r.json()["error"]["message"]


@pytest.mark.parametrize("body", [[], "x", {"failed_only": "maybe"}])
def test_a_bad_rerun_body_is_refused(make_run, member, as_user, runner, body):
    run = failed_run(make_run, runner)
    r = as_user(member).post(f"{RUNS}/{run.pk}/rerun", body, format="json")
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST"
    assert not Run.objects.filter(rerun_of=run).exists()


def test_rerunning_needs_permission_and_access(make_run, reader, outsider, as_user, runner):
    run = failed_run(make_run, runner)
    assert APIClient().post(f"{RUNS}/{run.pk}/rerun").status_code == 401
    assert as_user(reader).post(f"{RUNS}/{run.pk}/rerun").status_code == 403
    assert as_user(outsider).post(f"{RUNS}/{run.pk}/rerun").status_code == 404
    assert not Run.objects.filter(rerun_of=run).exists()


def test_a_staff_operator_may_act_everywhere(make_run, as_user):
    operator = User.objects.create_user("op", is_staff=True, is_superuser=True)
    run = make_run()
    assert as_user(operator).post(f"{RUNS}/{run.pk}/cancel").status_code == 202


def _fail_every_attempt(run, log: bytes) -> None:
    from apps.artifacts.models import LogChunk
    from apps.runs.models import JobAttempt

    attempts = JobAttempt.objects.filter(run=run)
    attempts.update(state="FAILED", failure_class="user", exit_code=2, log_size=len(log))
    LogChunk.objects.bulk_create(LogChunk(attempt=a, start=0, data=log) for a in attempts)


def test_the_detail_shows_the_failing_jobs_log_tail(make_run, operator, as_user):
    run = make_run([job_spec("a")])
    _fail_every_attempt(run, b"compiling\n" + b"x" * 9000 + b"\nerror: it broke\n")
    body = as_user(operator).get(f"{RUNS}/{run.pk}").json()
    (explanation,) = body["jobs"][0]["failure_explanations"]
    assert explanation["exit_code"] == 2 and explanation["log_tail"].endswith("error: it broke\n")
    assert len(explanation["log_tail"]) <= 4096 and "compiling" not in explanation["log_tail"]


def test_log_tails_keep_the_detail_bounded(
    make_run, operator, as_user, django_assert_max_num_queries
):
    client = as_user(operator)
    few = make_run([job_spec(f"f{i}") for i in range(12)])
    many = make_run([job_spec(f"m{i}") for i in range(40)])
    for run in (few, many):
        _fail_every_attempt(run, b"boom\n")
    client.get(RUNS)  # the token's first use records its last use (once a minute)
    with django_assert_max_num_queries(30) as few_queries:
        client.get(f"{RUNS}/{few.pk}")
    with django_assert_max_num_queries(30) as many_queries:
        jobs = client.get(f"{RUNS}/{many.pk}").json()["jobs"]
    assert len(few_queries.captured_queries) == len(many_queries.captured_queries)
    tails = [e for j in jobs for e in j["failure_explanations"] if "log_tail" in e]
    assert len(tails) == 10 and all(t["log_tail"] == "boom\n" for t in tails)
