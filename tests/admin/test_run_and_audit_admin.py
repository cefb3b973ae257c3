"""Runs can be cancelled from admin; the audit log is read-only, filterable and cannot be
deleted."""

from apps.audit.actions import record
from apps.audit.models import AuditEvent
from tests.admin.conftest import action, messages_of


def test_it_cancels_runs_from_admin(admin, make_run):
    run = make_run()
    r = action(admin, "/admin/runs/run/", "cancel_runs", [run.pk])
    assert "cancellation requested for 1 run(s)" in messages_of(r)
    run.refresh_from_db()
    assert run.state in ("CANCEL_REQUESTED", "CANCELED")
    assert AuditEvent.objects.filter(action="run.cancel", actor="user:olga", run=run).exists()
    page = admin.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    assert f'href="/runs/{run.pk}"' in page  # "view on site": the run page


def test_the_audit_log_is_read_only_filterable_and_undeletable(admin, repo):
    record("retention.run", actor="beat", logs=3)
    record("lease.revoke", actor="user:olga", repository=repo, target="abc")
    event = AuditEvent.objects.get(action="lease.revoke")
    listing = admin.get("/admin/audit/auditevent/", {"action": "lease.revoke"})
    html = listing.content.decode()
    assert "user:olga" in html and "beat" not in html
    assert "delete_selected" not in html
    found = admin.get("/admin/audit/auditevent/", {"q": "beat"}).content.decode()
    assert "retention.run" in found
    page = admin.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin.post(f"/admin/audit/auditevent/{event.pk}/change/", {}).status_code == 403
    assert (
        admin.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert admin.get("/admin/audit/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_rows_outlive_a_deleted_run(admin, make_run, repo):
    from apps.runs.cancelling import do_cancel_run

    run = make_run()
    do_cancel_run(run, actor="user:olga")
    before = list(AuditEvent.objects.filter(run_id=run.pk).values())
    assert before and all(e["subject"] == f"run {run.pk} of demo" for e in before)
    type(run).objects.filter(pk=run.pk).delete()  # the collector admin's delete uses
    assert list(AuditEvent.objects.filter(run_id=run.pk).values()) == before  # run_id kept
    listing = admin.get("/admin/audit/auditevent/", {"q": f"run {run.pk} of demo"})
    assert listing.status_code == 200 and "run.cancel" in listing.content.decode()
    page = admin.get(f"/admin/audit/auditevent/{before[0]['id']}/change/")
    assert page.status_code == 200


def test_audit_rows_outlive_their_repository(make_run, repo):
    run = make_run()
    record("lease.revoke", actor="user:olga", run=run, target="abc")
    record("policy.update", actor="user:olga", repository=repo)
    before = list(AuditEvent.objects.order_by("id").values())
    repo.delete()
    assert list(AuditEvent.objects.order_by("id").values()) == before
    subjects = {e["action"]: e["subject"] for e in before}
    assert subjects["lease.revoke"] == f"run {run.pk} of demo"
    assert subjects["policy.update"] == "repository demo"
