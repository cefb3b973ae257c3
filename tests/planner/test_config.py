"""ci.ai.yaml v1: paths filters, needs closure, cache keys, and strict validation."""

import hashlib

import pytest

from planner import PlanError
from tests.planner.conftest import jobs, skipped

VALID = """
version: 1
jobs:
  build:
    image: python:3.12
    steps: ["pip install -e ."]
    paths: ["src/**"]
    caches: [{type: deps, key: "pip:{hash:requirements.txt}", paths: ["~/.cache/pip"]}]
  unit-tests:
    image: python:3.12
    workdir: ./pkg/
    steps: ["pytest -q"]
    needs: [build]
    runs_on: [os:linux, tool:python3]
    paths: ["src/**/*.py", "tests/**"]
    env: {PYTHONHASHSEED: "0", WORKERS: 4}
    secrets: [PYPI_TOKEN]
    artifacts: [{type: junit, path: "reports/*.xml"}]
    policy: {required: true, allow_failure: false, retries: 1, timeout_seconds: 1800}
  docs:
    image: node:20
    steps: ["npm run docs"]
    paths: ["*.md", "docs/"]
  smoke:
    image: alpine:3
    steps: ["true"]
    policy: {required: false, allow_failure: true}
policies:
  runs: {cancel_superseded: true, max_runtime_seconds: 3600, max_concurrency: 4}
limits: {cpu: "2", memory: "4Gi", disk: "20Gi"}
"""


@pytest.fixture
def base(repo):
    return repo.commit(
        {
            "ci.ai.yaml": VALID,
            "requirements.txt": "django\n",
            "src/app/a.py": "1",
            "tests/t.py": "1",
            "pkg/README.md": "x",
            "package.json": "{}",  # discovery is skipped when ci.ai.yaml exists
        }
    )


def test_paths_filters_and_fields(repo, base):
    repo.commit({"src/app/deep/b.py": "1"})
    plan = repo.plan(base)
    data = plan.to_dict()
    assert plan.source == "config" and plan.recipe is None
    run, skip = jobs(plan), skipped(plan)
    assert [j["name"] for j in data["jobs"]] == ["build", "unit-tests", "smoke"]
    assert run["build"]["reason_code"] == "PATHS_MATCHED"
    assert run["build"]["triggered_by"] == ["src/app/deep/b.py"]
    assert run["smoke"]["reason_code"] == "ALWAYS"
    assert skip["docs"] == {
        "name": "docs",
        "project": ".",
        "reason_code": "PATHS_NOT_MATCHED",
        "reason": "no changed path matches *.md, docs/",
    }
    digest = hashlib.sha256(b"django\n").hexdigest()
    assert run["build"]["caches"] == [
        {"type": "deps", "key": f"pip:{digest}", "paths": ["~/.cache/pip"]}
    ]
    unit = run["unit-tests"]
    assert unit["workdir"] == "pkg" and unit["project"] == "pkg"
    assert unit["env"] == {"PYTHONHASHSEED": "0", "WORKERS": "4"}
    assert unit["runs_on"] == ["os:linux", "tool:python3"]
    assert unit["secrets"] == ["PYPI_TOKEN"]
    assert unit["artifacts"] == [{"type": "junit", "path": "reports/*.xml"}]
    assert (unit["retries"], unit["timeout_seconds"], unit["required"]) == (1, 1800, True)
    assert unit["limits"] == {"cpu": "2", "memory": "4Gi", "disk": "20Gi"}
    assert run["smoke"]["allow_failure"] is True and run["smoke"]["required"] is False
    assert run["smoke"]["timeout_seconds"] == 3600
    assert data["policies"] == {
        "cancel_superseded": True,
        "max_runtime_seconds": 3600,
        "max_concurrency": 4,
    }


def test_a_running_job_pulls_in_what_it_needs(repo, base):
    repo.commit({"tests/t.py": "2"})
    run = jobs(repo.plan(base))
    assert run["unit-tests"]["reason_code"] == "PATHS_MATCHED"
    assert run["build"]["reason_code"] == "NEEDED_BY"
    assert run["build"]["reason"] == (
        "needed by unit-tests, which runs because changed paths match src/**/*.py, "
        "tests/**: tests/t.py"
    )


def test_root_only_and_directory_globs(repo, base):
    repo.commit({"README.md": "x"})
    assert jobs(repo.plan(base))["docs"]["reason_code"] == "PATHS_MATCHED"
    base = repo.git("rev-parse", "HEAD")
    repo.commit({"pkg/README.md": "y"})
    assert "docs" in skipped(repo.plan(base))  # *.md is anchored at the root
    base = repo.git("rev-parse", "HEAD")
    repo.commit({"docs/a/b.txt": "y"})
    assert jobs(repo.plan(base))["docs"]["triggered_by"] == ["docs/a/b.txt"]


