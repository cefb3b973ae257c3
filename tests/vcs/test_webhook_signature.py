"""The webhook's gate: size, then signature (HMAC-SHA256 over the exact bytes, constant
time, before parsing), then a well-formed payload. Every fixture is tried with a good,
a forged, a missing and a wrong-algorithm signature."""

import hashlib
import hmac

import pytest

from apps.audit.models import AuditEvent
from apps.runs.models import Run
from apps.vcs.models import WebhookDelivery
from tests.vcs.conftest import FIXTURES, deliver, fixture_bytes, sign

EVENTS = {
    "check_run": "check_run",
    "check_suite": "check_suite",
    "ping": "ping",
    "pull_request": "pull_request",
    "push": "push",
}
ALL = sorted(p.name for p in FIXTURES.glob("*.json"))


def event_of(name: str) -> str:
    return EVENTS[name.split(".")[0]]


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status_code == status, resp.content
    body = resp.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


def test_it_knows_every_fixture():
    assert len(ALL) == 21


@pytest.mark.parametrize("name", ALL)
def test_it_accepts_every_fixture_with_a_good_signature(name, client, gh_repo, webhook_secret):
    resp = deliver(client, event_of(name), fixture_bytes(name))
    assert resp.status_code in (200, 201, 202), resp.content
    assert "error" not in resp.json()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "signature",
    [
        "forged",  # right shape, computed with another secret
        None,  # missing header
        "sha1",  # the legacy X-Hub-Signature algorithm
        "sha256=",
        "sha256=zz",
        "garbage",
        "SHA256=upper",
    ],
)
def test_it_refuses_every_fixture_without_a_valid_signature(
    name, signature, client, gh_repo, webhook_secret
):
    body = fixture_bytes(name)
    if signature == "forged":
        signature = sign(body, "not-the-secret")
    elif signature == "sha1":
        signature = "sha1=" + hmac.new(webhook_secret.encode(), body, hashlib.sha1).hexdigest()
    elif signature == "SHA256=upper":
        signature = sign(body).replace("sha256=", "SHA256=")
    resp = deliver(client, event_of(name), body, signature=signature)
    assert_error(resp, 401, "UNAUTHORIZED")
    assert Run.objects.count() == 0 and WebhookDelivery.objects.count() == 0


def test_it_refuses_a_signature_of_other_bytes(client, gh_repo, webhook_secret):
    body = fixture_bytes("push.branch.derived.json")
    resp = deliver(client, "push", body + b" ", signature=sign(body))
    assert_error(resp, 401, "UNAUTHORIZED")
    assert Run.objects.count() == 0


def test_it_audits_failed_signatures(client, gh_repo, webhook_secret):
    deliver(client, "push", fixture_bytes("push.branch.derived.json"), signature=None)
    event = AuditEvent.objects.get(action="auth.failed")
    assert event.actor == "github-webhook" and "missing" in event.details["why"]


def test_it_fails_closed_without_a_secret(client, gh_repo, settings):
    settings.GITHUB_WEBHOOK_SECRET = ""
    body = fixture_bytes("push.branch.derived.json")
    for signature in (sign(body, ""), None):
        assert_error(deliver(client, "push", body, signature=signature), 503, "UNAVAILABLE")
    assert Run.objects.count() == 0


def test_it_refuses_a_body_over_the_limit(client, gh_repo, webhook_secret, settings):
    settings.GITHUB_MAX_WEBHOOK_BYTES = 1024 * 1024
    body = b'{"zen": "' + b"x" * (1024 * 1024) + b'"}'
    resp = deliver(client, "ping", body)
    assert_error(resp, 413, "PAYLOAD_TOO_LARGE")
    assert resp.json()["error"]["details"] == {"limit": 1024 * 1024}


def test_it_measures_the_body_not_its_declared_length(client, gh_repo, webhook_secret, settings):
    settings.GITHUB_MAX_WEBHOOK_BYTES = 100
    body = b'{"zen": "' + b"x" * 200 + b'"}'
    resp = deliver(client, "ping", body, CONTENT_LENGTH="50")
    assert resp.status_code in (400, 401, 413)  # never accepted
    resp = deliver(client, "ping", body)
    assert_error(resp, 413, "PAYLOAD_TOO_LARGE")


