"""Fixtures for the GitHub integration: signed deliveries of the real payloads, a fake
GitHub API on loopback, a GitHub App key pair, and a local git repository whose commits
stand in for the payloads' SHAs."""

import hashlib
import hmac
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apps.runs.actions import do_add_repository
from apps.vcs import auth
from tests.pages.factory import lease  # noqa: F401 - imported by the vcs tests
from tests.protocol.proto import Proto
from tests.vcs import fake_github

# Real GitHub payloads kept in the repository, with their license (tests/fixtures/github/).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github"
SECRET = "webhook-test-secret"
FULL_NAME = "Codertocat/Hello-World"
APP_ID = "31337"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    client,
    event: str,
    body: bytes,
    *,
    signature: str | None = "sign",
    delivery=None,
    content_type="application/json",
    **headers,
):
    """POST a delivery the way GitHub does (signature over the exact bytes)."""
    extra = {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": delivery or str(uuid.uuid4())}
    if signature == "sign":
        signature = sign(body)
    if signature is not None:
        extra["HTTP_X_HUB_SIGNATURE_256"] = signature
    extra.update(headers)
    return client.generic(
        "POST", "/api/v1/webhooks/github", body, content_type=content_type, **extra
    )


def derived(name: str, **changes) -> bytes:
    """A fixture with some fields replaced: paths joined by `__`, e.g.
    `pull_request__head__sha`."""
    payload = json.loads(fixture_bytes(name))
    for path, value in changes.items():
        cur = payload
        *parents, last = path.split("__")
        for p in parents:
            cur = cur[p]
        cur[last] = value
    return json.dumps(payload).encode()


@pytest.fixture
def webhook_secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    return SECRET


@pytest.fixture
def gh_repo(db, settings, tmp_path):
    settings.DELTACI_MIRROR_DIR = tmp_path / "mirrors"
    return do_add_repository(
        "hello",
        str(tmp_path / "missing.git"),
        default_branch="master",
        github_full_name=FULL_NAME,
        actor="system",
    )


@pytest.fixture(autouse=True)
def _no_github(settings):
    """No test talks to GitHub unless it asks for the fake one."""
    settings.GITHUB_TOKEN = ""
    settings.GITHUB_APP_ID = ""
    settings.GITHUB_APP_PRIVATE_KEY = ""
    settings.GITHUB_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    auth.clear_cache()
    yield
    auth.clear_cache()


@pytest.fixture
def fake_gh(settings):
    gh = fake_github.FakeGitHub()
    server = fake_github.start(gh)
    settings.GITHUB_API_URL = gh.url
    yield gh
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def app_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def github_app(fake_gh, settings, app_key):
    settings.GITHUB_APP_ID = APP_ID
    settings.GITHUB_APP_PRIVATE_KEY = app_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    fake_gh.app_id = APP_ID
    fake_gh.public_key = app_key.public_key()
    return fake_gh


@pytest.fixture
def github_pat(fake_gh, settings):
    settings.GITHUB_TOKEN = fake_gh.pat = "ghp_personal_test_token"
    return fake_gh


CI_YAML = """version: 1
jobs:
  test:
    image: python:3.12
    steps: ["python -c 'print(1)'"]
    secrets: [DEPLOY_KEY]
    caches: [{type: deps, key: "pip:v1", paths: ["~/.cache/pip"]}]
"""


class GitRepo:
    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=master")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
            cwd=self.path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, text in files.items():
            (self.path / name).write_text(text)
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path, gh_repo):
    """A real repository (ci.ai.yaml with one job naming a secret and a cache) connected
    as Codertocat/Hello-World; the payloads' SHAs are rewritten to its commits."""
    repo = GitRepo(tmp_path / "src")
    repo.base = repo.commit({"ci.ai.yaml": CI_YAML, "app.py": "x = 1\n"}, "base")
    repo.head = repo.commit({"app.py": "x = 2\n"}, "head")
    repo.git("update-ref", "refs/pull/2/head", repo.head)
    gh_repo.url = str(repo.path)
    gh_repo.save(update_fields=["url"])
    repo.model = gh_repo
    return repo


def complete(runner, granted: dict, status: str = "SUCCEEDED", exit_code: int = 0, **extra):
    resp = Proto(runner).complete(granted["lease_id"], status, exit_code, **extra)
    assert resp.status_code == 200, resp.content
    return resp
