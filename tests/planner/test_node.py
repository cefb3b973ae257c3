"""Node: npm/yarn workspaces, pnpm-workspace.yaml, edges by workspace package name."""

import json

from tests.planner.conftest import SCRIPTS, codes_of, jobs, skipped


def pkg(name, deps=None, dev=None, scripts=SCRIPTS, **extra):
    data = {"name": name, **extra}
    if deps:
        data["dependencies"] = deps
    if dev:
        data["devDependencies"] = dev
    if scripts:
        data["scripts"] = scripts
    return json.dumps(data, indent=2)


def _npm(repo):
    return repo.commit(
        {
            "package.json": pkg("mono", private=True, workspaces=["packages/*", "apps/*"]),
            "package-lock.json": "{}",
            "packages/ui/package.json": pkg("@m/ui", scripts={"build": "tsc", "test": "jest"}),
            "packages/ui/index.js": "1",
            "packages/util/package.json": pkg("@m/util"),
            "packages/util/index.js": "1",
            "apps/web/package.json": pkg("web", deps={"@m/ui": "*", "react": "18"}),
            "apps/web/index.js": "1",
            "apps/admin/package.json": pkg("admin", dev={"web": "file:../web"}),
            "apps/admin/index.js": "1",
        }
    )


def test_it_links_workspace_packages_by_name_and_file_paths(repo):
    base = _npm(repo)
    repo.commit({"packages/ui/index.js": "2"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes == {
        "packages/ui": "FILE_CHANGED",
        "apps/web": "DEPENDENCY_CHANGED",
        "apps/admin": "DEPENDENCY_CHANGED",
        "packages/util": "NOT_AFFECTED",
    }
    admin = jobs(plan)["apps/admin:build"]
    assert admin["reason"].endswith(
        "apps/admin depends on packages/ui via apps/web "
        "(apps/admin on apps/web through file: protocol)"
    )
    assert skipped(plan)["packages/util:test"]["reason"] == (
        "no change in packages/util or its dependencies"
    )


def test_commands_follow_the_lockfile_and_scripts(repo):
    _npm(repo)
    plan = repo.plan(None)
    ui = jobs(plan)
    assert ui["packages/ui:build"]["steps"] == ["npm ci", "npm run build"]
    assert ui["packages/ui:test"]["steps"] == ["npm ci", "npm run test"]
    assert ui["packages/ui:test"]["needs"] == ["packages/ui:build"]
    assert skipped(plan)["packages/ui:lint"]["reason_code"] == "NO_SCRIPT"
    assert skipped(plan)["packages/ui:lint"]["reason"] == "nothing to lint: no lint script"
    assert ui["apps/web:lint"]["allow_failure"] is True
    assert ui["apps/web:lint"]["required"] is False
    assert "." not in {j["project"] for j in plan.to_dict()["jobs"]}  # the root aggregates


def test_root_manifest_and_lockfile_are_global(repo):
    base = _npm(repo)
    repo.commit({"package-lock.json": '{"v": 2}'})
    assert set(codes_of(repo.plan(base)).values()) == {"GLOBAL_FILE_CHANGED"}


def test_pnpm_workspace(repo):
    base = repo.commit(
        {
            "pnpm-workspace.yaml": "packages:\n  - 'libs/*'\n",
            "pnpm-lock.yaml": "lockfileVersion: 9\n",
            "package.json": pkg("root", private=True),
            "libs/a/package.json": pkg("a", scripts={"lint": "eslint ."}),
            "libs/b/package.json": pkg("b", deps={"a": "workspace:*"}),
            "libs/b/x.ts": "1",
        }
    )
    middle = repo.commit({"libs/a/src/index.ts": "export {}"})
    plan = repo.plan(base, middle)
    assert codes_of(plan) == {"libs/a": "FILE_CHANGED", "libs/b": "DEPENDENCY_CHANGED"}
    assert jobs(plan)["libs/a:lint"]["steps"] == [
        "corepack enable && pnpm install --frozen-lockfile",
        "pnpm run lint",
    ]
    head = repo.commit({"pnpm-workspace.yaml": "packages:\n  - 'libs/**'\n"})
    assert set(codes_of(repo.plan(middle, head)).values()) == {"GLOBAL_FILE_CHANGED"}


def test_yarn_workspaces_object_form(repo):
    base = repo.commit(
        {
            "package.json": pkg("r", workspaces={"packages": ["pkgs/*"]}),
            "yarn.lock": "",
            "pkgs/one/package.json": pkg("one", scripts={"test": "t"}),
            "pkgs/two/package.json": pkg("two"),
        }
    )
    repo.commit({"pkgs/two/a.js": "1"})
    plan = repo.plan(base)
    assert codes_of(plan) == {"pkgs/two": "FILE_CHANGED", "pkgs/one": "NOT_AFFECTED"}
    assert jobs(plan)["pkgs/two:build"]["steps"][0].endswith("yarn install --frozen-lockfile")


def test_protocols_and_overrides_make_dependents(repo):
    base = repo.commit(
        {
            "package.json": pkg(
                "mono",
                workspaces=["packages/*", "apps/*"],
                resolutions={"**/left-pad": "portal:./packages/pad"},
                overrides={"react": {"scheduler": "file:./packages/sched"}},
            ),
            "yarn.lock": "",
            "packages/pad/package.json": pkg("left-pad"),
            "packages/sched/package.json": pkg("sched"),
            "packages/ui/package.json": pkg("@m/ui"),
            "apps/a/package.json": pkg("a", deps={"left-pad": "^1.3.0"}),
            "apps/b/package.json": pkg("b", dev={"scheduler": "0.23"}),
            "apps/c/package.json": pkg("c", deps={"ui": "workspace:@m/ui@*"}),
            "apps/d/package.json": pkg("d", deps={"x": "link:../../packages/ui"}),
            "apps/e/package.json": pkg("e", deps={"lodash": "4"}),
        }
    )
    repo.commit({"packages/pad/index.js": "2"})
    plan = repo.plan(base)
    assert codes_of(plan)["apps/a"] == "DEPENDENCY_CHANGED"
    assert codes_of(plan)["apps/e"] == "NOT_AFFECTED"
    assert jobs(plan)["apps/a:build"]["reason"].endswith(
        "apps/a depends on packages/pad through resolutions"
    )
    head = repo.commit({"packages/sched/index.js": "2", "packages/ui/index.js": "2"})
    plan = repo.plan(repo.git("rev-parse", "HEAD~1"), head)
    reasons = {n: j["reason"] for n, j in jobs(plan).items()}
    assert reasons["apps/b:build"].endswith("apps/b depends on packages/sched through overrides")
    assert reasons["apps/c:build"].endswith(
        "apps/c depends on packages/ui through workspace: protocol"
    )
    assert reasons["apps/d:build"].endswith("apps/d depends on packages/ui through link: protocol")
    assert codes_of(plan)["apps/e"] == "NOT_AFFECTED"


def test_pnpm_overrides_and_an_override_leaving_the_repository(repo):
    base = repo.commit(
        {
            "package.json": pkg("mono", pnpm={"overrides": {"bar>foo@1": "link:./libs/foo"}}),
            "pnpm-workspace.yaml": "packages: ['libs/*', 'apps/*']\n"
            "overrides:\n  zed: 'file:../../outside'\n",
            "libs/foo/package.json": pkg("foo-impl"),
            "apps/x/package.json": pkg("x", deps={"foo": "1"}),
            "apps/y/package.json": pkg("y", deps={"zed": "1"}),
        }
    )
    repo.commit({"libs/foo/a.js": "1"})
    plan = repo.plan(base)
    assert codes_of(plan)["apps/x"] == "DEPENDENCY_CHANGED"
    assert jobs(plan)["apps/x:test"]["reason"].endswith("through pnpm.overrides")
    assert codes_of(plan)["apps/y"] == "MANIFEST_UNREADABLE"
    assert "zed: pnpm-workspace.yaml overrides 'file:../../outside' points outside" in (
        plan.fallback_reason
    )
