"""Fixture monorepos built with real git in a temp dir; no database, no network."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from planner import Plan, PlannerPolicy, plan_repository

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    """A throwaway git repository: write files, commit, plan."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        out = subprocess.run(
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
            cwd=self.path,
            env=GIT_ENV,
            check=True,
            capture_output=True,
        )
        return out.stdout.decode().strip()

    def write(self, files: dict[str, str | bytes | None]) -> "Repo":
        for name, content in files.items():
            target = self.path / name
            if content is None or target.is_symlink():
                target.unlink()  # never write through a symlink the test planted
            if content is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        return self

    def commit(self, files: dict[str, str | bytes | None] | None = None, msg: str = "c") -> str:
        self.write(files or {})
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", msg)
        return self.git("rev-parse", "HEAD")

    def move(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def plan(self, base: str | None, head: str = "HEAD", **kwargs) -> Plan:
        policy = kwargs.pop("policy", None) or PlannerPolicy(**kwargs.pop("policy_kw", {}))
        return plan_repository(str(self.path), head, base, policy, **kwargs)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


SCRIPTS = {"build": "tsc", "test": "jest", "lint": "eslint ."}


def package(data: dict) -> str:
    """A package.json with a build, test and lint script unless ``data`` names its own
    (a package without scripts gets no jobs: NO_SCRIPT)."""
    return json.dumps({"scripts": SCRIPTS, **data})


def jobs(plan: Plan) -> dict[str, dict]:
    return {j["name"]: j for j in plan.to_dict()["jobs"]}


def skipped(plan: Plan) -> dict[str, dict]:
    return {s["name"]: s for s in plan.to_dict()["skipped"]}


def running_projects(plan: Plan) -> set[str]:
    return {j["project"] for j in plan.to_dict()["jobs"]}


def codes_of(plan: Plan) -> dict[str, str]:
    """project -> the reason code of its jobs (a running job's first, NO_SCRIPT only when
    the project has no script at all)."""
    data = plan.to_dict()
    out = {
        s["project"]: s["reason_code"] for s in data["skipped"] if s["reason_code"] == "NO_SCRIPT"
    }
    out.update(
        {s["project"]: s["reason_code"] for s in data["skipped"] if s["reason_code"] != "NO_SCRIPT"}
    )
    out.update({j["project"]: j["reason_code"] for j in data["jobs"]})
    return out