def test_diff_unavailable_runs_path_filtered_jobs(repo, base):
    plan = repo.plan(None)
    codes = {j["name"]: j["reason_code"] for j in plan.to_dict()["jobs"]}
    assert codes == {
        "build": "DIFF_UNAVAILABLE",
        "unit-tests": "DIFF_UNAVAILABLE",
        "docs": "DIFF_UNAVAILABLE",
        "smoke": "ALWAYS",
    }
    assert plan.source == "config"
    assert plan.fallback_reason == "diff unavailable: no base commit to compare with"


def test_changing_ci_ai_yaml_runs_every_job(repo, base):
    repo.commit({"ci.ai.yaml": VALID + "\n# touched\n"})
    plan = repo.plan(base)
    assert plan.to_dict()["skipped"] == []
    assert jobs(plan)["docs"]["reason_code"] == "GLOBAL_FILE_CHANGED"


def test_full_mode_and_required_jobs(repo, base):
    repo.commit({"src/x.py": "1"})
    assert jobs(repo.plan(base, policy_kw={"planning_mode": "full"}))["docs"]["reason_code"] == (
        "POLICY_FULL"
    )
    run = jobs(repo.plan(base, policy_kw={"required_jobs": ["docs"]}))
    assert run["docs"]["reason_code"] == "REQUIRED_BY_POLICY"


def test_fingerprint_covers_config_and_hashed_files(repo, base):
    first = repo.plan(None).fingerprint
    repo.commit({"requirements.txt": "flask\n"})
    assert repo.plan(None).fingerprint != first


def _problems(repo, text, **policy_kw):
    repo.commit({"ci.ai.yaml": text, "requirements.txt": "x"})
    with pytest.raises(PlanError) as error:
        repo.plan(None, policy_kw=policy_kw)
    assert str(error.value) == "\n".join(error.value.problems)
    return error.value.problems


def job(body: str, name: str = "t") -> str:
    return f"version: 1\njobs:\n  {name}:\n" + "".join(
        f"    {line}\n" for line in body.splitlines()
    )


IMG = "image: python:3.12\nsteps: [pytest]\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version: 1\njobs: {t: {image: a, steps: [b]}}\nstages: []\n", "stages: unknown key"),
        (job(IMG + "step: [x]"), "jobs.t.step: unknown key (did you mean 'steps'?)"),
        (job("image: 3\nsteps: [x]"), "jobs.t.image: must be a string, got an integer"),
        (job("image: a\nsteps: pytest"), "jobs.t.steps: must be a list of strings, got a string"),
        (job("image: a\nsteps: [1]"), "jobs.t.steps[0]: must be a string, got an integer"),
        (job("steps: [x]"), "jobs.t.image: is required"),
        (job("image: a"), "jobs.t.steps: is required"),
        (job("image: a\nsteps: []"), "jobs.t.steps: must not be empty"),
        (job(IMG + "needs: [nope]"), "jobs.t.needs[0]: unknown job 'nope'"),
        (job(IMG + "needs: [t]"), "jobs.t.needs: cycle t -> t"),
        (
            job(IMG + "policy: {retries: '2'}"),
            "jobs.t.policy.retries: must be an integer, got a string",
        ),
        (job(IMG + "policy: {retries: 99}"), "jobs.t.policy.retries: must be between 0 and 10"),
        (
            job(IMG + "policy: {required: yes please}"),
            "jobs.t.policy.required: must be true or false",
        ),
        (job(IMG + "env: {A: [1]}"), "jobs.t.env.A: must be a string, got a list"),
        (job(IMG + "env: {1A: x}"), "jobs.t.env: '1A' is not a valid environment variable name"),
        (
            job(IMG + "secrets: [bad-name]"),
            "jobs.t.secrets[0]: 'bad-name' is not a valid secret name",
        ),
        (
            job(IMG + "workdir: ../up"),
            "jobs.t.workdir: must be a relative path inside the repository",
        ),
        (job(IMG + "paths: [/etc/**]"), "jobs.t.paths[0]: must be relative to the repository root"),
        (job(IMG + "paths: []"), "jobs.t.paths: must not be empty"),
        (job(IMG + "artifacts: [{type: junit}]"), "jobs.t.artifacts[0].path: is required"),
        (job(IMG + "caches: [{type: d, key: k}]"), "jobs.t.caches[0].paths: is required"),
        (job("image: evil:latest\nsteps: [x]"), "jobs.t.image: image 'evil:latest' is not allowed"),
        (job(IMG, name="bad name!"), "jobs: job name 'bad name!' must match"),
        ("version: 2\njobs: {t: {image: a, steps: [b]}}\n", "version: must be 1, got 2"),
        ("jobs: {t: {image: a, steps: [b]}}\n", "version: is required"),
        ("version: 1\n", "jobs: is required"),
        ("version: 1\njobs: {}\n", "jobs: must define at least one job"),
        ("version: 1\njobs: [a]\n", "jobs: must be a mapping of job name to job, got a list"),
        ("- a\n- b\n", "ci.ai.yaml: must be a mapping, got a list"),
        ("", "ci.ai.yaml: the document is empty"),
        ("version: 1\njobs:\n  t: {image: a, steps: [b]\n", "ci.ai.yaml: YAML error at line 4"),
        (
            "version: 1\njobs:\n  t: {image: a, steps: [b]}\n  t: {image: a, steps: [b]}\n",
            "ci.ai.yaml: YAML error at line 4, column 3: duplicate key 't'",
        ),
        (job(IMG) + "limits: {memory: lots}\n", "limits.memory: 'lots' is not a quantity"),
        (
            job(IMG) + "policies: {runs: {max_concurrency: 0}}\n",
            "policies.runs.max_concurrency: must be between 1 and 1000",
        ),
        (job(IMG) + "policies: {runs: {cancel: true}}\n", "policies.runs.cancel: unknown key"),
        (job(IMG + "runs_on: [os linux]"), "jobs.t.runs_on[0]: 'os linux' is not a valid label"),
    ],
)
def test_each_validation_error(repo, text, problem):
    problems = _problems(repo, text, allowed_images=["python:*", "a", "alpine:*"])
    assert any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("pip:{date}", "{date} must be deterministic"),
        ("pip:{timestamp}", "{timestamp} must be deterministic"),
        ("pip:{random}", "{random} must be deterministic"),
        ("pip:$(date +%s)", "must be deterministic: shell or environment expansion"),
        ("pip:${GITHUB_RUN_ID}", "must be deterministic: shell or environment expansion"),
        ("pip:{branch}", "unknown template {branch}; only {hash:FILE} is supported"),
        ("pip:{hash:missing.txt}", "{hash:missing.txt}: 'missing.txt' is not a file"),
        ("pip:{hash:../etc/passwd}", "'../etc/passwd' is not a file in the repository"),
    ],
)
def test_cache_keys_must_be_deterministic(repo, key, problem):
    text = job(IMG + f'caches: [{{type: deps, key: "{key}", paths: [x]}}]')
    problems = _problems(repo, text)
    assert len(problems) == 1
    assert problems[0].startswith("jobs.t.caches[0].key: ") and problem in problems[0]


