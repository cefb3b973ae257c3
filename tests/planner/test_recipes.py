"""Recipes: reused while the fingerprint matches (still impact-filtered), ignored when
the build files changed or the recipe is malformed."""

import copy

from tests.planner.conftest import codes_of, jobs, package

FILES = {
    "a/package.json": package({"name": "a"}),
    "b/package.json": package({"name": "b", "dependencies": {"a": "1"}}),
    "c/go.mod": "module c\n",
}


def test_matching_recipe_is_used_and_still_filtered(repo):
    base = repo.commit(FILES)
    repo.commit({"a/x.js": "1"})
    discovered = repo.plan(base)
    assert discovered.source == "discovery"
    assert discovered.recipe["fingerprint"] == discovered.fingerprint
    reused = repo.plan(base, recipe=discovered.recipe)
    assert reused.source == "recipe"
    assert codes_of(reused) == {"a": "FILE_CHANGED", "b": "DEPENDENCY_CHANGED", "c": "NOT_AFFECTED"}
    assert reused.to_dict()["jobs"] == discovered.to_dict()["jobs"]
    assert "saved recipe" in reused.explain


def test_the_recipe_really_drives_the_plan(repo):
    base = repo.commit(FILES)
    repo.commit({"a/x.js": "1"})
    recipe = copy.deepcopy(repo.plan(base).recipe)
    for project in recipe["projects"]:
        project["steps"]["test"] = ["echo from-recipe"]
    assert jobs(repo.plan(base, recipe=recipe))["a:test"]["steps"] == ["echo from-recipe"]


def test_changed_build_files_fall_back_to_discovery(repo):
    repo.commit(FILES)
    recipe = repo.plan(None).recipe
    base = repo.commit({"a/src/x.js": "not a build file"})
    assert repo.plan(None).fingerprint == recipe["fingerprint"]
    repo.commit({"b/package.json": package({"name": "b"})})
    plan = repo.plan(base, recipe=recipe)
    assert plan.source == "discovery"
    assert plan.fingerprint != recipe["fingerprint"]
    assert codes_of(plan)["a"] == "NOT_AFFECTED"  # the new manifest has no edge to a
    # with a recipe the build files are parsed only once it proves stale: same plan
    assert plan.to_json() == repo.plan(base).to_json()
    repo.commit({"yarn.lock": ""})  # presence-only files count too
    assert repo.plan(None).fingerprint != plan.fingerprint


def test_malformed_recipes_are_ignored(repo):
    base = repo.commit(FILES)
    repo.commit({"a/x.js": "1"})
    good = repo.plan(base).recipe
    broken = [
        {**good, "projects": [{"name": "a"}]},
        {**good, "projects": "nope"},
        {**good, "version": 99},
        {**good, "projects": [{**good["projects"][0], "deps": ["ghost"]}]},
        "not a dict",
    ]
    expected = repo.plan(base).to_json()
    for recipe in broken:
        plan = repo.plan(base, recipe=recipe)
        assert plan.source == "discovery" and plan.to_json() == expected


def test_unavailable_diff_with_a_recipe_is_a_fallback_plan(repo):
    repo.commit(FILES)
    recipe = repo.plan(None).recipe
    plan = repo.plan(None, recipe=recipe)
    assert plan.source == "fallback"
    assert plan.recipe == recipe
