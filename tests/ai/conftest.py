"""A loopback fake of an OpenAI-compatible provider that can answer well, answer garbage,
answer with injected instructions, be slow, fail or limit us; and a failed attempt made
through the real runner protocol."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.policies.models import Policy
from tests.protocol.proto import Proto

GOOD = {
    "summary": "The test test_total failed because the expected sum was wrong.",
    "likely_cause": "A recent change to add() returns the difference.",
    "next_steps": ["Run pytest tests/test_math.py locally", "Check add() in math.py"],
    "confidence": "medium",
}


class FakeProvider:
    def __init__(self) -> None:
        self.mode = "good"
        self.answer: object = GOOD
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(json.loads(self.rfile.read(length)))
                fake.headers.append(dict(self.headers))
                fake.respond(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        if self.mode == "slow":
            self.release.wait(10)  # released by the test's teardown
            return
        if self.mode in ("fail", "ratelimit"):
            handler.send_response(500 if self.mode == "fail" else 429)
            handler.end_headers()
            return
        if self.mode == "not-json":
            body = b"<html>gateway</html>"
        else:
            content = self.answer if isinstance(self.answer, str) else json.dumps(self.answer)
            body = json.dumps(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
            ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @property
    def sent(self) -> str:
        """Everything every request carried, as one text."""
        return json.dumps(self.requests)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(settings):
    fake = FakeProvider()
    settings.DELTACI_AI_URL = fake.url
    settings.DELTACI_AI_MODEL = "fake-model-1"
    settings.DELTACI_AI_API_KEY = "provider-key-xyz"
    settings.DELTACI_AI_TIMEOUT_SECONDS = 0.5
    yield fake
    fake.close()


@pytest.fixture
def ai_policy(repo):
    policy, _ = Policy.objects.update_or_create(repository=repo, defaults={"ai_enabled": True})
    return policy


@pytest.fixture
def fail_job(runner, make_run, settings, tmp_path, django_capture_on_commit_callbacks):
    """fail_job(log) -> the attempt, failed through the protocol with `log` as its log
    (the log is finalised and the analysis queued on commit, as in production)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "store")},
        },
    }

    def fail(log: bytes, *, run=None, exit_code: int = 1):
        run = run or make_run()
        p = Proto(runner)
        g = p.start()
        assert p.log(g["lease_id"], 0, log).status_code in (200, 202, 204)
        with django_capture_on_commit_callbacks(execute=True):
            r = p.complete(g["lease_id"], status="FAILED", exit_code=exit_code)
        assert r.status_code == 200, r.content
        return run.attempts.order_by("-attempt_number").first()

    return fail