def test_every_problem_is_listed_at_once(repo):
    text = """version: 3
jobs:
  a: {image: evil, steps: [], needs: [b]}
  b: {image: python:3.12, steps: [x], needs: [a], colour: red}
"""
    problems = _problems(repo, text, allowed_images=["python:*"])
    assert problems == [
        "version: must be 1, got 3",
        "jobs.a.image: image 'evil' is not allowed by the repository policy (allowed: python:*)",
        "jobs.a.steps: must not be empty",
        "jobs.b.colour: unknown key; allowed: name, image, workdir, steps, needs, runs_on, paths, "
        "env, secrets, artifacts, caches, policy",
        "jobs.a.needs: cycle a -> b -> a",
    ]


def test_too_large_and_too_many_jobs(repo):
    problems = _problems(repo, job(IMG) + "#" * 300, max_config_bytes=100)
    assert problems == [
        f"ci.ai.yaml: file is {len(job(IMG)) + 300} bytes, more than the limit of 100 bytes"
    ]
    many = "version: 1\njobs:\n" + "".join(f"  j{i}: {{image: a, steps: [x]}}\n" for i in range(4))
    assert _problems(repo, many, max_jobs=3) == ["jobs: 4 jobs, more than the policy limit of 3"]


def test_yaml_alias_bomb_is_refused(repo):
    bomb = 'version: 1\na: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for level in "bcdefghij":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    problems = _problems(repo, bomb)
    assert problems == [
        "ci.ai.yaml: YAML error at line 3, column 8: aliases (*name) are not allowed"
    ]


def test_a_config_symlink_is_followed_only_inside_the_repository(repo, tmp_path):
    repo.commit({"ci/real.yaml": job(IMG)})
    (repo.path / "ci.ai.yaml").symlink_to("ci/real.yaml")
    repo.commit()
    assert repo.plan(None).source == "config"
    (repo.path / "ci.ai.yaml").unlink()
    (repo.path / "ci.ai.yaml").symlink_to(tmp_path / "outside.yaml")
    repo.commit()
    with pytest.raises(PlanError, match="ci.ai.yaml: a symlink to a path outside the repo"):
        repo.plan(None)


def test_a_job_may_declare_a_display_name(repo):
    body = "version: 1\njobs:\n  ut:\n    name: Unit tests (py3.12)\n    image: a\n    steps: [x]\n"
    head = repo.commit({"ci.ai.yaml": body})
    assert jobs(repo.plan(None, head))["ut"]["title"] == "Unit tests (py3.12)"
    for bad, why in (("7", "must be a string"), ('""', "must not be empty"), ("x" * 101, "100")):
        head = repo.commit({"ci.ai.yaml": body.replace("Unit tests (py3.12)", bad)})
        with pytest.raises(PlanError) as exc:
            repo.plan(None, head)
        assert "jobs.ut.name" in str(exc.value) and why in str(exc.value)
