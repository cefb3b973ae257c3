"""Reading a GitHub delivery: the signature check (on the raw bytes, before anything is
parsed) and the translation of a payload into what Delta CI should do. No database."""

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from lib import jsonsafe
from lib.gitmirror import NULL_SHA

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# Enough of git-check-ref-format to keep odd names out of git command lines.
_REF = re.compile(r"^refs/(heads|tags)/(?!-)[^\x00-\x20\x7f~^:?*\[\\]{1,230}$")
_FULL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
PR_BUILD_ACTIONS = ("opened", "synchronize", "reopened")
# Our check runs carry the run in their external id (apps/vcs/reporting.py).
_EXTERNAL_ID = re.compile(r"^delta-ci-run-([1-9][0-9]{0,17})$")


class BadSignature(Exception):
    pass


class BadPayload(Exception):
    """The body is not a payload of the event it claims to be (answered 400)."""


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    """X-Hub-Signature-256 must be `sha256=<hex HMAC of the exact body>`; compared in
    constant time. Anything else (missing, sha1=, garbage) is refused."""
    if not header:
        raise BadSignature("missing X-Hub-Signature-256")
    algorithm, _, given = header.strip().partition("=")
    if algorithm != "sha256" or not given:
        raise BadSignature("X-Hub-Signature-256 must be sha256=<hex digest>")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise BadSignature("signature does not match")


def decode(body: bytes, content_type: str) -> dict:
    """The JSON payload, sent as application/json or (a webhook setting) as the
    `payload` field of a form."""
    try:
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
            text = fields.get("payload", [""])[0]
        else:
            text = body.decode("utf-8")
        payload = jsonsafe.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadPayload(f"body is not JSON: {type(exc).__name__}") from None
    if not isinstance(payload, dict):
        raise BadPayload("payload must be a JSON object")
    return payload


@dataclass(frozen=True)
class Build:
    """A run to create."""

    full_name: str
    trigger: str  # push | pull_request
    ref: str
    commit_sha: str
    base_sha: str
    event_key: str
    pr_number: int | None = None
    is_fork: bool = False
    is_tag: bool = False
    reopened: bool = False


@dataclass(frozen=True)
class ClosePullRequest:
    full_name: str
    pr_number: int


@dataclass(frozen=True)
class Rerun:
    """Re-run pressed on GitHub: on our check run (`run_id`, the run it reports) or on
    the whole check suite (the newest run of `head_sha`)."""

    full_name: str
    head_sha: str
    run_id: int | None = None


@dataclass(frozen=True)
class Ignore:
    why: str
    full_name: str = ""


def _get(obj: object, path: str, kind: type | tuple[type, ...]):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise BadPayload(f"missing field {path}")
        cur = cur[part]
    if not isinstance(cur, kind) or isinstance(cur, bool) and kind is int:
        raise BadPayload(f"field {path} has the wrong type")
    return cur


def _sha(obj: object, path: str) -> str:
    value = _get(obj, path, str)
    if not _SHA.match(value):
        raise BadPayload(f"field {path} is not a commit SHA")
    return value


def _full_name(payload: dict) -> str:
    name = _get(payload, "repository.full_name", str)
    if not _FULL_NAME.match(name):
        raise BadPayload("field repository.full_name is not owner/name")
    return name


def interpret(event: str, payload: dict) -> Build | ClosePullRequest | Rerun | Ignore:
    if event == "push":
        return _push(payload)
    if event == "pull_request":
        return _pull_request(payload)
    if event in ("check_run", "check_suite") and payload.get("action") == "rerequested":
        return _rerequested(event, payload)
    return Ignore(f"event {event!r} is not handled")


def _rerequested(event: str, payload: dict) -> Rerun | Ignore:
    full_name = _full_name(payload)
    head_sha = _sha(payload, f"{event}.head_sha")
    if event == "check_suite":
        return Rerun(full_name, head_sha)
    external_id = _get(payload, "check_run", dict).get("external_id")
    match = _EXTERNAL_ID.match(external_id) if isinstance(external_id, str) else None
    if match is None:
        return Ignore("the check run is not one of Delta CI's", full_name)
    return Rerun(full_name, head_sha, int(match.group(1)))


def _push(payload: dict) -> Build | Ignore:
    full_name = _full_name(payload)
    ref = _get(payload, "ref", str)
    after = _sha(payload, "after")
    before = _sha(payload, "before")
    if payload.get("deleted") is True or after == NULL_SHA:
        return Ignore(f"{ref} was deleted", full_name)
    if not _REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        if ref.startswith(("refs/heads/", "refs/tags/")):
            raise BadPayload("field ref is not a valid branch or tag name")
        return Ignore(f"push to {ref[:100]!r} is neither a branch nor a tag", full_name)
    return Build(
        full_name=full_name,
        trigger="push",
        ref=ref,
        commit_sha=after,
        base_sha=before,
        # The ref is part of the key: the same commit pushed to a second branch is a
        # different trigger (it may run other jobs there).
        event_key=f"github:push:{ref}:{after}",
        is_tag=ref.startswith("refs/tags/"),
    )


def _pull_request(payload: dict) -> Build | ClosePullRequest | Ignore:
    full_name = _full_name(payload)
    action = _get(payload, "action", str)
    number = _get(payload, "number", int)
    if number <= 0:
        raise BadPayload("field number must be positive")
    if action == "closed":
        return ClosePullRequest(full_name, number)
    if action not in PR_BUILD_ACTIONS:
        return Ignore(f"pull_request action {action!r} is not handled", full_name)
    head_sha = _sha(payload, "pull_request.head.sha")
    base_sha = _sha(payload, "pull_request.base.sha")
    base_repo = _get(payload, "pull_request.base.repo.full_name", str)
    head = _get(payload, "pull_request.head", dict)
    head_repo = head.get("repo")
    if head_repo is not None and not isinstance(head_repo, dict):
        raise BadPayload("field pull_request.head.repo has the wrong type")
    # A deleted fork has no head repository any more: treat it as a fork (never trusted).
    head_name = head_repo.get("full_name") if head_repo else None
    is_fork = not isinstance(head_name, str) or head_name.lower() != base_repo.lower()
    return Build(
        full_name=full_name,
        trigger="pull_request",
        ref=f"refs/pull/{number}/head",
        commit_sha=head_sha,
        base_sha=base_sha,
        event_key=f"github:pull_request:{number}:{head_sha}",
        pr_number=number,
        is_fork=is_fork,
        reopened=action == "reopened",
    )
