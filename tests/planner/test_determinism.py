"""Same inputs, byte-identical plan JSON: across calls and across processes (string
hashing is randomised per process, so any unsorted set would show up here)."""

import json
import os
import subprocess
import sys

from tests.planner.conftest import jobs, package

FILES = {
    "go.work": "go 1.22\nuse ./a\n",
    "a/go.mod": "module a\nrequire b v0\n",
    "b/go.mod": "module b\n",
    "b/b.go": "package b\n",
    "c/package.json": package(
        {"name": "c", "dependencies": {"d": "1", "e": "1"}, "scripts": {"build": "tsc"}}
    ),
    "d/package.json": package({"name": "d"}),
    "e/package.json": package(
        {"name": "e", "dependencies": {"d": "1"}, "scripts": {"test": "jest"}}
    ),
    "f/pyproject.toml": '[project]\nname = "f"\ndependencies = ["g", "h"]\n',
    "g/pyproject.toml": '[project]\nname = "g"\n',
    "h/setup.cfg": "[metadata]\nname = h\n[options]\ninstall_requires = g\n",
    "i/Cargo.toml": '[package]\nname = "i"\n[dependencies]\nj = { path = "../j" }\n',
    "j/Cargo.toml": '[package]\nname = "j"\n',
    "Makefile": "build:\n\ttrue\ntest:\n\ttrue\n",
    "bad/package.json": "{",
}

SCRIPT = """
import sys
from planner import PlannerPolicy, plan_repository
plan = plan_repository(sys.argv[1], "HEAD", sys.argv[2], PlannerPolicy(planning_mode="diff"))
sys.stdout.buffer.write(plan.to_json())
"""


def test_plan_twice_gives_identical_bytes(repo):
    base = repo.commit(FILES)
    repo.commit({"d/x.js": "1", "g/x.py": "1", "j/src/lib.rs": "", "README.md": "x"})
    first, second = repo.plan(base), repo.plan(base)
    assert first.to_json() == second.to_json()
    assert first.recipe == second.recipe
    assert set(jobs(first)) >= {"c:build", "e:test", "f:lint", "h:build", "i:test", "j:build"}


def test_identical_bytes_across_processes_with_different_hash_seeds(repo):
    base = repo.commit(FILES)
    repo.commit({"d/x.js": "1", "g/x.py": "1", "notes.txt": "unknown"})
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(repo.path), base],
            env=env,
            capture_output=True,
            check=True,
            cwd=os.getcwd(),
        )
        outputs.add(proc.stdout)
    assert len(outputs) == 1
    assert outputs.pop() == repo.plan(base).to_json()


def test_canonical_json(repo):
    repo.commit(FILES)
    raw = repo.plan(None).to_json()
    assert (
        raw
        == json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
