"""Manifest patterns stay linear on hostile files up to the 1 MiB a manifest may be
(no timing asserts: before their fixes these took seconds to hours)."""

import pytest

from planner.classify import _union
from planner.discovery import gradle, make
from planner.globs import glob_match

MIB = 1024 * 1024


def test_make_targets_of_a_hostile_makefile():
    # Every line start rescanned the lines after it: 19 s for 64 KiB of "\n;".
    assert make.targets("\n;" * (MIB // 2)) == set()
    assert make.targets("a\n" * (MIB // 2)) == set()
    assert make.targets("a\\\n" * (MIB // 3)) == set()  # one long continued line


def test_make_targets_on_logical_lines():
    text = "build \\\n  test: deps\nCC := gcc\nlint:: a\n\techo x: y\nendif\ncheck: x\n"
    assert {"build", "test", "lint", "check"} <= make.targets(text)
    assert "endif" not in make.targets(text)  # a bare word is no target of the next rule
    assert "CC" not in make.targets(text) and "echo" not in make.targets(text)


def test_gradle_includes_of_a_hostile_settings_file():
    # ^\s* crossed blank lines (6 s for 64 KiB); two \s* around "(" split blanks (26 s).
    assert gradle._settings("\n" * MIB + "  include ':a'\n", "x") == {":a": "x/a"}
    assert gradle._INCLUDE_BUILD.findall("includeBuild" + " " * MIB) == []
    assert gradle._INCLUDE_BUILD.findall("includeBuild ( '../x' )") == ["../x"]


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("*a*a*a*a*b", "a" * 255),  # 8.3 s when each star was a plain [^/]*
        ("*a*a*a*a*a*a*a*b", "a" * 255),  # hours
        ("**/a/**/a/**/a/**/a/**/b", "a/" * 400 + "c"),  # every split of 400 levels
        ("src/**/*a*a*a*b/**/*.py", "src/" + ("a" * 200 + "/") * 20 + "x.rs"),
    ],
)
def test_hostile_globs_fail_quickly(pattern, path):
    assert not glob_match(pattern, path)
    assert not _union((pattern, "x/**")).fullmatch(path)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*a*b", "xaab", True),
        ("*a*b", "xaba", False),
        ("a*b*c", "abcbc", True),
        ("**/x/**/y", "x/y", True),
        ("**/x/**/y", "a/x/b/x/c/y", True),
        ("**/x/**/y", "a/x/b/y/z", False),
        ("**/x/**", "a/x/", True),
        ("a/**/b/**", "a/c/b/d/e", True),
        ("*.[!c]s", "x.ts", True),
        ("*.[!c]s", "x.cs", False),
        ("dir/", "dir/a/b", True),
    ],
)
def test_globs_still_match_what_they_did(pattern, path, expected):
    assert glob_match(pattern, path) is expected
