"""GitHub credentials: a GitHub App's RS256 JWT exchanged for installation tokens
(verified by the fake GitHub with the app's public key), cached until five minutes
before expiry; runners get only a narrowed, read-only, short-lived token."""

from datetime import timedelta

import jwt
import pytest
import time_machine
from django.utils import timezone

from apps.vcs import auth, github, tasks
from apps.vcs.models import RunnerCloneToken
from lib.gitmirror import GitError
from tests.conftest import job_spec
from tests.vcs.conftest import APP_ID, FULL_NAME, lease
from tests.vcs.fake_github import INSTALLATION_ID

INSTALL = rf"/repos/{FULL_NAME}/installation"
EXCHANGE = rf"/app/installations/{INSTALLATION_ID}/access_tokens"


def test_it_exchanges_a_signed_app_jwt_for_an_installation_token(github_app, gh_repo, app_key):
    token = auth.clone_token_for(gh_repo)
    assert token.startswith("ghs_fake") and token in github_app.issued
    (install,) = github_app.named("GET", INSTALL)
    (exchange,) = github_app.named("POST", EXCHANGE)
    for call in (install, exchange):
        claims = jwt.decode(call.auth[7:], app_key.public_key(), algorithms=["RS256"])
        assert claims["iss"] == APP_ID and 0 < claims["exp"] - claims["iat"] <= 660
        assert jwt.get_unverified_header(call.auth[7:])["alg"] == "RS256"
    assert exchange.body is None  # the control plane's token: the installation's scope


def test_it_caches_the_token_until_five_minutes_before_it_expires(github_app, gh_repo):
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        first = auth.clone_token_for(gh_repo)
    with time_machine.travel(now + timedelta(minutes=54), tick=False):
        assert auth.clone_token_for(gh_repo) == first
    assert len(github_app.named("POST", EXCHANGE)) == 1
    with time_machine.travel(now + timedelta(minutes=55, seconds=1), tick=False):
        second = auth.clone_token_for(gh_repo)
    assert second != first
    assert len(github_app.named("POST", EXCHANGE)) == 2
    assert len(github_app.named("GET", INSTALL)) == 1  # the installation id is kept


