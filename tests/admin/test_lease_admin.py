"""Leases in admin are read-only; an operator may revoke one: the lease ends REVOKED,
the attempt goes STALE and is retried, the runner's next message is refused."""

from apps.audit.models import AuditEvent
from apps.runners.models import Lease
from apps.runs.models import JobAttempt
from tests.admin.conftest import action, messages_of
from tests.pages.factory import lease

LIST = "/admin/runners/lease/"


def test_it_revokes_a_lease_and_retries_its_attempt(admin, runner, make_run):
    run = make_run()
    g = lease(runner)
    row = Lease.objects.get(attempt_id=g["attempt_id"])
    r = action(admin, LIST, "revoke", [row.pk])
    assert "revoked 1 lease(s)" in messages_of(r)
    row.refresh_from_db()
    assert row.state == "REVOKED"
    attempts = list(JobAttempt.objects.filter(run=run).order_by("attempt_number"))
    assert [a.state for a in attempts] == ["STALE", "QUEUED"]
    assert attempts[1].infra_retry
    event = AuditEvent.objects.get(action="lease.revoke")
    assert event.actor == "user:olga" and event.target == row.lease_prefix
    hb = runner.client.post(
        "/api/v1/internal/heartbeat", {"lease_id": g["lease_id"]}, format="json"
    )
    assert hb.status_code in (409, 410) and "REVOKED" in hb.content.decode()
    r = action(admin, LIST, "revoke", [row.pk])  # an ended lease: nothing happens
    assert "already ended" in " ".join(messages_of(r))
    assert AuditEvent.objects.filter(action="lease.revoke").count() == 1


def test_it_shows_leases_read_only(admin, runner, make_run):
    make_run()
    g = lease(runner)
    row = Lease.objects.get(attempt_id=g["attempt_id"])
    page = admin.get(f"{LIST}{row.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and g["lease_id"] not in html
    assert admin.post(f"{LIST}{row.pk}/change/", {"state": "COMPLETED"}).status_code == 403
    assert admin.post(f"{LIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin.get(f"{LIST}add/").status_code == 403
    row.refresh_from_db()
    assert row.state == "GRANTED"
    listing = admin.get(LIST).content.decode()
    assert "delete_selected" not in listing and "Revoke selected leases" in listing
