"""A person's view of the run pages: a real server (pytest-django's live_server) and
headless Chromium driven by Selenium load a failed run, its failing test, its coloured
log and a live tail. Screenshots go into the test's temporary directory.

Needs Debian's `chromium` and `chromium-driver` packages; skipped with a reason without.
"""

import pytest

from apps.runs.models import Run
from tests.browser.conftest import BROWSER
from tests.conftest import job_spec
from tests.pages.factory import JUNIT_FAIL, lease, run_attempt, send_log

pytestmark = BROWSER

LOG = (
    b"collecting ...\n"
    b"\x1b[1m\x1b[31mFAILED\x1b[0m pkg/tests/test_math.py::test_divides"
    b" - <script>alert(1)</script>\n"
    b"\x1b[32m1 passed\x1b[0m, \x1b[31m1 failed\x1b[0m\n"
)


@pytest.fixture
def failed_run(transactional_db, repo, make_run, runner, artifact_store):
    repo.visibility = "public"
    repo.save()
    run = make_run([job_spec("build"), job_spec("test", needs=["build"])])
    run_attempt(runner, log=b"built\n")
    g = run_attempt(runner, status="FAILED", exit_code=1, log=LOG, junit=JUNIT_FAIL)
    run = Run.objects.get(pk=run.pk)
    assert run.state == "FAILED"
    run.failed_attempt = int(g["attempt_id"])
    return run


def test_a_person_sees_the_failed_run_its_failing_test_and_its_log(
    live_server, browser, failed_run, tmp_path
):
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/runs")
    browser.find_element(By.LINK_TEXT, f"#{failed_run.pk}").click()  # click 1
    body = browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(tmp_path / "run.png"))
    assert f"Run #{failed_run.pk}" in body and "FAILED" in body
    assert "1 failed" in body and "pkg.tests.test_math.test_divides" in body
    assert "assert 1 == 2" in body  # the failing test's message, one click from the list
    assert "required job(s) failed: test" in body
    assert "stage 2" in body  # test needs build
    message = browser.find_element(By.CSS_SELECTOR, "#tests pre.message")
    assert message.is_displayed() and "E       assert 1 == 2" in message.text

    log_link = browser.find_element(By.CSS_SELECTOR, "#tests li.test a")
    log_link.click()  # click 2: the attempt's log
    browser.save_screenshot(str(tmp_path / "log.png"))
    lines = browser.find_elements(By.CSS_SELECTOR, "#log .line")
    assert [line.get_attribute("id") for line in lines] == ["L1", "L2", "L3"]
    second = lines[1].find_element(By.CSS_SELECTOR, ".tx").text
    assert second == "FAILED pkg/tests/test_math.py::test_divides - <script>alert(1)</script>"
    red = lines[1].find_element(By.CSS_SELECTOR, "span.ansi-fg-1")
    assert red.value_of_css_property("color") == "rgba(255, 123, 114, 1)"
    assert red.value_of_css_property("font-weight") == "700"
    assert browser.execute_script("return document.querySelectorAll('#log script').length") == 0
    lines[2].find_element(By.CSS_SELECTOR, "a.ln").click()
    assert browser.current_url.endswith("#L3")
    assert (tmp_path / "run.png").stat().st_size > 10_000
    assert (tmp_path / "log.png").stat().st_size > 10_000


def test_a_person_watches_a_running_log_grow(
    live_server, browser, transactional_db, repo, make_run, runner, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    repo.visibility = "public"
    repo.save()
    run = make_run()
    g = lease(runner)
    send_log(runner, g["lease_id"], b"step 1: installing\n")
    browser.get(f"{live_server.url}/runs/{run.pk}/attempts/{g['attempt_id']}/log")
    assert "step 1: installing" in browser.find_element(By.ID, "log").text
    assert "Live" in browser.find_element(By.ID, "log-live").text
    send_log(runner, g["lease_id"], b"step 2: \x1b[32mtesting\x1b[0m\n", start=19)
    WebDriverWait(browser, 20, poll_frequency=0.25).until(
        lambda d: "step 2: testing" in d.find_element(By.ID, "log").text
    )
    browser.save_screenshot(str(tmp_path / "live.png"))
    ids = [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, "#log .line")]
    assert ids == ["L1", "L2"]
    assert browser.find_element(By.CSS_SELECTOR, "#L2 span.ansi-fg-2").text == "testing"
