"""Operators: every policy edit in admin (inline on the repository or on the Policies
page) is audited with what changed, from and to; the audit list filters by action and
hides lease grants unless asked; secret names are environment variable names."""

import pytest

from apps.audit.actions import record
from apps.audit.models import AuditEvent
from apps.policies.models import Policy, Secret
from apps.policies.secrets import set_secret
from apps.runs.actions import do_add_repository
from tests.admin.conftest import form_data


def test_an_edit_on_the_policies_page_is_audited_with_from_and_to(admin, repo):
    policy, _ = Policy.objects.get_or_create(repository=repo)
    url = f"/admin/policies/policy/{policy.pk}/change/"
    data = form_data(admin.get(url))
    data.update(max_concurrent_jobs="3", egress_allow='["pypi.org"]', egress_mode="allowlist")
    r = admin.post(url, data)
    assert r.status_code == 302, r.content.decode()[-3000:]
    event = AuditEvent.objects.get(action="policy.update")
    assert event.actor == "user:olga" and event.repository == repo and event.target == "demo"
    assert event.details["changed"]["max_concurrent_jobs"] == {"from": None, "to": 3}
    assert event.details["changed"]["egress_allow"] == {"from": [], "to": ["pypi.org"]}
    assert set(event.details["changed"]) == {"max_concurrent_jobs", "egress_allow", "egress_mode"}


def test_the_policies_page_validates_like_the_inline(admin, repo):
    policy, _ = Policy.objects.get_or_create(repository=repo)
    url = f"/admin/policies/policy/{policy.pk}/change/"
    data = form_data(admin.get(url))
    data.update(allowed_images='["<script>"]', log_retention_days="0")
    r = admin.post(url, data)
    assert r.status_code == 200 and "Not valid image patterns" in r.content.decode()
    assert not AuditEvent.objects.filter(action="policy.update").exists()


def test_a_policy_added_on_the_policies_page_is_audited(admin, db):
    other = do_add_repository("other", "/x.git", actor="system")
    Policy.objects.filter(repository=other).delete()
    data = form_data(admin.get("/admin/policies/policy/add/"))
    data.update(repository=str(other.pk), job_retries="2")
    r = admin.post("/admin/policies/policy/add/", data)
    assert r.status_code == 302, r.content.decode()[-3000:]
    changed = AuditEvent.objects.get(action="policy.update", repository=other).details["changed"]
    assert changed["job_retries"] == {"from": None, "to": 2}


def test_an_inline_edit_records_each_change(admin, repo):
    url = f"/admin/runs/repository/{repo.pk}/change/"
    data = form_data(admin.get(url))
    data["policy-0-log_retention_days"] = "5"
    assert admin.post(url, data).status_code == 302
    event = AuditEvent.objects.get(action="policy.update")
    assert event.details["changed"] == {"log_retention_days": {"from": None, "to": 5}}
    assert admin.post(url, form_data(admin.get(url))).status_code == 302  # no change
    assert AuditEvent.objects.filter(action="policy.update").count() == 1


def test_the_audit_list_hides_lease_grants_unless_asked(admin, repo):
    record("lease.grant", actor="runner:r1", target="grant-row")
    record("lease.revoke", actor="user:olga", target="revoke-row")
    listing = admin.get("/admin/audit/auditevent/").content.decode()
    assert "revoke-row" in listing and "grant-row" not in listing
    assert "all but lease grants" in listing and "all actions, with lease grants" in listing
    only = admin.get("/admin/audit/auditevent/", {"action": "lease.grant"}).content.decode()
    assert "grant-row" in only and "revoke-row" not in only
    every = admin.get("/admin/audit/auditevent/", {"action": "*all*"}).content.decode()
    assert "grant-row" in every and "revoke-row" in every


@pytest.mark.parametrize(
    "name, why",
    [
        ("1TOKEN", "environment variable name"),
        ("MY-TOKEN", "environment variable name"),
        ("MY TOKEN", "environment variable name"),
        ("TOKEN=1", "environment variable name"),
        ("ÄPI", "environment variable name"),
        ("X" * 129, "at most 100 characters"),
    ],
)
def test_it_refuses_a_secret_name_that_is_no_environment_variable(admin, repo, name, why):
    r = admin.post(
        "/admin/policies/secret/add/",
        {"repository": repo.pk, "environment": "dev", "name": name, "value": "v"},
    )
    assert r.status_code == 200 and why in r.content.decode()
    assert not Secret.objects.exists()
    with pytest.raises(ValueError, match="environment variable name"):
        set_secret(repo, name, "v", actor="t")


def test_it_accepts_a_secret_name_as_ci_ai_yaml_does(admin, repo):
    r = admin.post(
        "/admin/policies/secret/add/",
        {"repository": repo.pk, "environment": "dev", "name": "_PYPI_TOKEN2", "value": "v"},
    )
    assert r.status_code == 302
    assert Secret.objects.get().name == "_PYPI_TOKEN2"
