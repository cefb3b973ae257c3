"""The migration that adds test identities fills them in for results parsed before it."""

import importlib

from django.apps import apps as django_apps

from apps.artifacts.models import TestReport, TestResult, test_key
from tests.pages.factory import JUNIT_FAIL, run_attempt

migration = importlib.import_module("apps.artifacts.migrations.0004_i17_test_history")


def test_it_backfills_test_keys_and_counts(public, make_run, runner, artifact_store):
    run = make_run()
    run_attempt(runner, status="FAILED", exit_code=1, junit=JUNIT_FAIL)
    expected = {r.pk: r.test_key for r in TestResult.objects.all()}
    assert len(set(expected.values())) == 3
    TestResult.objects.update(test_key=0)
    TestReport.objects.update(seen=0)
    migration.backfill(django_apps, None)
    assert {r.pk: r.test_key for r in TestResult.objects.all()} == expected
    row = TestResult.objects.get(name="test_divides")
    assert row.test_key == test_key(
        run.repository_id, "build", "pkg.tests", row.classname, row.name
    )
    assert TestReport.objects.get().seen == 3
