"""The one-file app, as built by ``bash .ci/build-app``: the same command, and a double-click
that opens the page and stops when its window closes.

Runs the file ``$G2W_APP`` names (``.ci/run`` builds it and sets it); skipped without it,
unless ``$G2W_REQUIRE_APP`` is set. Each start unpacks the app (about a second): these tests
wait for it in real time. A signal goes to the app's process group, as a terminal sends
Ctrl-C and a closed window's SIGHUP: to the process that unpacked the app and to the app.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from importer.version import __version__
from tests.helpers import sheet_rows

APP = os.environ.get("G2W_APP")
if not APP:
    if os.environ.get("G2W_REQUIRE_APP"):
        pytest.fail("no built app: .ci/run builds it (bash .ci/build-app)", pytrace=False)
    pytest.skip(
        "no built app: bash .ci/build-app, then G2W_APP=<the path it prints>",
        allow_module_level=True,
    )
if sys.platform == "win32":
    pytest.skip("the window is closed with SIGHUP: POSIX", allow_module_level=True)

from playwright.sync_api import Browser, expect  # noqa: E402 - only once there is an app

from tests.web import test_web_browser  # noqa: E402
from tests.web.test_web_browser import Seen, new_page  # noqa: E402

#: Chromium, as the page's own browser tests drive it
browser = test_web_browser.browser

EXECUTABLE = Path(APP).resolve()
SAMPLES = Path(__file__).parents[1] / "samples"


def app_env(tmp_path: Path, **more: str) -> dict[str, str]:
    """The environment of a person's first start: their own data and config folders."""
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), **more}


def beside_the_app() -> set[str]:
    return {p.name for p in EXECUTABLE.parent.iterdir()}


def test_the_app_is_the_command(tmp_path: Path) -> None:
    before = beside_the_app()
    version = subprocess.run(
        [EXECUTABLE, "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert version.stdout.strip() == f"g2w-import, version {__version__}"
    report = tmp_path / "report.xlsx"
    run = subprocess.run(
        [
            EXECUTABLE,
            "register",
            SAMPLES / "registrants.csv",
            "--sandbox",
            "--yes",
            "--out",
            report,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=app_env(tmp_path),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "Done: 40 registered." in run.stderr
    rows = sheet_rows(report)
    assert [row["status"] for row in rows] == ["registered"] * 40
    assert all(str(row["joinUrl"]).startswith("https://") for row in rows)
    journals = list((tmp_path / "data" / "g2w-import" / "sandbox" / "journals").glob("*.sqlite3"))
    assert len(journals) == 1  # where the Python package keeps them
    assert beside_the_app() == before  # nothing written beside the executable


def test_the_page_served_by_the_app_registers_the_samples(browser: Browser, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [EXECUTABLE, "ui", "--sandbox", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=app_env(tmp_path),
        cwd=tmp_path,
        start_new_session=True,  # a window of its own
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"Page: (http://127\.0\.0\.1:\d+/\?token=\S+)\n", first)
        assert match, first
        context, page = new_page(browser, Seen())
        page.goto(match[1])
        page.locator("#file").set_input_files(SAMPLES / "registrants.csv")
        expect(page.locator("#plan .summary")).to_contain_text("40 of 40 rows will be sent")
        page.get_by_role("button", name="Register").click()
        expect(page.locator("#result-headline")).to_have_text(
            "Done: 40 registered.", timeout=90_000
        )
        context.close()
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in its window
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert "The page was stopped." in errors
    assert "Traceback" not in errors


def test_ctrl_c_in_the_apps_window_stops_a_register_run_once_and_gently(tmp_path: Path) -> None:
    rows = ["First Name,Last Name,Email"] + [f"A{i},B{i},p{i}@example.com" for i in range(300)]
    guests = tmp_path / "guests.csv"
    guests.write_text("\n".join(rows) + "\n")
    process = subprocess.Popen(
        [EXECUTABLE, "register", guests, "--sandbox", "--yes", "--rate", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=app_env(tmp_path),
        cwd=tmp_path,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    journals = tmp_path / "data" / "g2w-import" / "sandbox" / "journals"
    while not list(journals.glob("*.sqlite3")):  # sending has begun
        assert time.monotonic() < deadline, process.stderr
        time.sleep(0.1)
    time.sleep(1)
    os.killpg(process.pid, signal.SIGINT)
    _, errors = process.communicate(timeout=60)
    assert "Stopping: letting the calls under way finish" in errors
    assert "stop at once" in errors  # how to: said, not done
    assert "rows are pending: run the same command again to continue" in errors
    assert "Interrupted while" not in errors
    assert "(it also writes the report)" not in errors  # what a second Ctrl-C says
    assert "Traceback" not in errors
    assert process.returncode == 130
    assert (tmp_path / "guests-joinurls.xlsx").exists()  # stopped gently: the report is there


def test_a_double_click_opens_the_page_and_closing_its_window_stops_it(
    browser: Browser, tmp_path: Path
) -> None:
    opened = tmp_path / "opened.txt"
    # the "default browser" the app opens the page in: a script that notes the address
    fake = tmp_path / "browser.sh"
    fake.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    fake.chmod(0o755)
    process = subprocess.Popen(
        [EXECUTABLE],  # as a double-click starts it: no arguments
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=app_env(tmp_path, BROWSER=str(fake)),
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Page: http://127.0.0.1:"), first
        deadline = time.monotonic() + 30  # opened just after the address is printed
        while not (opened.exists() and opened.read_text()):
            assert process.poll() is None, "the app stopped"
            assert time.monotonic() < deadline, "the page was not opened in the browser"
            time.sleep(0.05)
        address = opened.read_text()
        assert address == first.removeprefix("Page: ").strip()
        context, page = new_page(browser, Seen())
        page.goto(address)
        expect(page.locator("#signin")).to_be_visible()  # no sign-in yet: the page says how
        context.close()
    finally:
        os.killpg(process.pid, signal.SIGHUP)  # what closing its window sends
        _, errors = process.communicate(timeout=60)
    assert "Close this window to stop g2w-import" in errors
    assert process.returncode == 0, errors
    assert "The page was stopped." in errors
