"""The issue's bar: a person follows a failed run from the runs list to the failing
test's message in three clicks or fewer."""

import re

from tests.conftest import job_spec
from tests.pages.factory import JUNIT_FAIL, run_attempt


def links(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def test_it_reaches_the_failing_test_message_from_the_runs_list_in_three_clicks(
    public, make_run, runner, artifact_store, client
):
    run = make_run([job_spec("build"), job_spec("test", needs=["build"])])
    run_attempt(runner)
    run_attempt(runner, status="FAILED", exit_code=1, junit=JUNIT_FAIL, log=b"E assert\n")
    run.refresh_from_db()
    assert run.state == "FAILED"

    page = client.get("/runs").content.decode()
    clicks = 0
    target = f"/runs/{run.pk}"
    while "assert 1 == 2" not in page:
        clicks += 1
        assert clicks <= 3, "the failing test's message is more than three clicks away"
        href = next(h for h in links(page) if h == target or h.startswith(target + "#"))
        page = client.get(href).content.decode()
    assert clicks <= 3
    assert "test_divides" in page
    assert "E       assert 1 == 2" in page
