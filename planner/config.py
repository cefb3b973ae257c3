"""``ci.ai.yaml`` version 1: strict validation into a ``Config``; every problem is
reported as ``path.to.field: message`` in one ``PlanError``.

Cache keys must be deterministic: ``{hash:FILE}`` (FILE relative to the repository
root) becomes the SHA-256 of that file at head; timestamps, random parts, shell or
environment expansion are refused.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from planner.checks import Checker, type_name
from planner.classify import PathRules
from planner.discovery.common import join
from planner.errors import PlanError
from planner.manifests import ManifestError, load_yaml
from planner.policy import PlannerPolicy

FILE = "ci.ai.yaml"
TOP_KEYS = ("version", "jobs", "policies", "limits", "planning")
PLANNING_KEYS = ("ignore", "global")
MAX_PLANNING_GLOBS = 500
JOB_KEYS = (
    "name",  # a display name; the key stays the job's identity
    "image",
    "workdir",
    "steps",
    "needs",
    "runs_on",
    "paths",
    "env",
    "secrets",
    "artifacts",
    "caches",
    "policy",
)
JOB_POLICY_KEYS = ("required", "allow_failure", "retries", "timeout_seconds")
RUN_POLICY_KEYS = ("cancel_superseded", "max_runtime_seconds", "max_concurrency")
LIMIT_KEYS = ("cpu", "memory", "disk")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/=-]{0,99}$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|K|M|G|T|Ki|Mi|Gi|Ti)?$")
TEMPLATE = re.compile(r"\{([^{}]*)\}")
VOLATILE = re.compile(r"date|time|now|random|rand|uuid|epoch|run|build|attempt|seed", re.I)


@dataclass
class ConfigJob:
    name: str
    spec: dict[str, Any]  # the job fields of the plan output
    paths: list[str] | None  # None: no filter, always runs


@dataclass
class Config:
    jobs: list[ConfigJob]
    policies: dict[str, Any]
    limits: dict[str, Any]
    hashed_files: list[str] = field(default_factory=list)
    rules: PathRules = field(default_factory=PathRules)  # planning.ignore / planning.global


def parse_config(
    content: bytes | None,
    size: int,
    policy: PlannerPolicy,
    file_hash: Callable[[str], str | None],
) -> Config:
    """Validate ``ci.ai.yaml`` bytes; ``file_hash(path)`` gives a head file's SHA-256."""
    if content is None or size > policy.max_config_bytes:
        raise PlanError(
            f"{FILE}: file is {size} bytes, more than the limit of {policy.max_config_bytes} bytes"
        )
    try:
        document = load_yaml(content)
    except ManifestError as exc:
        raise PlanError(f"{FILE}: {exc}") from exc
    check = Checker(FILE)
    if document is None:
        raise PlanError(f"{FILE}: the document is empty; it needs version and jobs")
    # without jobs, a file that only tunes discovery (planning.ignore / planning.global)
    required = ("version",) if isinstance(document, dict) and "planning" in document else None
    top = check.mapping(document, "", TOP_KEYS, required=required or ("version", "jobs"))
    if top is None:
        raise PlanError(check.problems)
    version = top.get("version", 1)
    if version != 1 or isinstance(version, bool):
        check.add("version", f"must be 1, got {version!r}")
    limits = _limits(check, top.get("limits", {}))
    policies = _policies(check, top.get("policies", {}))
    jobs = _jobs(check, top.get("jobs"), policy, limits, file_hash) if "jobs" in top else []
    rules = _planning(check, top.get("planning", {}))
    if check.problems:
        raise PlanError(check.problems)
    hashed = sorted({f for j in jobs for f in j.spec.pop("_hashed")})
    return Config(jobs=jobs, policies=policies, limits=limits, hashed_files=hashed, rules=rules)


def _planning(check: Checker, value: Any) -> PathRules:
    """``planning.ignore``: globs of files no build reads (never trigger work);
    ``planning.global``: globs of files every build reads (everything runs)."""
    planning = check.mapping(value, "planning", PLANNING_KEYS) or {}
    found: dict[str, tuple[str, ...]] = {}
    for key in PLANNING_KEYS:
        if key not in planning:
            continue
        at = f"planning.{key}"
        globs = check.strings(planning[key], at, non_empty=True) or []
        if len(globs) > MAX_PLANNING_GLOBS:
            check.add(at, f"{len(globs)} globs, more than {MAX_PLANNING_GLOBS}")
        for i, glob in enumerate(globs):
            if glob.startswith("/") or ".." in glob.split("/") or "\0" in glob:
                check.add(f"{at}[{i}]", "must be a glob relative to the repository root")
            elif len(glob) > 1024:
                check.add(f"{at}[{i}]", "must be at most 1024 characters")
        found[key] = tuple(globs)
    return PathRules(ignore=found.get("ignore", ()), global_=found.get("global", ()))


