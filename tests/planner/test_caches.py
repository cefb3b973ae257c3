"""Discovered jobs declare their ecosystem's caches, keyed by the lockfile's content."""

import pytest

from tests.planner.conftest import jobs, package

FILES = {
    "package.json": package({"name": "mono", "workspaces": ["web"]}),
    "pnpm-lock.yaml": "lockfileVersion: 9\n",
    "web/package.json": package({"name": "web"}),
    "py/pyproject.toml": '[project]\nname = "py"\n',
    "py/uv.lock": "version = 1\n",
    "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\n',
    "Cargo.lock": "version = 3\n",
    "crates/a/Cargo.toml": '[package]\nname = "a"\n',
    "svc/go.mod": "module svc\n",
    "svc/go.sum": "x v1 h1:abc\n",
    "jvm/pom.xml": "<project><artifactId>j</artifactId></project>",
    "net/App.csproj": "<Project />",
}


def _caches(plan, name):
    return {c["key"].split(":")[0]: c for c in jobs(plan)[name]["caches"]}


def test_each_ecosystem_declares_its_caches_keyed_by_the_lockfile(repo):
    repo.commit(FILES)
    plan = repo.plan(None)
    oid = repo.git("rev-parse", "HEAD:pnpm-lock.yaml")
    assert _caches(plan, "web:build")["pnpm-store"] == {
        "type": "deps",
        "key": f"pnpm-store:pnpm-lock.yaml:{oid}",
        "paths": ["~/.local/share/pnpm/store"],
    }
    assert _caches(plan, "py:test")["uv-cache"]["paths"] == ["~/.cache/uv"]
    rust = _caches(plan, "crates/a:build")
    assert rust["cargo-registry"]["key"].startswith("cargo-registry:Cargo.lock:")
    assert rust["cargo-target"]["key"].startswith("cargo-target:crates/a:Cargo.lock:")
    assert rust["cargo-target"]["paths"] == ["target"]
    assert set(_caches(plan, "svc:test")) == {"go-mod", "go-build"}
    assert _caches(plan, "jvm:build")["maven-repository"]["paths"] == ["~/.m2/repository"]
    assert _caches(plan, "net:build")["nuget-packages"]["paths"] == ["~/.nuget/packages"]


def test_a_changed_lockfile_changes_the_key_and_caching_off_declares_none(repo):
    repo.commit(FILES)
    before = _caches(repo.plan(None), "svc:build")["go-mod"]["key"]
    repo.commit({"svc/go.sum": "x v2 h1:def\n"})
    after = _caches(repo.plan(None), "svc:build")["go-mod"]["key"]
    assert before != after
    plan = repo.plan(None, policy_kw={"caching_enabled": False})
    assert all(j["caches"] == [] for j in jobs(plan).values())


@pytest.mark.django_db
def test_forks_get_them_read_only_and_the_policy_switch_removes_them(repo):
    from apps.policies.effective import EffectivePolicy
    from apps.runners.jobspec import _caches as leased

    repo.commit(FILES)
    spec = jobs(repo.plan(None))["svc:build"]
    policy = EffectivePolicy.__new__(EffectivePolicy)
    object.__setattr__(policy, "caching_enabled", True)
    assert all(c["read_only"] for c in leased(spec, policy, "dev", fork=True))
    assert not any(c["read_only"] for c in leased(spec, policy, "dev", fork=False))
    object.__setattr__(policy, "caching_enabled", False)
    assert leased(spec, policy, "dev", fork=False) == []
