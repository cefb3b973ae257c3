"""Operators change a repository's images, egress, timeouts, concurrency and retention
inline on the repository, with help texts and validation, and the next run or lease
follows the new policy."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.artifacts.models import Artifact
from apps.artifacts.retention import cleanup
from apps.audit.models import AuditEvent
from apps.policies.models import Policy
from apps.runs.models import Repository
from tests.admin.conftest import form_data
from tests.conftest import job_spec
from tests.pages.factory import lease, run_attempt
from tests.protocol.proto import Proto


def edit_policy(admin, repo, **fields):
    url = f"/admin/runs/repository/{repo.pk}/change/"
    data = form_data(admin.get(url))
    for name, value in fields.items():
        key = f"policy-0-{name}"
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return admin.post(url, data)


def errors(response) -> str:
    if response.status_code == 302:
        return ""
    formset = response.context["inline_admin_formsets"][0].formset
    return str(formset.errors) + str(response.context["adminform"].form.errors)


def test_it_shows_every_knob_with_its_help_text(admin, repo):
    html = admin.get(f"/admin/runs/repository/{repo.pk}/change/").content.decode()
    for section in ("Images", "Network egress", "Time limits", "Concurrency", "Retention"):
        assert section in html
    for field in (
        "allowed_images",
        "egress_mode",
        "egress_allow",
        "job_timeout_seconds",
        "run_timeout_seconds",
        "max_concurrent_jobs",
        "log_retention_days",
        "artifact_retention_days",
    ):
        assert f'name="policy-0-{field}"' in html
    assert "Empty: the global default (3600s)" in html
    assert "Logs older than this are deleted" in html


def test_it_saves_a_valid_policy_and_audits_the_change(admin, repo):
    r = edit_policy(
        admin,
        repo,
        allowed_images='["python:3.*", "node:20*", "python:3.*"]',
        egress_mode="allowlist",
        egress_allow='["pypi.org", "*.githubusercontent.com:443"]',
        job_timeout_seconds="120",
        max_concurrent_jobs="1",
        log_retention_days="3",
        artifact_retention_days="9",
    )
    assert r.status_code == 302, errors(r)
    p = Policy.objects.get(repository=repo)
    assert p.allowed_images == ["python:3.*", "node:20*"]  # duplicates dropped
    assert (p.egress_mode, p.egress_allow) == (
        "allowlist",
        ["pypi.org", "*.githubusercontent.com:443"],
    )
    assert (p.job_timeout_seconds, p.max_concurrent_jobs) == (120, 1)
    assert (p.log_retention_days, p.artifact_retention_days) == (3, 9)
    event = AuditEvent.objects.get(action="policy.update")
    assert event.actor == "user:olga" and event.repository == repo
    assert "egress_mode" in event.details["changed"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"allowed_images": '"python:3.12"'}, "JSON list of image patterns"),
        ({"allowed_images": "[1, 2]"}, "Not valid image patterns"),
        ({"allowed_images": '["python 3", "ok"]'}, "Not valid image patterns"),
        ({"allowed_images": '["<script>"]'}, "Not valid image patterns"),
        ({"allowed_images": "[" + ",".join(['"a"'] * 201) + "]"}, "At most 200"),
        ({"allowed_images": "not json"}, "Enter a valid JSON"),
        ({"egress_allow": '["evil host"]'}, "Not valid host names"),
        ({"egress_allow": '{"pypi.org": 1}'}, "JSON list of host names"),
        ({"required_jobs": '["lint", ""]'}, "Not valid job names"),
        ({"log_retention_days": "0"}, "between 1 and 3650"),
        ({"artifact_retention_days": "99999"}, "between 1 and 3650"),
        ({"job_timeout_seconds": "1"}, "between 10 and"),
        ({"max_concurrent_jobs": "0"}, "between 1 and"),
        ({"max_concurrent_jobs": "-3"}, "greater than or equal to 0"),
        ({"lease_ttl_seconds": "30", "heartbeat_interval_seconds": "20"}, "at least 3 heartbeat"),
        ({"job_timeout_seconds": "600", "run_timeout_seconds": "60"}, "cannot time out before"),
        ({"egress_mode": "allowlist", "egress_allow": "[]"}, "needs at least one host"),
        ({"egress_mode": "everything"}, "Select a valid choice"),
    ],
)
def test_it_refuses_invalid_policy_values(admin, repo, fields, message):
    before = Policy.objects.get(repository=repo)
    r = edit_policy(admin, repo, **fields)
    assert r.status_code == 200
    assert message in errors(r)
    after = Policy.objects.get(repository=repo)
    assert [getattr(after, f.attname) for f in Policy._meta.fields] == [
        getattr(before, f.attname) for f in Policy._meta.fields
    ]


def test_a_repository_added_in_admin_gets_a_policy(admin):
    page = admin.get("/admin/runs/repository/add/")
    data = form_data(page)
    data.update(name="newrepo", url="https://example.invalid/x.git", default_branch="main")
    data["visibility"], data["environment"] = "private", "dev"
    r = admin.post("/admin/runs/repository/add/", data)
    assert r.status_code == 302, errors(r)
    repo = Repository.objects.get(name="newrepo")
    assert Policy.objects.filter(repository=repo).exists()
    assert AuditEvent.objects.filter(action="repository.add", repository=repo).exists()


def test_egress_and_timeouts_changed_in_admin_reach_the_next_lease(admin, repo, make_run, runner):
    r = edit_policy(
        admin,
        repo,
        egress_mode="allowlist",
        egress_allow='["pypi.org"]',
        job_timeout_seconds="120",
        lease_ttl_seconds="90",
        heartbeat_interval_seconds="15",
    )
    assert r.status_code == 302, errors(r)
    make_run([job_spec("build", timeout_seconds=None)])
    g = lease(runner)
    assert g["policy"]["egress"] == {"mode": "allowlist", "allow": ["pypi.org"]}
    assert g["max_runtime_seconds"] == 120
    assert (g["lease_ttl_seconds"], g["heartbeat_interval_seconds"]) == (90, 15)


def test_an_image_disallowed_in_admin_is_refused_at_the_next_lease(admin, repo, make_run, runner):
    run = make_run([job_spec("build", image="python:3.12")])
    r = edit_policy(admin, repo, allowed_images='["node:*"]')
    assert r.status_code == 302, errors(r)
    got = Proto(runner).lease()
    assert got.status_code == 204
    job = run.jobs.get()
    assert job.state not in ("QUEUED", "RUNNING", "SUCCEEDED")
    assert "not allowed" in job.reason
    assert AuditEvent.objects.filter(action="policy.violation", run=run).exists()


def test_concurrency_changed_in_admin_limits_the_next_leases(admin, repo, make_run, runner_factory):
    make_run([job_spec("a"), job_spec("b")])
    r = edit_policy(admin, repo, max_concurrent_jobs="1")
    assert r.status_code == 302, errors(r)
    first, second = runner_factory("r1"), runner_factory("r2")
    assert lease(first)["job_spec"]["name"] == "a"
    got = Proto(second).lease()
    assert got.status_code == 204


def test_retention_changed_in_admin_applies_to_the_next_cleanup(
    admin, repo, make_run, runner, artifact_store
):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        make_run()
        g = run_attempt(runner)
    later = start + timedelta(days=5)
    assert cleanup(now=later).total("logs") == 0  # the default keeps 30 days
    r = edit_policy(admin, repo, log_retention_days="2")
    assert r.status_code == 302, errors(r)
    assert cleanup(now=later).total("logs") == 1
    assert Artifact.objects.get(attempt_id=g["attempt_id"], artifact_type="log").deleted_at