def test_it_accepts_a_body_at_the_limit(client, gh_repo, webhook_secret, settings):
    body = b'{"zen": "' + b"x" * 1000 + b'"}'
    settings.GITHUB_MAX_WEBHOOK_BYTES = len(body)
    assert deliver(client, "ping", body).status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[1, 2]", b'"push"', b"\xff\xfe{}", b"null", b"{'single': 'quotes'}"],
)
def test_it_refuses_malformed_bodies(body, client, gh_repo, webhook_secret):
    resp = deliver(client, "push", body)
    assert_error(resp, 400, "INVALID_REQUEST")
    assert Run.objects.count() == 0


@pytest.mark.parametrize(
    "event,changes",
    [
        ("push", {"after": None}),
        ("push", {"after": "not-a-sha"}),
        ("push", {"ref": 7}),
        ("push", {"ref": "refs/heads/has space"}),
        ("push", {"ref": "refs/heads/-upload-pack"}),
        ("push", {"ref": "refs/heads/a..b"}),
        ("push", {"repository": "Codertocat/Hello-World"}),
        ("push", {"repository": {"full_name": "../../etc"}}),
        ("push", {"before": ["x"]}),
    ],
)
def test_it_refuses_push_payloads_missing_fields(event, changes, client, gh_repo, webhook_secret):
    import json

    payload = json.loads(fixture_bytes("push.branch.derived.json"))
    for key, value in changes.items():
        if value is None:
            del payload[key]
        else:
            payload[key] = value
    resp = deliver(client, event, json.dumps(payload).encode())
    assert_error(resp, 400, "INVALID_REQUEST")
    assert Run.objects.count() == 0


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("number"),
        lambda p: p.update(number="2"),
        lambda p: p.update(number=True),
        lambda p: p.update(number=-2),
        lambda p: p.pop("pull_request"),
        lambda p: p["pull_request"]["head"].pop("sha"),
        lambda p: p["pull_request"]["base"].update(sha="abc"),
        lambda p: p["pull_request"]["base"].pop("repo"),
        lambda p: p["pull_request"]["head"].update(repo="attacker/Hello-World"),
        lambda p: p.update(action=None),
    ],
)
def test_it_refuses_pull_request_payloads_missing_fields(mutate, client, gh_repo, webhook_secret):
    import json

    payload = json.loads(fixture_bytes("pull_request.opened.json"))
    mutate(payload)
    resp = deliver(client, "pull_request", json.dumps(payload).encode())
    assert_error(resp, 400, "INVALID_REQUEST")
    assert Run.objects.count() == 0
    assert WebhookDelivery.objects.get().outcome == "rejected"


def test_it_requires_the_event_header(client, gh_repo, webhook_secret):
    body = fixture_bytes("push.branch.derived.json")
    resp = deliver(client, "", body)
    assert_error(resp, 400, "INVALID_REQUEST")


def test_it_accepts_only_post(client, webhook_secret):
    assert_error(client.get("/api/v1/webhooks/github"), 405, "INVALID_REQUEST")


def test_it_accepts_form_encoded_deliveries(client, gh_repo, webhook_secret):
    from urllib.parse import urlencode

    body = urlencode({"payload": fixture_bytes("push.branch.derived.json").decode()}).encode()
    resp = deliver(client, "push", body, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 201, resp.content
    assert Run.objects.count() == 1


@pytest.mark.parametrize("depth", [100_000, 200], ids=["overflow", "deep"])
def test_a_signed_but_deeply_nested_body_is_a_400(client, gh_repo, webhook_secret, depth):
    """200,000 brackets overflow Python's decoder (RecursionError, once a 500); 200 levels
    decode but exceed lib/jsonsafe's bound."""
    body = b"[" * depth + b"]" * depth
    assert_error(deliver(client, "push", body), 400, "INVALID_REQUEST")
    form = b"payload=" + b"%5B" * depth + b"%5D" * depth
    resp = deliver(client, "push", form, content_type="application/x-www-form-urlencoded")
    assert_error(resp, 400, "INVALID_REQUEST")
    assert Run.objects.count() == 0
