"""Runners in admin: enable, disable, drain through the audited action; last seen and
the current lease on the list; no hand edits of their state."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.runners.models import Lease, Runner
from tests.admin.conftest import action, messages_of
from tests.pages.factory import lease
from tests.protocol.proto import Proto

LIST = "/admin/runners/runner/"


def test_it_disables_drains_and_enables_runners_with_an_audit_trail(admin, runner, make_run):
    make_run()
    r = action(admin, LIST, "disable", [runner.pk])
    assert "disabled 1 runner(s)" in messages_of(r)
    assert Runner.objects.get(pk=runner.pk).enabled is False
    got = Proto(runner).lease()
    assert got.status_code != 200  # a disabled runner gets no work
    action(admin, LIST, "enable", [runner.pk])
    action(admin, LIST, "drain", [runner.pk])
    assert Runner.objects.get(pk=runner.pk).draining is True
    got = Proto(runner).lease()
    assert got.status_code != 200  # a draining runner takes no new job
    action(admin, LIST, "undrain", [runner.pk])
    assert lease(runner)["job_spec"]["name"] == "build"
    updates = AuditEvent.objects.filter(action="runner.update", actor="user:olga")
    assert [e.details for e in updates.order_by("id")] == [
        {"enabled": False},
        {"enabled": True},
        {"draining": True},
        {"draining": False},
    ]


def test_it_lists_last_seen_and_the_current_lease_in_bounded_queries(
    admin, runner_factory, make_run
):
    make_run()
    busy = runner_factory("busy")
    g = lease(busy)
    for i in range(5):
        runner_factory(f"idle{i}")
    with CaptureQueriesContext(connection) as few:
        html = admin.get(LIST).content.decode()
    prefix = Lease.objects.get(attempt_id=g["attempt_id"]).lease_prefix
    assert f"{prefix} (run {g['run_id']}, build)" in html
    for i in range(10):
        runner_factory(f"more{i}")
    with CaptureQueriesContext(connection) as many:
        admin.get(LIST)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_it_keeps_runner_state_read_only_on_the_change_page(admin, runner):
    page = admin.get(f"{LIST}{runner.pk}/change/").content.decode()
    assert 'name="enabled"' not in page and 'name="draining"' not in page
    assert admin.get(f"{LIST}add/").status_code == 403


def test_revoking_a_runner_stops_its_token(admin, runner):
    r = action(admin, LIST, "revoke", [runner.pk])
    assert "revoked 1 runner(s)" in messages_of(r)
    got = Proto(runner).lease()
    assert got.status_code == 401
