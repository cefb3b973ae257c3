"""Who sees what. Public repositories are readable by anyone; private ones only by staff
and by members (users or groups granted access in admin). Everything else answers 404 —
never 403 — so a private repository's existence does not leak. Writes need the
permission and a CSRF token."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from apps.artifacts.models import Artifact
from apps.runs.actions import do_add_repository
from tests.conftest import job_spec
from tests.pages.factory import JUNIT_FAIL, run_attempt


@pytest.fixture
def private_run(repo, make_run, runner, artifact_store):
    """A finished, failed run of the private repository `demo`, with a log, a JUnit
    report and a file artifact."""
    run = make_run([job_spec("secret-job")], ref="refs/heads/private-branch")
    g = run_attempt(
        runner,
        status="FAILED",
        exit_code=1,
        log=b"private log line\n",
        junit=JUNIT_FAIL,
        files={"secret.txt": b"private artifact"},
    )
    run.refresh_from_db()
    run.attempt_id = int(g["attempt_id"])
    run.artifact_ids = list(
        Artifact.objects.filter(attempt_id=run.attempt_id).values_list("pk", flat=True)
    )
    assert len(run.artifact_ids) == 3  # log, junit, file
    return run


def private_urls(run) -> list[str]:
    base = f"/runs/{run.pk}"
    log = f"{base}/attempts/{run.attempt_id}/log"
    return [
        base,
        f"{base}/live",
        log,
        f"{log}/tail?offset=0",
        f"{log}/lines?from=1&to=2",
        f"{log}/raw",
        *(f"/artifacts/{pk}/download" for pk in run.artifact_ids),
    ]


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_it_hides_every_trace_of_a_private_repository(private_run, clients, who):
    c = clients[who]
    for url in private_urls(private_run):
        r = c.get(url)
        assert r.status_code == 404, url
        assert b"private" not in r.content, url
    for url in ("/", "/runs", "/runs?repo=demo", "/runs?ref=refs/heads/private-branch"):
        r = c.get(url)
        assert r.status_code == 200
        assert f'href="/runs/{private_run.pk}"'.encode() not in r.content, url
        assert b"secret-job" not in r.content
    for url in ("/", "/runs", "/runs?repo=demo"):
        main = c.get(url).content.split(b"<main>", 1)[1]  # the header echoes the login ?next=
        assert b"demo" not in main, url
    for action in ("cancel", "rerun"):
        assert c.post(f"/runs/{private_run.pk}/{action}").status_code == 404


@pytest.mark.parametrize("who", ["operator", "member"])
def test_it_shows_a_private_repository_to_staff_and_members(private_run, clients, who):
    c = clients[who]
    for url in private_urls(private_run):
        assert c.get(url).status_code == 200, url
    assert b"demo" in c.get("/").content
    assert f'href="/runs/{private_run.pk}"'.encode() in c.get("/runs").content


def test_it_grants_access_through_a_group(private_run, db):
    group = Group.objects.create(name="team")
    private_run.repository.member_groups.add(group)
    user = User.objects.create_user("gil")
    c = Client()
    c.force_login(user)
    assert c.get(f"/runs/{private_run.pk}").status_code == 404
    user.groups.add(group)
    assert c.get(f"/runs/{private_run.pk}").status_code == 200


def test_it_lets_anyone_read_a_public_repository(private_run, clients):
    repo = private_run.repository
    repo.visibility = "public"
    repo.save()
    for url in private_urls(private_run):
        assert clients["anonymous"].get(url).status_code == 200, url


def test_it_keeps_members_of_one_repository_out_of_another(private_run, member, clients):
    other = do_add_repository("other", "/nonexistent/other.git", actor="system")
    assert not other.members.filter(pk=member.pk).exists()
    assert b"other" not in clients["member"].get("/").content


def test_it_shows_write_buttons_only_to_users_allowed_to_act(private_run, clients, member):
    page = f"/runs/{private_run.pk}"
    assert b"Rerun all jobs" in clients["member"].get(page).content
    assert b"Rerun failed jobs" in clients["operator"].get(page).content
    private_run.repository.visibility = "public"
    private_run.repository.save()
    assert b"Rerun" not in clients["anonymous"].get(page).content
    reader = Client()
    reader.force_login(User.objects.create_user("rita"))
    assert reader.get(page).status_code == 200
    assert b"Rerun" not in reader.get(page).content  # may read, holds no permission


def test_it_refuses_writes_without_the_permission(private_run, clients, member):
    private_run.repository.visibility = "public"
    private_run.repository.save()
    reader = Client()
    reader.force_login(User.objects.create_user("rita"))
    for c in (clients["anonymous"], reader):
        r = c.post(f"/runs/{private_run.pk}/rerun", {"scope": "all"})
        assert r.status_code == 403
        r = c.post(f"/runs/{private_run.pk}/cancel")
        assert r.status_code == 403
    member.user_permissions.clear()
    c = Client()
    c.force_login(member)
    assert c.post(f"/runs/{private_run.pk}/rerun", {"scope": "all"}).status_code == 403
    assert private_run.reruns.count() == 0


def test_it_requires_a_csrf_token_for_writes(private_run, member):
    c = Client(enforce_csrf_checks=True)
    c.force_login(member)
    r = c.post(f"/runs/{private_run.pk}/rerun", {"scope": "all"})
    assert r.status_code == 403
    assert private_run.reruns.count() == 0
    page = c.get(f"/runs/{private_run.pk}")
    token = page.context["csrf_token"]
    r = c.post(f"/runs/{private_run.pk}/rerun", {"scope": "all", "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    assert private_run.reruns.count() == 1


def test_it_logs_members_in_on_its_own_login_page(private_run, member, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast
    member.set_password("correct horse battery")
    member.save()
    c = Client()
    page = c.get("/login")
    assert page.status_code == 200
    r = c.post(
        "/login",
        {"username": "mia", "password": "correct horse battery", "next": f"/runs/{private_run.pk}"},
    )
    assert r.status_code == 302 and r["Location"] == f"/runs/{private_run.pk}"
    assert c.get(f"/runs/{private_run.pk}").status_code == 200
    r = c.post("/login", {"username": "mia", "password": "wrong", "next": "https://evil.test/"})
    assert r.status_code == 200  # refused, re-rendered
    r = c.post(
        "/login",
        {"username": "mia", "password": "correct horse battery", "next": "https://evil.test/"},
    )
    assert r.status_code == 302 and not r["Location"].startswith("https://evil")


@pytest.mark.parametrize("run_id", ["99999999", "9" * 25])
def test_it_404s_unknown_and_absurd_ids(private_run, clients, run_id):
    assert clients["operator"].get(f"/runs/{run_id}").status_code == 404
    assert clients["operator"].get(f"/artifacts/{run_id}/download").status_code == 404
    assert clients["operator"].get("/runs/abc").status_code == 404
