"""Headless Chromium from Debian (`chromium`, `chromium-driver`) driven by Selenium: the
browser and its driver are the system's own, so Selenium Manager downloads nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 20.0

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()) or shutil.which("chromium") is None,
    reason="Debian packages chromium and chromium-driver are not installed",
)


def start_chromium(width: int = 1280, height: int = 1400) -> Any:
    """A headless Chromium (no sandbox: the tests run as root) that keeps its console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def console(driver: Any) -> list[dict[str, Any]]:
    """The console entries since the last call (reading the log empties it)."""
    return list(driver.get_log("browser"))


def problems(entries: list[dict[str, Any]]) -> list[str]:
    """Errors and warnings among console entries: script errors, CSP violations, failed loads."""
    return [e["message"] for e in entries if e["level"] in ("SEVERE", "WARNING")]


def set_viewport(driver: Any, width: int, height: int) -> None:
    """Emulate a screen of this size (a phone at 360 px), as DevTools' device mode does."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def clear_viewport(driver: Any) -> None:
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def wait(browser: Any, condition: Any, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S).until(condition, message)


def by_id(browser: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id)


def css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def choose(browser: Any, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(by_id(browser, select_id)).select_by_value(value)
