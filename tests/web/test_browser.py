"""The real `dbdict dashboard` in a real browser (Debian's chromium, headless, driven by
Selenium): from the overview to a filtered grid to a job's page and its curve, and a
change of status in the table shown by the open page within 5 seconds, unreloaded.

The screenshots of docs/dashboard.md are taken here. They go to the test's temporary folder,
so that a test run leaves the checkout as it was; DBDICT_TEST_SCREENSHOTS=docs/images
refreshes the documentation's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from tests.conftest import REPO, free_port, start_dbdict, wait_until
from tests.web.sweep import STEPS, Sweep, fill, fill_study

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LIVE_DEADLINE = 5.0 + 1.5  # the promise, and a margin for a loaded machine


@pytest.fixture
def filled(location: str, tmp_path: Path) -> tuple[JobStore, Sweep]:
    store = JobStore.open(location)
    sweep = fill(store, tmp_path / "exproot")
    fill_study(store, tmp_path / "exproot")
    return store, sweep


@pytest.fixture
def dashboard(location: str, filled: tuple[JobStore, Sweep], tmp_path: Path) -> Iterator[str]:
    """The URL of `dbdict dashboard` serving the table's database on a free loopback port."""
    port = free_port()
    process = start_dbdict("dashboard", "--db", location, "--bind", f"127.0.0.1:{port}",
                           cwd=tmp_path)  # fmt: skip
    try:
        wait_until(lambda: _listening(port) or process.poll() is not None, "the dashboard")
        assert process.poll() is None, process.communicate()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the screenshots go: DBDICT_TEST_SCREENSHOTS (relative to the repository), else
    the test's temporary folder."""
    chosen = os.environ.get("DBDICT_TEST_SCREENSHOTS")
    folder = REPO / chosen if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.parametrize("location", ["sqlite"], indirect=True)
def test_from_the_overview_to_a_job_and_its_curve_live(
    dashboard: str, browser: WebDriver, filled: tuple[JobStore, Sweep], screenshots: Path
) -> None:
    store, sweep = filled
    table = store.path.table
    wait = WebDriverWait(browser, 10)
    browser.get(f"{dashboard}/")
    browser.find_element(By.LINK_TEXT, table).click()
    wait.until(lambda b: b.current_url.endswith(f"/tables/{table}"))
    wait.until(lambda b: b.find_element(By.CSS_SELECTOR, '[data-count="DONE"]').text == "5")
    browser.save_screenshot(str(screenshots / "dashboard-overview.png"))

    browser.find_element(By.LINK_TEXT, "all jobs").click()
    browser.find_element(By.ID, "where").send_keys("lr<0.45")
    browser.find_element(By.ID, "sort").send_keys("-lr")
    browser.find_element(By.ID, "columns").send_keys("id,status,lr,model,loss,attempts")
    browser.find_element(By.ID, "apply").click()
    wait.until(lambda b: "where=" in b.current_url)
    statuses = browser.find_elements(By.CSS_SELECTOR, '[data-field="status"]')
    assert [cell.text for cell in statuses] == ["START", "RUNNING", "FAILED", "DONE"]

    waiting = sweep.waiting[0]
    store.cancel([waiting])  # the open grid shows it, unreloaded
    cell = f'[data-job="{waiting}"][data-field="status"]'
    _within(LIVE_DEADLINE, lambda: browser.find_element(By.CSS_SELECTOR, cell).text == "CANCELLED")
    browser.save_screenshot(str(screenshots / "dashboard-grid.png"))

    browser.find_element(By.LINK_TEXT, str(sweep.done)).click()
    wait.until(lambda b: b.current_url.endswith(f"/jobs/{sweep.done}"))
    path = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#curves path.series"))
    assert (path.get_attribute("d") or "").count("L") == STEPS - 1
    assert "epoch 299" in browser.find_element(By.CSS_SELECTOR, "pre.log").text
    browser.save_screenshot(str(screenshots / "dashboard-job.png"))

    browser.get(f"{dashboard}/tables/{table}/jobs/{sweep.running}")
    assert browser.find_element(By.ID, "status").text == "RUNNING"
    running = store.get(sweep.running)
    store.finish(running, Status.DONE, {**running.state, "loss": 0.5})
    _within(LIVE_DEADLINE, lambda: browser.find_element(By.ID, "status").text == "DONE")
    assert "0.5" in browser.find_element(By.ID, "live").text, "the whole page was refreshed"

    browser.get(f"{dashboard}/tables/{table}/jobs")
    browser.find_element(By.ID, "curves-link").click()
    browser.find_element(By.ID, "hue").send_keys("lr")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait.until(lambda b: "hue=lr" in b.current_url)
    drawn = browser.find_elements(By.CSS_SELECTOR, "figure.chart path.series")
    assert len(drawn) == len([job for job in store.jobs() if store.curve_summaries(job.id)])
    browser.save_screenshot(str(screenshots / "dashboard-curves.png"))


def _within(seconds: float, condition: object) -> None:
    """Wait for `condition` (a callable) to hold, at most `seconds`; fail saying how long."""
    assert callable(condition)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            if condition():
                return
        except Exception:  # the element may be swapped out while it is read
            pass
        time.sleep(0.1)
    pytest.fail(f"the page did not show the change within {seconds} s")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
