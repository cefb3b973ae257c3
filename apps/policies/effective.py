"""The policy in force for a repository: its Policy row where a field is set, else the
global default from settings. Planning and leasing read only this."""

from dataclasses import dataclass, field

from django.conf import settings


@dataclass(frozen=True)
class EffectivePolicy:
    allowed_images: list[str]
    egress_mode: str
    egress_allow: list[str]
    max_concurrent_jobs: int
    job_timeout_seconds: int
    run_timeout_seconds: int
    job_retries: int
    infra_retry_budget: int
    lease_ttl_seconds: int
    heartbeat_interval_seconds: int
    cancel_superseded: bool
    log_retention_days: int
    artifact_retention_days: int
    max_log_bytes: int
    max_artifact_bytes: int
    planning_mode: str
    caching_enabled: bool
    ai_enabled: bool
    ai_allow_forks: bool
    build_tags: bool
    required_jobs: list[str] = field(default_factory=list)
    image_isolation: str = "preferred"
    require_digest: bool = False


def _pick(value, default):
    return default if value in (None, "", []) else value


def default_image_isolation(environment: str) -> str:
    """Jobs of prod repositories run only in their image unless their policy says otherwise."""
    return "required" if environment == "prod" else "preferred"


def effective_policy(policy=None, environment: str | None = None) -> EffectivePolicy:
    """`policy` is a Policy row or None (a repository without one gets the defaults).
    Images: `prod` repositories default to required isolation and digest-pinned images."""
    s = settings
    if environment is None:
        environment = policy.repository.environment if policy is not None else "dev"
    prod = environment == "prod"
    isolation = default_image_isolation(environment)
    g = (lambda name: getattr(policy, name, None)) if policy is not None else (lambda name: None)
    ttl = _pick(g("lease_ttl_seconds"), s.DELTACI_LEASE_TTL_SECONDS)
    hb = _pick(g("heartbeat_interval_seconds"), s.DELTACI_HEARTBEAT_INTERVAL_SECONDS)
    if ttl < 3 * hb:  # the protocol's TTL >= 3 x heartbeat rule holds per repository too
        ttl = 3 * hb
    return EffectivePolicy(
        allowed_images=list(_pick(g("allowed_images"), s.DELTACI_ALLOWED_IMAGES)),
        egress_mode=_pick(g("egress_mode"), s.DELTACI_EGRESS_MODE),
        egress_allow=list(_pick(g("egress_allow"), s.DELTACI_EGRESS_ALLOW)),
        max_concurrent_jobs=_pick(g("max_concurrent_jobs"), s.DELTACI_MAX_CONCURRENT_JOBS),
        job_timeout_seconds=_pick(g("job_timeout_seconds"), s.DELTACI_JOB_TIMEOUT_SECONDS),
        run_timeout_seconds=_pick(g("run_timeout_seconds"), s.DELTACI_RUN_TIMEOUT_SECONDS),
        job_retries=_pick(g("job_retries"), s.DELTACI_JOB_RETRIES),
        infra_retry_budget=_pick(g("infra_retry_budget"), s.DELTACI_INFRA_RETRY_BUDGET),
        lease_ttl_seconds=ttl,
        heartbeat_interval_seconds=hb,
        cancel_superseded=_pick(g("cancel_superseded"), True),
        log_retention_days=_pick(g("log_retention_days"), s.DELTACI_LOG_RETENTION_DAYS),
        artifact_retention_days=_pick(
            g("artifact_retention_days"), s.DELTACI_ARTIFACT_RETENTION_DAYS
        ),
        max_log_bytes=_pick(g("max_log_bytes"), s.DELTACI_MAX_LOG_BYTES),
        max_artifact_bytes=_pick(g("max_artifact_bytes"), s.DELTACI_MAX_ARTIFACT_BYTES),
        planning_mode=_pick(g("planning_mode"), s.DELTACI_PLANNING_MODE),
        caching_enabled=_pick(g("caching_enabled"), True),
        ai_enabled=bool(g("ai_enabled")),
        ai_allow_forks=bool(g("ai_allow_forks")),
        build_tags=bool(g("build_tags")),
        required_jobs=list(_pick(g("required_jobs"), [])),
        image_isolation=_pick(g("image_isolation"), isolation),
        require_digest=_pick(g("require_digest"), prod),
    )


def policy_for(repository) -> EffectivePolicy:
    try:
        return effective_policy(repository.policy, repository.environment)
    except repository.__class__.policy.RelatedObjectDoesNotExist:
        return effective_policy(None, repository.environment)
