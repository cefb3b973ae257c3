"""The attempt log page: escaped, coloured, numbered and anchored lines; a live tail
polled by byte offset; the raw log as a plain-text download."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.artifacts.retention import cleanup
from apps.runs.models import JobAttempt
from apps.runs.pages import logs as log_pages
from tests.pages.factory import lease, run_attempt, send_log

HOSTILE = b"\x1b[31mred <script>alert(1)</script>\x1b[0m\nplain & simple\n"


def url(run, attempt_id, suffix=""):
    return f"/runs/{run.pk}/attempts/{attempt_id}/log{suffix}"


@pytest.fixture
def finished(public, make_run, runner, artifact_store):
    run = make_run()
    g = run_attempt(runner, status="FAILED", exit_code=2, log=HOSTILE)
    return run, int(g["attempt_id"])


def test_it_shows_escaped_coloured_numbered_lines(finished, client):
    run, aid = finished
    html = client.get(url(run, aid)).content.decode()
    assert '<span class="ansi-fg-1">red &lt;script&gt;alert(1)&lt;/script&gt;</span>' in html
    assert "<script>alert(1)" not in html
    assert '<div class="line" id="L1"><a class="ln" href="#L1">1</a>' in html
    assert 'id="L2"' in html and "plain &amp; simple" in html
    assert "Download raw log" in html
    assert 'data-live="0"' in html  # finished: no live tail


def test_it_downloads_the_raw_log_as_a_plain_text_attachment(finished, client):
    run, aid = finished
    r = client.get(url(run, aid, "/raw"))
    assert r.status_code == 200
    assert r.content == HOSTILE
    assert r["Content-Type"] == "text/plain; charset=utf-8"
    assert r["Content-Disposition"].startswith("attachment; filename=")
    assert r["X-Content-Type-Options"] == "nosniff"


def test_it_tails_a_running_attempt_by_offset(public, make_run, runner, client):
    run = make_run()
    g = lease(runner)
    lid, aid = g["lease_id"], int(g["attempt_id"])
    send_log(runner, lid, b"one\ntwo\nthr")
    page = client.get(url(run, aid)).content.decode()
    assert "logtail.js" in page and 'data-live="1"' in page
    assert 'data-offset="8"' in page  # only complete lines are shown while running
    assert "thr" not in page.split('id="log"', 1)[1]

    tail = client.get(url(run, aid, "/tail"), {"offset": 8}).json()
    assert tail == {
        "offset": 8,
        "first_line": 3,
        "html": "",
        "size": 11,
        "finished": False,
        "state": "LEASED",
        "total": 2,
        "badge": '<span class="state st-active">LEASED</span>',
    }
    send_log(runner, lid, b"ee\n\x1b[1mfour\x1b[0m\n", start=11)
    tail = client.get(url(run, aid, "/tail"), {"offset": 8}).json()
    assert tail["offset"] == 27 and tail["first_line"] == 3
    assert tail["html"] == (
        '<div class="line" id="L3"><a class="ln" href="#L3">3</a>'
        '<span class="tx">three</span></div>'
        '<div class="line" id="L4"><a class="ln" href="#L4">4</a>'
        '<span class="tx"><span class="ansi-bold">four</span></span></div>'
    )


@pytest.mark.parametrize("offset", ["-1", "abc", "1e3", "9" * 30, " 5", ""])
def test_it_refuses_a_malformed_offset(finished, client, offset):
    run, aid = finished
    r = client.get(url(run, aid, "/tail"), {"offset": offset})
    assert r.status_code == 400
    assert "offset" in r.json()["error"]["message"]


def test_it_clamps_an_offset_past_the_end(finished, client):
    run, aid = finished
    r = client.get(url(run, aid, "/tail"), {"offset": 10**12}).json()
    assert r["offset"] == len(HOSTILE) and r["html"] == "" and r["finished"] is True


def test_it_shows_only_the_end_of_a_huge_log_with_true_line_numbers(
    public, make_run, runner, artifact_store, client, monkeypatch
):
    monkeypatch.setattr(log_pages, "WINDOW", 11)
    run = make_run()
    body = b"".join(b"line %03d\n" % i for i in range(1, 101))  # 9 bytes a line
    g = run_attempt(runner, log=body)
    html = client.get(url(run, g["attempt_id"])).content.decode()
    assert "Show earlier lines" in html
    assert 'id="L100"' in html and "line 100" in html
    assert 'id="L90"' in html and 'id="L89"' not in html and "line 001" not in html


def test_it_says_when_retention_deleted_the_log(finished, client):
    run, aid = finished
    cleanup(now=timezone.now() + timedelta(days=400))
    html = client.get(url(run, aid)).content.decode()
    assert "This log was deleted by the repository's retention policy." in html
    assert client.get(url(run, aid, "/raw")).status_code == 404


def test_it_404s_an_attempt_of_another_run(finished, make_run, client):
    run, aid = finished
    other = make_run()
    assert client.get(url(other, aid)).status_code == 404
    assert client.get(url(other, aid, "/tail")).status_code == 404
    assert client.get(url(other, aid, "/raw")).status_code == 404
    assert JobAttempt.objects.filter(pk=aid).exists()
