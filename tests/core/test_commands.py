"""The operator commands: script-friendly output (ids and tokens alone on the last
line) and clear errors for bad input."""

import io

import pytest
from django.core.management import CommandError, call_command

from apps.runners.models import RunnerRegistrationToken
from apps.runs.models import Repository, Run
from lib.tokens import hash_token
from tests.gitrepo import GitRepo


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def last(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_it_adds_a_repository_with_a_default_policy(db):
    out = run(
        "add_repo", "svc", "--url", "https://example.invalid/svc.git", "--default-branch", "trunk"
    )
    repo = Repository.objects.get(name="svc")
    assert last(out) == str(repo.pk) and repo.default_branch == "trunk" and repo.policy.pk


@pytest.mark.parametrize("name", ["bad name", "../x", "x" * 101, "", "a/b"])
def test_it_refuses_bad_repository_names(db, name):
    with pytest.raises(CommandError):
        run("add_repo", name, "--url", "/tmp/x")


def test_it_refuses_a_duplicate_repository_and_overlong_url(db):
    run("add_repo", "svc", "--url", "/tmp/x")
    with pytest.raises(CommandError, match="already exists"):
        run("add_repo", "svc", "--url", "/tmp/x")
    with pytest.raises(CommandError):
        run("add_repo", "other", "--url", "x" * 501)


def test_it_prints_a_registration_token_once_and_stores_its_hash(db):
    out = run("create_runner_token", "--environment", "staging", "--name", "ci-pool")
    token = last(out)
    row = RunnerRegistrationToken.objects.get()
    assert len(token) >= 43 and token not in out.splitlines()[0]
    assert row.token_hash == hash_token(token) and row.environment == "staging"
    assert token not in str(list(RunnerRegistrationToken.objects.values()))


def test_it_refuses_an_unknown_environment(db):
    with pytest.raises(CommandError):
        run("create_runner_token", "--environment", "moon")


def test_it_triggers_a_run_at_what_the_ref_names(
    db, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.DELTACI_MIRROR_DIR = tmp_path / "mirrors"
    src = GitRepo(tmp_path / "src")
    sha = src.commit({"ci.ai.yaml": "version: 1\njobs:\n  a:\n    image: x\n    steps: [echo]\n"})
    run("add_repo", "proj", "--url", str(src.path))
    with django_capture_on_commit_callbacks(execute=True):
        out = run("trigger_run", "proj", "--ref", "main")
    created = Run.objects.get(pk=int(last(out)))
    assert created.commit_sha == sha and created.ref == "refs/heads/main"
    assert created.state == "QUEUED"  # planned inline (eager Celery)


@pytest.mark.parametrize(
    "args,message",
    [
        (["nope", "--ref", "main"], "no repository"),
        (["proj", "--ref=--upload-pack=evil"], "invalid ref"),
        (["proj", "--ref", "a b"], "invalid ref"),
        (["proj", "--ref", "main", "--sha", "xyz"], "40-character"),
        (["proj", "--ref", "main", "--sha", "a" * 40, "--base", "nothex"], "40-character"),
        (["proj", "--ref", "no-such-branch"], "cannot resolve"),
    ],
)
def test_it_rejects_bad_trigger_input(db, tmp_path, settings, args, message):
    settings.DELTACI_MIRROR_DIR = tmp_path / "mirrors"
    src = GitRepo(tmp_path / "src")
    src.commit({"README": "x"})
    run("add_repo", "proj", "--url", str(src.path))
    with pytest.raises(CommandError, match=message):
        run("trigger_run", *args)


def test_it_supervises_once(db):
    out = run("supervise", "--once")
    assert "leases_expired=0" in out and "runs_advanced=0" in out