def test_it_refuses_a_jwt_signed_with_another_key(github_app, gh_repo, settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.GITHUB_APP_PRIVATE_KEY = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(GitError, match="could not get a GitHub token for .*401"):
        auth.clone_token_for(gh_repo)
    with pytest.raises(github.GitHubError):
        auth.credentials_for(gh_repo)
    assert auth.refresh_runner_clone_token(gh_repo) is False  # logged, tried again later
    assert auth.runner_clone_token(gh_repo) == ""  # the lease is still granted


def test_it_gives_runners_a_narrowed_read_only_token(github_app, gh_repo):
    plane = auth.clone_token_for(gh_repo)
    assert auth.refresh_runner_clone_token(gh_repo) is True
    token = auth.runner_clone_token(gh_repo)
    assert token and token != plane
    grant = github_app.issued[token]
    assert grant["permissions"] == {"contents": "read"}
    assert grant["repositories"] == ["Hello-World"]
    assert grant["expires_at"] - timezone.now() <= timedelta(hours=1)
    assert auth.refresh_runner_clone_token(gh_repo) is False  # stored, still fresh
    assert auth.runner_clone_token(gh_repo) == token
    assert token.encode() not in bytes(RunnerCloneToken.objects.get().ciphertext)  # encrypted
    # The fake GitHub enforces it: a runner token cannot write.
    with pytest.raises(github.GitHubError, match="401"):
        github.call("POST", f"/repos/{FULL_NAME}/check-runs", token=token, json={})


def test_it_never_hands_a_personal_token_to_runners(github_pat, gh_repo):
    assert auth.clone_token_for(gh_repo) == github_pat.pat  # the control plane's fetches
    assert auth.refresh_runner_clone_token(gh_repo) is False
    assert auth.runner_clone_token(gh_repo) == ""
    assert github_pat.calls == []


def test_it_needs_no_token_for_public_or_local_repositories(github_app, gh_repo, repo):
    gh_repo.visibility = "public"
    assert auth.refresh_runner_clone_token(gh_repo) is False
    assert auth.runner_clone_token(gh_repo) == ""
    assert auth.clone_token_for(repo) == "" and auth.runner_clone_token(repo) == ""
    assert github_app.calls == []


def test_it_has_no_credentials_when_github_is_not_configured(gh_repo):
    assert auth.mode() == ""
    assert auth.clone_token_for(gh_repo) == "" and auth.runner_clone_token(gh_repo) == ""
    assert auth.credentials_for(gh_repo) is None


def test_it_puts_the_stored_runner_token_in_lease_granted_without_calling_github(
    github_app, gh_repo, make_run, runner
):
    make_run([job_spec("build")], repository=gh_repo)
    assert tasks.refresh_runner_tokens() == 1  # the beat task: a private repo with a queued job
    calls = len(github_app.calls)
    granted = lease(runner)
    token = granted["source"]["clone_token"]
    assert github_app.issued[token]["permissions"] == {"contents": "read"}
    assert len(github_app.calls) == calls  # the web request read a row, nothing more


def test_it_renews_runner_tokens_before_they_expire_while_jobs_wait(github_app, gh_repo, make_run):
    now = timezone.now()
    make_run([job_spec("build")], repository=gh_repo)
    with time_machine.travel(now, tick=False):
        assert tasks.refresh_runner_tokens() == 1
        first = auth.runner_clone_token(gh_repo)
    with time_machine.travel(now + timedelta(minutes=39), tick=False):
        assert tasks.refresh_runner_tokens() == 0  # more than 20 minutes left
        assert auth.runner_clone_token(gh_repo) == first
    with time_machine.travel(now + timedelta(minutes=41), tick=False):
        assert tasks.refresh_runner_tokens() == 1
        assert auth.runner_clone_token(gh_repo) not in ("", first)


def test_it_mints_no_runner_token_for_repositories_without_waiting_jobs(github_app, gh_repo):
    assert tasks.refresh_runner_tokens() == 0
    assert github_app.calls == []


def test_a_lease_without_a_fresh_token_is_granted_and_asks_for_one(
    github_app, gh_repo, make_run, runner, django_capture_on_commit_callbacks
):
    now = timezone.now()
    make_run([job_spec("build")], repository=gh_repo)
    with time_machine.travel(now, tick=False):
        auth.refresh_runner_clone_token(gh_repo)
    later = now + timedelta(minutes=56)  # GitHub was down at every renewal: < 5 minutes left
    with time_machine.travel(later, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            granted = lease(runner)
        assert "clone_token" not in granted["source"]  # the clone fails visibly, retried
        assert auth.runner_clone_token(gh_repo)  # the lease's request for a new one was sent


def test_it_talks_to_github_enterprise_server_under_its_api_prefix(github_app, gh_repo, settings):
    settings.GITHUB_API_URL = github_app.url + "/api/v3"
    assert auth.clone_token_for(gh_repo)
    assert {c.path for c in github_app.calls} == {
        f"/api/v3/repos/{FULL_NAME}/installation",
        f"/api/v3/app/installations/{INSTALLATION_ID}/access_tokens",
    }


def test_it_sorts_github_answers_into_transient_and_permanent(fake_gh):
    fake_gh.pat = "p"
    cases = [
        (500, {}, github.GitHubTransient),
        (429, {"Retry-After": "7"}, github.GitHubTransient),
        (403, {"X-RateLimit-Remaining": "0"}, github.GitHubTransient),
        (403, {}, github.GitHubError),
        (404, {}, github.GitHubError),
        (422, {}, github.GitHubError),
    ]
    for status, headers, kind in cases:
        fake_gh.fail("GET", r"/repos/o/r/x", status, headers=headers)
        with pytest.raises(kind) as info:
            github.call("GET", "/repos/o/r/x", token="p")
        assert type(info.value) is kind and info.value.status == status
    fake_gh.fail("GET", r"/repos/o/r/x", 429, headers={"Retry-After": "7"})
    with pytest.raises(github.GitHubTransient) as info:
        github.call("GET", "/repos/o/r/x", token="p")
    assert info.value.retry_after == 7.0


def test_it_treats_an_unreachable_github_as_transient(settings):
    settings.GITHUB_API_URL = "http://127.0.0.1:9"
    with pytest.raises(github.GitHubTransient, match="unreachable"):
        github.call("GET", "/zen", token="")


def test_it_reports_an_unusable_app_key_without_echoing_it(github_app, gh_repo, settings):
    settings.GITHUB_APP_PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nnot-a-key-SECRETBITS\n"
    with pytest.raises(github.GitHubError) as info:
        auth.credentials_for(gh_repo)
    assert "not a usable RSA private key" in str(info.value)
    assert "SECRETBITS" not in str(info.value)
    assert github_app.calls == []


def test_it_looks_the_installation_up_again_after_a_reinstall(github_app, gh_repo):
    now = timezone.now()
    auth.installation_token(FULL_NAME)
    github_app.fail("POST", EXCHANGE, 404, body={"message": "Not Found"})
    with time_machine.travel(now + timedelta(minutes=56), tick=False):  # token needs renewal
        with pytest.raises(github.GitHubError, match="404"):
            auth.installation_token(FULL_NAME)
        assert auth.installation_token(FULL_NAME)
    assert len(github_app.named("GET", INSTALL)) == 2
