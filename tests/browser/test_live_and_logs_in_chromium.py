"""Live pages and big logs in headless Chromium: a state change and new log lines appear
without a reload; a 20,000-line log opens in under a second with #L100 reachable; step
sections fold."""

import pytest

from apps.runs.models import Run
from tests.browser.conftest import BROWSER
from tests.pages.factory import lease, run_attempt, send_log

pytestmark = BROWSER


@pytest.fixture
def public_repo(transactional_db, repo):
    repo.visibility = "public"
    repo.save()
    return repo


def text(browser, css: str) -> str:
    """An element's text read in one step (live parts are replaced while we look)."""
    return browser.execute_script(
        "var e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css
    )


def wait(browser, until, seconds=10):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds, poll_frequency=0.1).until(until)


def test_a_run_page_and_the_runs_list_follow_state_changes_without_reload(
    live_server, browser, public_repo, make_run, runner, artifact_store
):
    from selenium.webdriver.common.by import By

    run = make_run()
    browser.get(f"{live_server.url}/runs/{run.pk}")
    marker = browser.execute_script("window.stayed = 1; return window.stayed")
    assert "QUEUED" in browser.find_element(By.ID, "live").text
    run_attempt(runner, status="FAILED", exit_code=1)
    assert Run.objects.get(pk=run.pk).state == "FAILED"
    wait(browser, lambda d: "FAILED" in text(d, "#live .run-head"), 4)
    assert browser.execute_script("return window.stayed") == marker  # no reload happened

    other = make_run()
    browser.get(f"{live_server.url}/runs")
    browser.execute_script("window.stayed = 2")
    run_attempt(runner)
    wait(browser, lambda d: "SUCCESS" in text(d, "#live"), 4)
    assert browser.execute_script("return window.stayed") == 2
    assert Run.objects.get(pk=other.pk).state == "SUCCESS"


def test_a_running_log_streams_follows_the_end_and_its_badge_follows_the_state(
    live_server, browser, public_repo, make_run, runner
):
    from selenium.webdriver.common.by import By

    run = make_run()
    g = lease(runner)
    lid = g["lease_id"]
    first = b"[deltaci] step 1/1: make\n" + b"".join(b"building %d\n" % i for i in range(200))
    send_log(runner, lid, first)
    browser.get(f"{live_server.url}/runs/{run.pk}/attempts/{g['attempt_id']}/log")
    browser.find_element(By.ID, "jump-end").click()
    send_log(runner, lid, b"done building\n[deltaci] step 1 done in 2.50s\n", start=len(first))
    wait(browser, lambda d: d.find_elements(By.ID, "L203"), 4)
    assert browser.execute_script(
        "return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40"
    )  # followed the new lines at the bottom
    assert (
        browser.find_elements(By.CSS_SELECTOR, "#log details.sec")
        and len(browser.find_elements(By.CSS_SELECTOR, "#log details.sec")) == 1
    )  # new lines joined their step's section
    assert "2s" in browser.find_element(By.CSS_SELECTOR, "#log .sec-dur").text
    c = runner.client
    c.post("/api/v1/internal/ack-lease", {"lease_id": lid}, format="json")
    c.post(
        "/api/v1/internal/complete",
        {"type": "Complete", "lease_id": lid, "status": "SUCCEEDED", "exit_code": 0},
        format="json",
    )
    wait(browser, lambda d: "SUCCEEDED" in text(d, "#log-state"), 4)


def test_a_20000_line_log_opens_in_under_a_second_and_any_line_is_reachable(
    live_server, browser, public_repo, make_run, runner, artifact_store, tmp_path
):
    from selenium.webdriver.common.by import By

    run = make_run()
    steps = b"[deltaci] step 1/2: build\n" + b"".join(
        b"build line %05d\n" % i for i in range(10000)
    )
    steps += b"[deltaci] step 1 done in 12.00s\n[deltaci] step 2/2: test\n"
    steps += b"".join(b"test line %05d\n" % i for i in range(9996))
    steps += b"E   boom\n[deltaci] step 2 failed with exit code 1 after 3.00s\n"
    g = run_attempt(runner, status="FAILED", exit_code=1, log=steps)
    url = f"{live_server.url}/runs/{run.pk}/attempts/{g['attempt_id']}/log"
    browser.get(url)
    ms = browser.execute_script(
        "var t = performance.getEntriesByType('navigation')[0];return t.loadEventEnd - t.startTime;"
    )
    browser.save_screenshot(str(tmp_path / "big-log.png"))
    print(f"20,000-line log page loaded in {ms:.0f} ms")  # shown with -s
    assert ms < 1000, f"the log page took {ms:.0f} ms"
    assert browser.find_element(By.ID, "L20000").is_displayed()

    browser.get(url + "#L100")
    wait(browser, lambda d: d.find_elements(By.ID, "L100"), 4)
    line = browser.find_element(By.ID, "L100")
    assert "build line 00098" in line.text and "hl" in line.get_attribute("class")
    assert browser.execute_script(
        "var r = arguments[0].getBoundingClientRect();return r.top >= 0 && r.bottom <= innerHeight",
        line,
    )
    # a step section folds: its lines disappear, its head stays
    head = browser.find_element(By.CSS_SELECTOR, '#log details.sec[data-s="1"] > summary')
    head.click()
    assert not line.is_displayed() and head.is_displayed()
    # later lines load and join the same step's section
    browser.find_element(By.CSS_SELECTOR, "#log-later a").click()
    wait(browser, lambda d: d.find_elements(By.ID, "L700"), 4)
    assert len(browser.find_elements(By.CSS_SELECTOR, '#log details.sec[data-s="1"]')) == 1
