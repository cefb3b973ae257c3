"""Logs at scale: windows of lines (any line reachable), step sections with durations from
the runner's markers, server-side search, the first error."""

import re

import pytest

from apps.runs.pages import logs as log_pages
from tests.pages.factory import run_attempt
from tests.pages.test_logs import url

STEPS = (
    b"[deltaci] job build attempt 1 executor shell as uid 1000\n"
    b"[deltaci] fetching /x.git at abc\n"
    b"[deltaci] step 1/2: pip install <pkg>\n"
    b"installed\n"
    b"[deltaci] step 1 done in 0.42s\n"
    b"[deltaci] step 2/2: pytest\n"
    b"E   AssertionError: boom\n"
    b"[deltaci] step 2 failed with exit code 1 after 75.50s\n"
)


@pytest.fixture
def stepped(public, make_run, runner, artifact_store):
    run = make_run()
    g = run_attempt(runner, status="FAILED", exit_code=1, log=STEPS)
    return run, int(g["attempt_id"])


@pytest.fixture
def big(public, make_run, runner, artifact_store):
    run = make_run()
    body = b"".join(b"line %05d\n" % i for i in range(1, 20001))
    g = run_attempt(runner, log=body)
    return run, int(g["attempt_id"])


def test_it_groups_lines_into_step_sections_with_durations(stepped, client):
    run, aid = stepped
    html = client.get(url(run, aid)).content.decode()
    log = html.split('id="log"', 1)[1]
    assert log.count("<details") == 3  # set-up, step 1, step 2
    assert 'data-s="0"' in log and "Set up" in log
    assert '<details class="sec failed" data-s="2" open>' in log
    assert '<summary><span class="line" id="L3">' in log  # the marker line heads step 1
    assert "pip install &lt;pkg&gt;" in log and "<pkg>" not in log
    assert '<span class="sec-dur">&lt;1s</span>' in log  # 0.42 s is "<1s", never "0s"
    assert '<span class="sec-dur">1m 15s</span>' in log
    outline = html.split('aria-label="steps"', 1)[1].split("</nav>", 1)[0]
    assert "step 1/2: pip install &lt;pkg&gt;" in outline and 'href="?line=6#L6"' in outline
    assert "exit 1" in outline
    assert "First error (line 7)" in html


def test_a_log_without_markers_is_plain_lines(public, make_run, runner, artifact_store, client):
    run = make_run()
    g = run_attempt(runner, log=b"a\nb\n")
    html = client.get(url(run, g["attempt_id"])).content.decode()
    assert "<details" not in html.split('id="log"', 1)[1] and 'id="L2"' in html


def test_a_20000_line_log_opens_at_its_end_in_one_window(big, client):
    run, aid = big
    html = client.get(url(run, aid)).content.decode()
    ids = [int(x) for x in re.findall(r'<div class="line" id="L(\d+)"', html)]
    assert ids == list(range(20001 - log_pages.WINDOW, 20001))
    assert len(html) < 200_000
    assert 'data-total="20000"' in html and "Show earlier lines" in html


def test_any_line_is_reachable_by_its_window(big, client):
    run, aid = big
    html = client.get(url(run, aid), {"line": 100}).content.decode()
    ids = [int(x) for x in re.findall(r'<div class="line" id="L(\d+)"', html)]
    assert ids[0] == 1 and 100 in ids and len(ids) == log_pages.WINDOW
    r = client.get(url(run, aid, "/lines"), {"from": 9990, "to": 10010}).json()
    assert (r["first"], r["last"], r["total"]) == (9990, 10010, 20000)
    assert 'id="L10000"' in r["html"] and "line 10000" in r["html"]
    r = client.get(url(run, aid, "/lines"), {"from": 19990, "to": 21000}).json()
    assert r["last"] == 20000


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"from": "0", "to": "5"},
        {"from": "5", "to": "4"},
        {"from": "a", "to": "2"},
        {"from": "1", "to": "99999"},
        {"from": "9" * 40, "to": "1"},
        {"from": "-1", "to": "3"},
    ],
)
def test_it_refuses_malformed_line_ranges(big, client, query):
    run, aid = big
    r = client.get(url(run, aid, "/lines"), query)
    assert r.status_code == 400 and "line numbers" in r.json()["error"]


@pytest.mark.parametrize("line", ["abc", "-3", "0", "9" * 40, "99999999"])
def test_a_hostile_line_parameter_opens_the_end(big, client, line):
    run, aid = big
    html = client.get(url(run, aid), {"line": line}).content.decode()
    assert 'id="L20000"' in html


def test_it_searches_the_whole_log_on_the_server(big, client):
    run, aid = big
    html = client.get(url(run, aid), {"q": "LINE 0012"}).content.decode()
    found = html.split('id="search-results"', 1)[1].split("</section>", 1)[0]
    assert "10 lines containing" in found
    assert 'href="?line=120#L120"' in found and 'href="?line=129#L129"' in found


def test_search_caps_matches_and_treats_the_query_as_text(big, client):
    run, aid = big
    html = client.get(url(run, aid), {"q": "line"}).content.decode()
    assert f"{log_pages.MAX_MATCHES}+ lines containing" in html
    html = client.get(url(run, aid), {"q": "(.*)+$"}).content.decode()
    assert "0 lines containing" in html
    html = client.get(url(run, aid), {"q": "<script>" + "x" * 5000}).content.decode()
    assert "<script>x" not in html and "&lt;script&gt;" in html