def _limits(check: Checker, value: Any) -> dict[str, Any]:
    limits = check.mapping(value, "limits", LIMIT_KEYS)
    out: dict[str, Any] = {}
    for key, item in (limits or {}).items():
        if key not in LIMIT_KEYS:
            continue
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            check.add(
                f"limits.{key}", f"must be a quantity such as '2' or '4Gi', got {type_name(item)}"
            )
        elif not QUANTITY.match(str(item)):
            check.add(f"limits.{key}", f"{item!r} is not a quantity such as '2' or '4Gi'")
        else:
            out[key] = str(item)
    return out


def _policies(check: Checker, value: Any) -> dict[str, Any]:
    policies = check.mapping(value, "policies", ("runs",))
    if not policies or "runs" not in policies:
        return {}
    runs = check.mapping(policies["runs"], "policies.runs", RUN_POLICY_KEYS)
    out: dict[str, Any] = {}
    for key, item in (runs or {}).items():
        path = f"policies.runs.{key}"
        parsed: bool | int | None
        if key == "cancel_superseded":
            parsed = check.boolean(item, path)
        elif key == "max_runtime_seconds":
            parsed = check.integer(item, path, 1, 7 * 24 * 3600)
        elif key == "max_concurrency":
            parsed = check.integer(item, path, 1, 1000)
        else:
            continue
        if parsed is not None:
            out[key] = parsed
    return out


FileHash = Callable[[str], str | None]


def _jobs(
    check: Checker, value: Any, policy: PlannerPolicy, limits: dict[str, Any], file_hash: FileHash
) -> list[ConfigJob]:
    if not isinstance(value, dict):
        check.add("jobs", f"must be a mapping of job name to job, got {type_name(value)}")
        return []
    if not value:
        check.add("jobs", "must define at least one job")
    if len(value) > policy.max_jobs:
        check.add("jobs", f"{len(value)} jobs, more than the policy limit of {policy.max_jobs}")
    names = [n for n in value if isinstance(n, str)]
    jobs = []
    for name, body in value.items():
        if not isinstance(name, str) or not JOB_NAME.match(name):
            check.add("jobs", f"job name {name!r} must match {JOB_NAME.pattern}")
            continue
        job = _job(check, name, body, policy, names, file_hash)
        if job is not None:
            job.spec["limits"] = dict(limits)
            jobs.append(job)
    _check_cycles(check, jobs)
    return jobs


def _job(
    check: Checker,
    name: str,
    body: Any,
    policy: PlannerPolicy,
    names: list[str],
    file_hash: FileHash,
) -> ConfigJob | None:
    at = f"jobs.{name}"
    job = check.mapping(body, at, JOB_KEYS, required=("image", "steps"))
    if job is None:
        return None
    image = check.string(job["image"], f"{at}.image", 255) if "image" in job else None
    if image and (problem := policy.image_problem(image)):
        check.add(f"{at}.image", problem)
    workdir = "."
    if "workdir" in job and (raw := check.string(job["workdir"], f"{at}.workdir")):
        workdir = join(".", raw) or ""
        if not workdir:
            check.add(f"{at}.workdir", "must be a relative path inside the repository")
    steps = check.strings(job["steps"], f"{at}.steps", non_empty=True) if "steps" in job else None
    needs = check.strings(job.get("needs", []), f"{at}.needs") or []
    for i, need in enumerate(needs):
        if need not in names:
            check.add(f"{at}.needs[{i}]", f"unknown job {need!r}")
    runs_on = _matching(check, job.get("runs_on", []), f"{at}.runs_on", LABEL, "label")
    paths = None
    if "paths" in job:
        paths = check.strings(job["paths"], f"{at}.paths", non_empty=True) or []
        for i, pattern in enumerate(paths):
            if pattern.startswith("/") or ".." in pattern.split("/"):
                check.add(f"{at}.paths[{i}]", "must be relative to the repository root")
    secrets = _matching(check, job.get("secrets", []), f"{at}.secrets", ENV_NAME, "secret name")
    settings = _job_policy(check, job.get("policy", {}), f"{at}.policy", policy)
    caches, hashed = _caches(check, job.get("caches", []), f"{at}.caches", file_hash)
    title = check.string(job["name"], f"{at}.name", 100) if "name" in job else None
    spec = {
        "name": name,
        **({"title": title} if title else {}),
        "project": workdir or ".",
        "ecosystem": "config",
        "image": image or "",
        "workdir": workdir or ".",
        "steps": steps or [],
        "needs": [n for n in needs if n in names],
        "runs_on": runs_on,
        "env": _env(check, job.get("env", {}), f"{at}.env"),
        "secrets": secrets,
        "artifacts": _artifacts(check, job.get("artifacts", []), f"{at}.artifacts"),
        "caches": caches,
        **settings,
        "_hashed": hashed,
    }
    return ConfigJob(name=name, spec=spec, paths=paths)


def _matching(
    check: Checker, value: Any, at: str, pattern: re.Pattern[str], what: str
) -> list[str]:
    items = check.strings(value, at) or []
    for i, item in enumerate(items):
        if not pattern.match(item):
            check.add(f"{at}[{i}]", f"{item!r} is not a valid {what}")
    return items


