"""Operators see deliveries and reports read-only, on list pages whose query count does
not grow with the number of rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.vcs.models import PullRequestComment, RunReport, WebhookDelivery
from tests.conftest import job_spec

PAGES = [
    "/admin/vcs/webhookdelivery/",
    "/admin/vcs/runreport/",
    "/admin/vcs/pullrequestcomment/",
]


def make_rows(make_run, gh_repo, n: int, start: int) -> None:
    for i in range(start, start + n):
        run = make_run([job_spec("a")], repository=gh_repo)
        WebhookDelivery.objects.create(
            delivery_id=f"d{i}", event="push", outcome="created", run=run
        )
        RunReport.objects.create(run=run, last_state=run.state, check_run_id=i)
        PullRequestComment.objects.create(repository=gh_repo, pr_number=i, run=run)


def queries(admin_client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert admin_client.get(url).status_code == 200
    return len(ctx)


@pytest.mark.parametrize("url", PAGES)
def test_it_lists_rows_with_a_bounded_number_of_queries(url, admin_client, make_run, gh_repo):
    make_rows(make_run, gh_repo, 2, 0)
    few = queries(admin_client, url)
    make_rows(make_run, gh_repo, 8, 2)
    assert queries(admin_client, url) == few


@pytest.mark.parametrize("url", PAGES)
def test_it_is_read_only(url, admin_client, make_run, gh_repo):
    make_rows(make_run, gh_repo, 1, 0)
    assert admin_client.get(url + "add/").status_code == 403
    page = admin_client.get(url).content.decode()
    assert f'href="{url}add/"' not in page
