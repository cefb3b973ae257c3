"""The retention admin action: a dry run shows counts and deletes nothing; the real one
deletes and is audited. Non-staff users cannot reach it."""

from datetime import timedelta

import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from apps.artifacts.models import Artifact
from apps.audit.models import AuditEvent
from tests.admin.conftest import action, messages_of
from tests.pages.factory import run_attempt

LIST = "/admin/runs/repository/"


def test_it_runs_retention_from_admin_with_a_dry_run_first(
    admin, repo, make_run, runner, artifact_store
):
    with time_machine.travel(timezone.now() - timedelta(days=90), tick=False):
        make_run()
        run_attempt(runner, files={"a.bin": b"1234"})
    r = action(admin, LIST, "retention_dry_run", [repo.pk])
    assert any(
        m.startswith("demo: would delete 1 log(s), 0 log chunk(s), 1 artifact(s)")
        for m in messages_of(r)
    )
    assert not Artifact.objects.filter(deleted_at__isnull=False).exists()
    r = action(admin, LIST, "retention_cleanup", [repo.pk])
    assert any(
        m.startswith("demo: deleted 1 log(s), 0 log chunk(s), 1 artifact(s)")
        for m in messages_of(r)
    )
    assert Artifact.objects.filter(deleted_at__isnull=True).count() == 0
    assert AuditEvent.objects.get(action="retention.cleanup").actor == "user:olga"


def test_non_staff_users_cannot_reach_the_admin_actions(repo):
    c = Client()
    c.force_login(User.objects.create_user("mia"))
    r = c.post(LIST, {"action": "retention_cleanup", "_selected_action": [repo.pk]})
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    assert not AuditEvent.objects.filter(action__startswith="retention").exists()
