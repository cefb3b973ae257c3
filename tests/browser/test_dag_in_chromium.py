"""The jobs' DAG in headless Chromium: all twelve jobs of a four-stage run are visible at
1366 px (the graph scales, nothing scrolls sideways) and, as a vertical list by stage, at
390 px; failed jobs stand out."""

import pytest

from apps.runs.models import Job
from tests.browser.conftest import BROWSER
from tests.conftest import job_spec

pytestmark = BROWSER

SPECS = [
    job_spec("build-api"),
    job_spec("build-web"),
    job_spec("build-worker-with-a-rather-long-name"),
    *(job_spec(f"test-{i}", needs=["build-api", "build-web"]) for i in range(1, 6)),
    job_spec("lint", needs=["build-worker-with-a-rather-long-name"]),
    job_spec("package", needs=[f"test-{i}" for i in range(1, 6)]),
    job_spec("docs", needs=["lint"]),
    job_spec("deploy", needs=["package", "docs"]),
]


@pytest.fixture
def dag_run(transactional_db, repo, make_run):
    repo.visibility = "public"
    repo.save()
    run = make_run(SPECS)
    Job.objects.filter(run=run, name__in=["test-4", "lint"]).update(state="FAILED")
    Job.objects.filter(run=run, name__startswith="build").update(state="SUCCEEDED")
    return run


def sideways_scroll(browser) -> int:
    return browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def inside(browser, element) -> bool:
    return browser.execute_script(
        "var r = arguments[0].getBoundingClientRect();"
        "return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth",
        element,
    )


def test_every_job_is_visible_at_1366_and_at_390_px(live_server, browser, dag_run, tmp_path):
    from selenium.webdriver.common.by import By

    browser.set_window_size(1366, 900)
    browser.get(f"{live_server.url}/runs/{dag_run.pk}")
    nodes = browser.find_elements(By.CSS_SELECTOR, "figure.dag a.node")
    assert len(nodes) == 12
    assert all(inside(browser, n) for n in nodes)
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.dag .edges path")) == 19
    cards = browser.find_elements(By.CSS_SELECTOR, "article.job")
    assert len(cards) == 12 and all(inside(browser, c) for c in cards)
    assert sideways_scroll(browser) == 0
    failed = browser.find_elements(By.CSS_SELECTOR, "figure.dag a.node.st-bad")
    assert len(failed) == 2
    assert browser.find_element(By.CSS_SELECTOR, ".failed-jobs").text == "Failed: test-4, lint"
    browser.save_screenshot(str(tmp_path / "dag-1366.png"))

    browser.set_window_size(390, 844)
    browser.get(f"{live_server.url}/runs/{dag_run.pk}")
    assert not browser.find_element(By.CSS_SELECTOR, "figure.dag").is_displayed()
    cards = browser.find_elements(By.CSS_SELECTOR, "article.job")
    assert len(cards) == 12 and all(inside(browser, c) for c in cards)
    tops = [c.rect["y"] for c in cards]
    assert tops == sorted(tops)  # one column, by stage
    assert [h.text for h in browser.find_elements(By.CSS_SELECTOR, ".stage h3")] == [
        "stage 1",
        "stage 2",
        "stage 3",
        "stage 4",
    ]
    assert sideways_scroll(browser) == 0
    browser.save_screenshot(str(tmp_path / "dag-390.png"))