def _env(check: Checker, value: Any, at: str) -> dict[str, str]:
    if not isinstance(value, dict):
        check.add(at, f"must be a mapping of name to value, got {type_name(value)}")
        return {}
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not ENV_NAME.match(key):
            check.add(at, f"{key!r} is not a valid environment variable name")
        elif isinstance(item, bool) or not isinstance(item, (str, int, float)):
            check.add(f"{at}.{key}", f"must be a string, got {type_name(item)}")
        else:
            out[key] = str(item)
    return out


def _job_policy(check: Checker, value: Any, at: str, policy: PlannerPolicy) -> dict[str, Any]:
    out = {
        "required": True,
        "allow_failure": False,
        "retries": policy.default_retries,
        "timeout_seconds": policy.default_timeout_seconds,
    }
    settings = check.mapping(value, at, JOB_POLICY_KEYS) or {}
    for key, item in settings.items():
        parsed: bool | int | None
        if key in ("required", "allow_failure"):
            parsed = check.boolean(item, f"{at}.{key}")
        elif key == "retries":
            parsed = check.integer(item, f"{at}.{key}", 0, 10)
        elif key == "timeout_seconds":
            parsed = check.integer(item, f"{at}.{key}", 1, 7 * 24 * 3600)
        else:
            continue
        if parsed is not None:
            out[key] = parsed
    return out


def _artifacts(check: Checker, value: Any, at: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        check.add(at, f"must be a list, got {type_name(value)}")
        return []
    out = []
    for i, item in enumerate(value):
        entry = check.mapping(item, f"{at}[{i}]", ("type", "path", "name"), ("type", "path"))
        if entry is None:
            continue
        fields = {
            k: check.string(entry[k], f"{at}[{i}].{k}", 1024)
            for k in entry
            if k in ("type", "path", "name")
        }
        path = fields.get("path")
        if path and (path.startswith("/") or ".." in path.split("/")):
            check.add(f"{at}[{i}].path", "must be relative to the job's workdir, without '..'")
        if all(fields.values()):
            out.append({k: v for k, v in fields.items() if v is not None})
    return out


def _caches(
    check: Checker, value: Any, at: str, file_hash: FileHash
) -> tuple[list[dict[str, Any]], list[str]]:
    if not isinstance(value, list):
        check.add(at, f"must be a list, got {type_name(value)}")
        return [], []
    out: list[dict[str, Any]] = []
    hashed: list[str] = []
    for i, item in enumerate(value):
        entry = check.mapping(
            item, f"{at}[{i}]", ("type", "key", "paths"), ("type", "key", "paths")
        )
        if entry is None:
            continue
        kind = check.string(entry["type"], f"{at}[{i}].type", 100) if "type" in entry else None
        paths = (
            check.strings(entry["paths"], f"{at}[{i}].paths", non_empty=True)
            if "paths" in entry
            else None
        )
        key = check.string(entry["key"], f"{at}[{i}].key", 512) if "key" in entry else None
        resolved = _cache_key(check, key, f"{at}[{i}].key", file_hash, hashed) if key else None
        if kind and paths and resolved:
            out.append({"type": kind, "key": resolved, "paths": paths})
    return out, hashed


def _cache_key(
    check: Checker, key: str, at: str, file_hash: FileHash, hashed: list[str]
) -> str | None:
    """``{hash:FILE}`` -> SHA-256 of FILE at head; anything time- or run-dependent is refused."""
    if "$" in key or "`" in key:
        check.add(
            at, f"{key!r} must be deterministic: shell or environment expansion is not allowed"
        )
        return None
    ok = True
    parts: dict[str, str] = {}
    for template in TEMPLATE.findall(key):
        kind, _, arg = template.partition(":")
        if kind == "hash" and arg:
            path = join(".", arg)
            digest = file_hash(path) if path else None
            if digest is None or path is None:
                check.add(at, f"{{{template}}}: {arg!r} is not a file in the repository at head")
                ok = False
            else:
                parts[template] = digest
                hashed.append(path)
        elif VOLATILE.search(template):
            check.add(
                at,
                f"{{{template}}} must be deterministic: "
                "time, random or run-dependent parts are not allowed",
            )
            ok = False
        else:
            check.add(at, f"unknown template {{{template}}}; only {{hash:FILE}} is supported")
            ok = False
    if not ok:
        return None
    return TEMPLATE.sub(lambda m: parts[m.group(1)], key)


def _check_cycles(check: Checker, jobs: list[ConfigJob]) -> None:
    """Report each needs cycle once, found by an iterative depth-first walk."""
    needs = {j.name: j.spec["needs"] for j in jobs}
    done: set[str] = set()
    reported: set[frozenset[str]] = set()
    for start in needs:
        if start in done:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        while stack:
            name, index = stack[-1]
            if index == len(needs[name]):
                stack.pop()
                path.pop()
                done.add(name)
                continue
            stack[-1] = (name, index + 1)
            need = needs[name][index]
            if need in path:
                cycle = path[path.index(need) :] + [need]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    check.add(f"jobs.{need}.needs", f"cycle {' -> '.join(cycle)}")
            elif need in needs and need not in done:
                stack.append((need, 0))
                path.append(need)
