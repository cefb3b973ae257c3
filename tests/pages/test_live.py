"""Live pages by conditional polling: the run page's and the runs list's live parts and
the log tail answer 304 (without rendering) while nothing changed, and the new version
as soon as something did; polling ends when everything shown is final."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.runs.models import Run
from tests.pages.factory import lease, run_attempt, send_log

LIVE_304_MAX = 6


def poll(client, url, tag=None):
    headers = {"HTTP_IF_NONE_MATCH": tag} if tag else {}
    return client.get(url, **headers)


def test_it_answers_304_until_the_run_changes(public, make_run, runner, artifact_store, client):
    run = make_run()
    page = client.get(f"/runs/{run.pk}")
    tag = page.content.decode().split('data-etag="', 1)[1].split('"', 1)[0].replace("&quot;", '"')
    assert 'data-final="0"' in page.content.decode() and "live.js" in page.content.decode()
    with CaptureQueriesContext(connection) as ctx:
        r = poll(client, f"/runs/{run.pk}/live", tag)
    assert r.status_code == 304 and r["ETag"] == tag and not r.content
    assert len(ctx.captured_queries) <= LIVE_304_MAX
    run_attempt(runner, status="FAILED", exit_code=1)
    r = poll(client, f"/runs/{run.pk}/live", tag)
    assert r.status_code == 200 and r["ETag"] != tag
    html = r.content.decode()
    assert html.startswith('<div id="live"') and "FAILED" in html
    assert "<html" not in html  # a fragment, not a page
    assert poll(client, f"/runs/{run.pk}/live", r["ETag"]).status_code == 304


def test_it_stops_polling_once_the_run_is_final_and_settled(
    public, make_run, runner, artifact_store, client
):
    run = make_run()
    run_attempt(runner)
    run.refresh_from_db()
    assert run.state == "SUCCESS"
    assert 'data-final="0"' in client.get(f"/runs/{run.pk}/live").content.decode()
    with time_machine.travel(run.finished_at + timedelta(minutes=1), tick=False):
        html = client.get(f"/runs/{run.pk}").content.decode()
    assert 'data-final="1"' in html and "live.js" not in html


@pytest.mark.parametrize(
    "header", ['"nope"', "*x", "W/", '"' + "a" * 600 + '"', "\x00", ", , ,", '"a", "b"']
)
def test_it_treats_a_malformed_if_none_match_as_a_miss(public, make_run, client, header):
    run = make_run()
    r = poll(client, f"/runs/{run.pk}/live", header)
    assert r.status_code == 200 and r["ETag"].startswith('"')


def test_the_runs_list_polls_its_page_with_the_same_filters(public, make_run, client):
    run = make_run()
    html = client.get("/runs?state=QUEUED").content.decode()
    assert 'data-live-url="/runs/live"' in html and 'data-live-search="1"' in html
    first = client.get("/runs/live?state=QUEUED")
    assert f'href="/runs/{run.pk}"' in first.content.decode()
    assert poll(client, "/runs/live?state=QUEUED", first["ETag"]).status_code == 304
    Run.objects.filter(pk=run.pk).update(state="RUNNING", started_at=timezone.now())
    second = poll(client, "/runs/live?state=QUEUED", first["ETag"])
    assert second.status_code == 200 and f"/runs/{run.pk}" not in second.content.decode()
    assert 'data-final="1"' in second.content.decode()  # nothing left to watch there


def test_the_log_tail_answers_304_while_no_byte_arrived(public, make_run, runner, client):
    run = make_run()
    g = lease(runner)
    send_log(runner, g["lease_id"], b"one\n")
    url = f"/runs/{run.pk}/attempts/{g['attempt_id']}/log/tail"
    first = client.get(url, {"offset": 0})
    assert first.json()["offset"] == 4
    again = poll(client, url + "?offset=4", first["ETag"])
    assert again.status_code == 304
    send_log(runner, g["lease_id"], b"two\n", start=4)
    fresh = poll(client, url + "?offset=4", first["ETag"])
    assert fresh.status_code == 200 and "two" in fresh.json()["html"]
