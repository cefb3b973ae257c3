"""Look and access in headless Chromium: axe-core (shipped by selenium-axe-python, no CDN)
finds no critical or serious violation on any page, light or dark; no page scrolls
sideways at 390 px; error pages are styled and offer the login."""

from importlib import resources

import pytest

from apps.runs.models import Run
from tests.browser.conftest import BROWSER
from tests.conftest import job_spec
from tests.pages.factory import JUNIT_FAIL, run_attempt

pytestmark = BROWSER

LOG = (
    b"[deltaci] fetching\n[deltaci] step 1/2: make\n\x1b[32mok\x1b[0m\n"
    b"[deltaci] step 1 done in 0.20s\n[deltaci] step 2/2: pytest\nE   assert 1 == 2\n"
    b"[deltaci] step 2 failed with exit code 1 after 2.00s\n"
)


def axe_violations(browser) -> list[dict]:
    source = resources.files("selenium_axe_python").joinpath("axe-core/axe.min.js").read_text()
    browser.execute_script(source)
    browser.set_script_timeout(30)
    return browser.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(function (r) { done(r.violations); }, function (e) { done([{id: String(e)}]); });"
    )


def bad(violations: list[dict]) -> list[str]:
    return [
        f"{v['id']} ({v.get('impact')}): {[n['target'] for n in v.get('nodes', [])][:5]}"
        for v in violations
        if v.get("impact") in ("critical", "serious") or "impact" not in v
    ]


@pytest.fixture
def pages(transactional_db, repo, make_run, runner, artifact_store):
    repo.visibility = "public"
    repo.github_full_name = "acme/demo"
    repo.save()
    run = make_run([job_spec("build"), job_spec("test", needs=["build"]), job_spec("lint")])
    run_attempt(runner, files={"dist.tar": b"x"})
    g = run_attempt(runner, status="FAILED", exit_code=1, log=LOG, junit=JUNIT_FAIL)
    run_attempt(runner)
    run = Run.objects.get(pk=run.pk)
    Run.objects.filter(pk=run.pk).update(
        plan={**run.plan, "commit": {"author": "Alice", "subject": "Fix it", "body": "why"}}
    )
    log = f"/runs/{run.pk}/attempts/{g['attempt_id']}/log"
    return [
        "/",
        "/runs",
        "/runs?state=FAILED&repo=nope",
        f"/runs/{run.pk}",
        log,
        f"{log}?q=assert",
        "/login",
        "/no/such/page",
        "/admin/login/",
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_has_a_serious_accessibility_violation(live_server, browser, pages, scheme):
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    problems = {}
    for width in (1366, 390):
        browser.set_window_size(width, 900)
        for path in pages:
            browser.get(live_server.url + path)
            found = bad(axe_violations(browser))
            if found:
                problems[f"{path} at {width}px"] = found
            scroll = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if scroll > 0:
                problems[f"{path} at {width}px scrolls sideways"] = scroll
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_dark_mode_follows_the_system_setting(live_server, browser, pages):
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    browser.get(live_server.url + "/runs")
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"


def test_error_pages_are_styled_and_offer_the_login(live_server, browser, pages):
    from selenium.webdriver.common.by import By

    browser.get(live_server.url + "/runs/999999")
    assert "Not found (404)" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_element(By.CSS_SELECTOR, "header.top .brand").is_displayed()
    login = browser.find_element(By.CSS_SELECTOR, ".error-page a[href^='/login']")
    assert login.get_attribute("href").endswith("/login?next=/runs/999999")
