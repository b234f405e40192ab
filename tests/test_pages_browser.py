"""The pages in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`) driven by selenium
against `live_server`. A learner logs in and answers (the htmx swap happens), a teacher sees the grid and charts.

Without Chromium, its driver or selenium the test is skipped with a loud reason, and fails under CI=true.
Set PAGES_SCREENSHOT_DIR to keep a screenshot of each page (for looking at them; never committed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from learners.models import Attempt
from learners.services import user_create

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_S = 10


def _browser_problem() -> str | None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        return f"{' and '.join(missing)} not found (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    problem = _browser_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but the browser test cannot run: {problem}")
        pytest.skip(f"BROWSER TEST SKIPPED: {problem}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def _shot(driver: Any, name: str) -> None:
    folder = os.environ.get("PAGES_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, max(800, min(int(height) + 40, 3000)))
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def _errors(driver: Any) -> list[str]:
    """Script errors and failed loads (a missing static file) since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _login(driver: Any, base: str, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


@pytest.mark.django_db(transaction=True)
def test_learner_answers_with_htmx_and_teacher_sees_grid_and_charts(
    browser: Any, live_server: Any, course: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ada = user_create(username="ada", role="learner", classroom="Class Ash", password="ada-secret-1")
    user_create(username="tess", role="teacher", classroom="Class Ash", password="tess-secret-1")
    base = live_server.url
    wait = WebDriverWait(browser, WAIT_S)

    _login(browser, base, "ada", "ada-secret-1")
    wait.until(ec.visibility_of_element_located((By.ID, "answer-form")))
    assert browser.current_url == f"{base}/learn/"
    assert browser.execute_script("return typeof htmx") == "object"
    _shot(browser, "learn")
    # The question served is on the root skill; answer it right.
    prompt = browser.find_element(By.ID, "prompt").text
    item = next(i for i in course["items"].values() if i.prompt == prompt)
    browser.find_element(By.ID, "response").send_keys(item.answer["value"])
    browser.find_element(By.CSS_SELECTOR, "#answer-form button[type=submit]").click()
    feedback = wait.until(ec.visibility_of_element_located((By.ID, "feedback")))
    assert feedback.find_element(By.TAG_NAME, "h1").text == "✓ Correct!"
    # Swapped in place: still the same page, the overview updated out of band.
    assert browser.current_url == f"{base}/learn/"
    assert "1 of 1 correct" in browser.find_element(By.ID, "mastery").get_attribute("innerHTML")
    attempt = Attempt.objects.get(learner_id=ada["learner_id"])
    assert attempt.correct is True
    assert attempt.time_taken_ms is not None and 0 <= attempt.time_taken_ms < 60_000
    assert _errors(browser) == []
    _shot(browser, "learn-feedback")
    browser.find_element(By.ID, "next").click()
    wait.until(ec.visibility_of_element_located((By.ID, "answer-form")))
    browser.find_element(By.ID, "response").send_keys("999")
    browser.find_element(By.CSS_SELECTOR, "#answer-form button[type=submit]").click()
    wait.until(ec.visibility_of_element_located((By.ID, "correct-answer")))
    _shot(browser, "learn-wrong")
    assert Attempt.objects.filter(learner_id=ada["learner_id"]).count() == 2

    browser.find_element(By.CSS_SELECTOR, ".logout button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "id_username")))
    _login(browser, base, "tess", "tess-secret-1")
    wait.until(ec.url_to_be(f"{base}/teach/"))
    browser.find_element(By.LINK_TEXT, "Class Ash").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#class-chart canvas")))
    grid = browser.find_element(By.ID, "mastery-grid")
    assert grid.find_element(By.LINK_TEXT, "ada").is_displayed()
    assert len(grid.find_elements(By.CSS_SELECTOR, "tbody td[class^=heat-]")) == 4
    canvas = browser.find_element(By.CSS_SELECTOR, "#class-chart canvas")
    assert canvas.size["width"] > 200 and canvas.size["height"] > 100
    assert _errors(browser) == []
    _shot(browser, "classroom")
    grid.find_element(By.LINK_TEXT, "ada").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-chart=line] canvas")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "[data-chart=line] canvas")) >= 1
    _shot(browser, "learner")
    assert _errors(browser) == []
