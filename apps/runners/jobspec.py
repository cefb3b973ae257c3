"""The LeaseGranted message: everything a runner needs to run one attempt, and nothing
more. Secrets are only the ones the job names (never for a fork pull request) and caches
are environment-prefixed and read-only for forks (docs/security.md)."""

from django.conf import settings
from django.db import transaction

from apps.policies.effective import EffectivePolicy
from apps.policies.secrets import secrets_for_job
from apps.runners.models import Runner
from apps.runs.models import JobAttempt
from apps.vcs.auth import needs_runner_token, runner_clone_token
from apps.vcs.tasks import refresh_runner_tokens
from lib.dispatch import dispatch


def max_runtime_seconds(spec: dict, policy: EffectivePolicy) -> int:
    """The job's own timeout, else the repository's job timeout."""
    try:
        own = int(spec.get("timeout_seconds") or 0)
    except (TypeError, ValueError):
        own = 0
    return own if own > 0 else int(policy.job_timeout_seconds)


def _caches(spec: dict, policy: EffectivePolicy, environment: str, fork: bool) -> list[dict]:
    if not policy.caching_enabled:
        return []
    return [
        {
            **c,
            "key": f"{environment}:{c.get('key', '')}",
            "read_only": bool(fork or c.get("read_only")),
        }
        for c in spec.get("caches", [])
        if isinstance(c, dict)
    ]


def granted_body(
    attempt: JobAttempt,
    lease_id: str,
    policy: EffectivePolicy,
    runner: Runner,
    image_note: str | None = None,
) -> dict:
    job, run = attempt.job, attempt.run
    spec = job.spec or {}
    repo = run.repository
    source = {"repo_url": repo.url, "ref": run.ref, "commit_sha": run.commit_sha}
    clone_token = runner_clone_token(repo)
    if clone_token:
        source["clone_token"] = clone_token
    elif needs_runner_token(repo):  # GitHub was down when it was due: the retry will have one
        transaction.on_commit(lambda: dispatch(refresh_runner_tokens, repo.pk))
    body = {
        "type": "LeaseGranted",
        "run_id": str(run.pk),
        "job_id": str(job.pk),
        "attempt_id": str(attempt.pk),
        "attempt_number": attempt.attempt_number,
        "lease_id": lease_id,
        "lease_ttl_seconds": policy.lease_ttl_seconds,
        "heartbeat_interval_seconds": policy.heartbeat_interval_seconds,
        "ack_timeout_seconds": settings.DELTACI_ACK_TIMEOUT_SECONDS,
        "max_runtime_seconds": max_runtime_seconds(spec, policy),
        "source": source,
        "job_spec": {
            "name": job.name,
            "workdir": spec.get("workdir", "."),
            "image": spec.get("image", ""),
            "steps": list(spec.get("steps", [])),
            "env": {**spec.get("env", {}), "CI": "true"},
            "artifacts": list(spec.get("artifacts", [])),
            "caches": _caches(spec, policy, repo.environment, run.is_fork),
            "limits": dict(spec.get("limits", {})),
        },
        "policy": {
            "egress": {"mode": policy.egress_mode, "allow": list(policy.egress_allow)},
            "image_isolation": policy.image_isolation,
        },
        "secrets": secrets_for_job(
            run, list(spec.get("secrets", [])), actor=f"runner:{runner.name}"
        ),
    }
    if image_note:
        body["image_note"] = image_note  # the runner writes it into the job's log
    return body
