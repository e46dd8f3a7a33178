"""`labctl dashboard` in a real browser: headless Chromium (Debian's package, driven through
chromedriver) shows lb-haproxy's three backends answering a load; when app-2 is killed the page
turns its container failed, lists the fault and drops its requests per second to zero. The
page's screenshot before and after the kill is kept in test-artifacts/ (LABCTL_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import REPO, Cli, lab_for_module

LAB = "lb-haproxy"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps trying Google's hosts on this closed network.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1000,1100")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are needed: run scripts/setup-host.sh")
    return lab_for_module(tmp_path_factory, request, LAB)


@pytest.fixture()
def dashboard(lab: Cli) -> Iterator[str]:
    """`labctl dashboard` on a free port; the URL it printed."""
    process = subprocess.Popen([*lab.argv(), "dashboard", LAB, "--port", "0"], env=lab.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line, line + process.stdout.read()
        yield line.split()[3]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _artifacts() -> Path:
    folder = Path(os.environ.get("LABCTL_TEST_ARTIFACTS", REPO / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _until(what: str, holds: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = holds()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"the page never showed {what} within {timeout:.0f} s")


# Read in one script: the page redraws every second, so elements found one by one go stale.
READ_PAGE = """
const all = selector => Array.from(document.querySelectorAll(selector));
return {
  outcome: Object.fromEntries(all("span.container").map(e => [e.dataset.name, e.dataset.outcome])),
  rps: Object.fromEntries(all("tr.backend").map(e => [e.dataset.name, parseFloat(e.dataset.rps)])),
  faults: all("div.fault").map(e => [e.dataset.fault, e.dataset.target]),
};
"""


def _page(browser: Any) -> dict[str, Any]:
    """What the page shows now, read from its elements."""
    page: dict[str, Any] = browser.execute_script(READ_PAGE)
    page["faults"] = [tuple(f) for f in page["faults"]]
    return page


def test_the_page_shows_a_killed_backend_fail_and_its_share_fall_to_zero(lab: Cli, dashboard: str,
                                                                          browser: Any) -> None:
    load = subprocess.Popen([*lab.argv(), "load", LAB, "--users", "4", "--duration", "45s"], env=lab.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        browser.get(dashboard)
        apps = ("app-1", "app-2", "app-3")
        before = _until("three backends answering", lambda: (page := _page(browser))["rps"] and all(
            page["rps"].get(app, 0) > 0 for app in apps) and page)
        assert all(before["outcome"][app] == "healthy" for app in apps), before
        browser.save_screenshot(str(_artifacts() / "dashboard-before-kill.png"))
        lab.ok("chaos", LAB, "kill", "app.2")
        after = _until("app-2 failed with no requests", lambda: (page := _page(browser))["outcome"].get(
            "app-2") == "failed" and page["rps"].get("app-2") == 0 and page)
        assert ("kill", "app-2") in after["faults"], after
        assert after["rps"]["app-1"] > 0 and after["rps"]["app-3"] > 0, after
        browser.save_screenshot(str(_artifacts() / "dashboard-after-kill.png"))
    finally:
        load.terminate()
        load.wait(timeout=30)
        lab.ok("heal", LAB)


def test_the_state_the_page_polls_is_served_on_127_0_0_1_only(dashboard: str) -> None:
    assert dashboard.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(dashboard + "state.json", timeout=10) as response:
        state = json.loads(response.read())
    assert state["lab"] == LAB and {c["name"] for c in state["containers"]} >= {"app-1", "app-2", "app-3", "lb"}
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{dashboard.rsplit(':', 1)[1].strip('/')}"],
                               capture_output=True, text=True, check=True).stdout.split()
    assert listening[3].startswith("127.0.0.1:"), listening
