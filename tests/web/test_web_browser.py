"""The page in a real browser: Debian's Chromium driven by Playwright, against ``g2w-import ui``
running as a process of its own, and a sandbox served on 127.0.0.1 by the test.

``G2W_SCREENSHOTS=samples pytest tests/web/test_web_browser.py`` also saves the README's pictures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Download,
    Locator,
    Page,
    Response,
    expect,
    sync_playwright,
)

from importer.jobs import journals as keeping
from importer.sandbox import KICKOFF_KEY, ORGANIZER_KEY, WEBINAR_KEY, WORKSHOP_KEY
from tests.helpers import ThreadedServer, command, people, sheet_rows

if sys.platform == "win32":
    pytest.skip("the page's process is stopped with SIGINT: POSIX", allow_module_level=True)


def _chromium() -> Path | None:
    """Debian's Chromium, or the browser $G2W_BROWSER names, or a Chrome on the PATH."""
    named = os.environ.get("G2W_BROWSER")
    found = named or shutil.which("chromium") or shutil.which("google-chrome")
    return Path(found) if found and Path(found).is_file() else None


CHROMIUM = _chromium()
if CHROMIUM is None:
    if os.environ.get("G2W_REQUIRE_BROWSER"):
        pytest.fail("no Chromium: .ci/run installs it (apt-get install chromium)", pytrace=False)
    pytest.skip("no Chromium (apt-get install chromium)", allow_module_level=True)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # a web site whose name leads to this machine: the DNS rebinding the page refuses
    "--host-resolver-rules=MAP rebind.test 127.0.0.1",
]
CANARY = "access-token-canary-b0c4"
SAMPLES = Path(__file__).parents[2] / "samples"
HOSTILE = "<img src=x onerror=alert(1)>"  # were it run, the dialog would fail the test
SHOTS = os.environ.get("G2W_SCREENSHOTS")
#: a start as the command shows it, on the webinar's own clock: "Wed 16 Dec 2026, 15:00 UTC"
STARTS = r"\w{3} \d{1,2} \w{3} \d{4}, \d\d:\d\d UTC"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@dataclass
class Ui:
    """``g2w-import ui`` in a process of its own: its address with the secret, and its port."""

    process: subprocess.Popen[str]
    address: str
    port: int
    secret: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def start_ui(loopback_sandbox: Callable[..., ThreadedServer]) -> Iterator[Callable[..., Ui]]:
    """Start ``g2w-import ui --no-browser`` against a sandbox; each is stopped with Ctrl-C."""
    started: list[Ui] = []

    def start(server: ThreadedServer, *options: str, env: dict[str, str] | None = None) -> Ui:
        process = subprocess.Popen(
            command("ui", "--no-browser", "--api-url", server.api_url, *options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"Page: (http://127\.0\.0\.1:(\d+)/\?token=(\S+))\n", first)
        if not match:
            process.kill()
            raise AssertionError(f"the page did not start: {first!r} {process.stderr}")
        started.append(Ui(process, match[1], int(match[2]), match[3]))
        return started[-1]

    yield start
    for ui in started:
        ui.process.send_signal(signal.SIGINT)
        _, err = ui.process.communicate(timeout=60)
        assert ui.process.returncode == 0, err
        assert "The page was stopped." in err, err
        # every import of these tests ran to its end: nothing is said to carry on
        assert "did not finish" not in err, err
        assert "Traceback" not in err
        assert ui.secret not in err  # only stdout carries the address


@dataclass
class Seen:
    """Every answer the browser got: statuses, and the text of each body, to search for secrets."""

    bodies: list[str] = field(default_factory=list)

    def record(self, response: Response) -> None:
        try:
            body = response.body()
        except Exception:  # a redirect has no body to read
            return
        self.bodies.append(body.decode("utf-8", "replace"))

    def holds(self, secret: str) -> bool:
        assert any('name="g2w-secret"' in body for body in self.bodies)  # the page was read
        assert any('"state":' in body for body in self.bodies)  # and its answers too
        return any(secret in body for body in self.bodies)


def new_page(browser: Browser, seen: Seen, **options: Any) -> tuple[BrowserContext, Page]:
    """A fresh browser profile at 125 % zoom on a 1280-pixel screen, every answer recorded."""
    context = browser.new_context(
        viewport={"width": 1024, "height": 800}, device_scale_factor=1.25, **options
    )
    context.on("response", seen.record)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    return context, page


def shoot(what: Page | Locator, name: str) -> None:
    """A picture for the README: the whole page, or one part of it."""
    if not SHOTS:
        return
    path = str(Path(SHOTS) / f"ui-{name}.png")
    if isinstance(what, Page):
        what.screenshot(path=path, full_page=True)
    else:
        what.screenshot(path=path)


def assert_no_sideways_scrolling(page: Page) -> None:
    """The result table fits its box: status and note in sight, each join URL on one line,
    cut short where need be, the whole of it in the link's title."""
    grid = page.locator("#result .table-wrap")
    assert grid.evaluate("box => box.scrollWidth <= box.clientWidth")
    right = grid.evaluate("box => box.getBoundingClientRect().right")
    for column in ("status", "note"):
        edges = page.locator(f"#result-table td.col-{column}").evaluate_all(
            "cells => cells.map(cell => cell.getBoundingClientRect().right)"
        )
        assert all(edge <= right for edge in edges), (column, edges, right)
    links = page.locator("#result-table td.col-joinurl a").evaluate_all(
        """links => links.map(a => [
            new Set([...a.getClientRects()].map(r => Math.round(r.top))).size,
            getComputedStyle(a.parentElement).textOverflow,
            a.title === a.href,
        ])"""
    )
    assert links
    assert all(link == [1, "ellipsis", True] for link in links), links


def saved(download: Download, folder: Path) -> Path:
    """A downloaded file, under the name the page gave it."""
    path = folder / download.suggested_filename
    download.save_as(path)
    return path


def test_register_the_filled_template_and_download_the_report(
    browser: Browser,
    start_ui: Callable[..., Ui],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0.2)
    ui = start_ui(server, "--organizer-key", ORGANIZER_KEY, env={"G2W_ACCESS_TOKEN": CANARY})
    seen = Seen()
    context, page = new_page(browser, seen, accept_downloads=True)
    page.goto(ui.address)
    assert page.url == ui.base + "/"  # the secret left the address bar
    expect(page.locator("#signin-headline")).to_have_text("Signed in")
    expect(page.locator("#signin-details")).to_contain_text(
        "Using the environment variable G2W_ACCESS_TOKEN"
    )
    expect(page.get_by_label("Webinar", exact=True)).to_contain_text("Customer workshop (sandbox)")

    # keyboard only: Tab to the file picker, open it with Space
    chosen: list[str] = []
    page.once(
        "filechooser",
        lambda chooser: (chooser.set_files(SAMPLES / "workshop.xlsx"), chosen.append("yes")),
    )
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file":
            break
    page.keyboard.press("Space")
    expect(page.locator("#plan .summary")).to_contain_text(
        "12 of 12 rows will be sent to Customer workshop (sandbox)"
    )
    assert chosen == ["yes"]
    expect(page.get_by_label("Webinar", exact=True)).to_have_value(WORKSHOP_KEY)  # from Settings
    template = page.get_by_role("link", name="Download the template")
    with page.expect_download() as download:
        template.click()
    made = load_workbook(saved(download.value, tmp_path))
    assert made["Settings"]["B2"].value == WORKSHOP_KEY
    assert "Your role? *" in [cell.value for cell in made["Registrants"][1]]

    # one style of date throughout, the command's: "Wed 16 Dec 2026, 15:00 UTC"
    option = page.get_by_label("Webinar", exact=True).locator("option:checked").inner_text()
    starts = re.search(rf" — ({STARTS}) \(", option)
    assert starts, option
    expect(page.locator("#plan .summary")).to_contain_text(f"(starts {starts[1]}).")

    register = page.get_by_role("button", name="Register")
    register.focus()
    register.evaluate("button => button.scrollIntoView({block: 'end'})")  # at the window's foot
    page.keyboard.press("Enter")
    expect(page.locator("#progress-text")).to_contain_text(re.compile(r"\d+ of 12 done"))
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.locator("#bar")).to_be_in_viewport(ratio=1)  # scrolled to, below the plan
    if SHOTS:  # the picture shows the pace and the time left
        expect(page.locator("#progress-text")).to_contain_text("per second")
    shoot(page.locator("section:has(#progress)"), "progress")
    expect(page.locator("#result-headline")).to_have_text("Done: 12 registered.", timeout=60_000)
    expect(page.locator("#step-result")).to_be_focused()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(page.locator("#result"), "result")
    for width in (1024, 1280):  # at 125 % and 100 % zoom on a screen 1280 pixels wide
        page.set_viewport_size({"width": width, "height": 800})
        assert_no_sideways_scrolling(page)

    registered = {r["email"]: r["joinUrl"] for r in server.sandbox.registrants(WORKSHOP_KEY)}
    assert len(registered) == 12
    table = page.locator("#result-table tbody tr")
    expect(table).to_have_count(12)
    links = page.locator("#result-table a")
    assert sorted(links.evaluate_all("links => links.map(a => a.href)")) == sorted(
        registered.values()
    )
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the report").click()
    assert download.value.suggested_filename == "workshop-joinurls.xlsx"
    report = load_workbook(saved(download.value, tmp_path))
    rows = list(report["Registrants"].iter_rows(values_only=True))
    email, join = rows[0].index("email"), rows[0].index("joinUrl")
    assert {row[email]: row[join] for row in rows[1:]} == registered
    assert not seen.holds(CANARY)
    context.close()


def test_an_invalid_file_dropped_on_the_page_shows_its_reasons(
    browser: Browser,
    start_ui: Callable[..., Ui],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    ui = start_ui(server, "--organizer-key", ORGANIZER_KEY, env={"G2W_ACCESS_TOKEN": CANARY})
    seen = Seen()
    context, page = new_page(browser, seen)
    page.goto(ui.address)
    dropped = page.evaluate_handle(
        """([name, bytes]) => {
            const files = new DataTransfer();
            files.items.add(new File([new Uint8Array(bytes)], name, {type: "text/csv"}));
            return files;
        }""",
        ["broken-rows.csv", list((SAMPLES / "broken-rows.csv").read_bytes())],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    expect(page.locator("#blocker")).to_have_text(
        "Choose the webinar: the rows are checked against its own form."
    )
    chooser = page.get_by_label("Webinar", exact=True)
    chooser.select_option(WEBINAR_KEY)
    expect(page.locator("#plan .summary")).to_contain_text(
        "2 of 7 rows will be sent to Product launch (sandbox)"
    )
    problems = page.get_by_role("table", name="Rows that need attention, with the reason")
    expect(problems.locator("tbody tr")).to_have_count(5)
    expect(problems.locator("tbody tr").first).to_have_text(
        re.compile(r"3\s*lastName\s*is empty; fill in the last name")
    )
    expect(problems).to_contain_text("same e-mail as row 2; not sent again")
    expect(page.get_by_role("button", name="Register")).to_be_enabled()
    shoot(page, "attention")

    (tmp_path / "empty.csv").write_bytes(b"")
    page.locator("#file").set_input_files(tmp_path / "empty.csv")
    said = page.locator("section:has(#file)").get_by_role("alert")  # beside the file chooser
    expect(said).to_have_text(re.compile(r"^empty\.csv: the file is empty; "))
    expect(page.get_by_role("alert")).to_have_count(1)
    assert page.locator("main").inner_text().count("the file is empty") == 1
    expect(page.get_by_role("button", name="Register")).to_be_disabled()
    expect(chooser).to_have_value(WEBINAR_KEY)  # the webinar chosen stays chosen

    page.locator("#file").set_input_files(SAMPLES / "broken-rows.csv")  # it names none
    expect(page.locator("#plan .summary")).to_contain_text(
        "2 of 7 rows will be sent to Product launch (sandbox)"
    )
    expect(said).to_be_hidden()
    expect(chooser).to_have_value(WEBINAR_KEY)

    # a result with a note (registered already) and errors still fits the window
    server.sandbox.add_registrant(
        {"firstName": "Anna", "lastName": "Schmidt", "email": "anna.schmidt@example.com"}
    )
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#result-headline")).to_contain_text("1 already registered")
    expect(page.locator("#result-table th.col-note")).to_have_text("Note")
    expect(page.locator("#result-table th.col-error")).to_have_text("Problem")
    for width in (1024, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        assert_no_sideways_scrolling(page)
    assert not seen.holds(CANARY)
    context.close()


def test_a_webinar_chosen_by_typing_its_key_shows_its_subject(
    browser: Browser,
    start_ui: Callable[..., Ui],
    loopback_sandbox: Callable[..., ThreadedServer],
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    ui = start_ui(server, "--organizer-key", ORGANIZER_KEY, env={"G2W_ACCESS_TOKEN": CANARY})
    context, page = new_page(browser, Seen())
    page.goto(ui.address)
    chooser = page.get_by_label("Webinar", exact=True)
    expect(chooser).to_contain_text("Customer workshop (sandbox)")
    chooser.select_option("__other")
    page.get_by_label("Webinar key").fill("123")
    page.keyboard.press("Enter")
    expect(page.locator("section:has(#webinar)").get_by_role("alert")).to_contain_text("123")

    chooser.select_option("__other")
    page.get_by_label("Webinar key").fill(KICKOFF_KEY)  # over: not among the upcoming ones
    page.get_by_role("button", name="Use this key").click()
    picked = chooser.locator("option:checked")
    expect(picked).to_have_text(re.compile(rf"^Kick-off \(sandbox\) — {STARTS} \({KICKOFF_KEY}\)$"))
    expect(page.locator("section:has(#webinar)").get_by_role("alert")).to_have_count(0)
    expect(page.locator("#template-for")).to_have_text(
        "made for Kick-off (sandbox), with its own questions"
    )
    starts = picked.inner_text().split(" — ")[1].rsplit(" (", 1)[0]
    page.locator("#file").set_input_files(SAMPLES / "registrants.csv")  # it names no webinar
    expect(page.locator("#plan .summary")).to_have_text(
        f"40 of 40 rows will be sent to Kick-off (sandbox) (starts {starts})."
    )
    expect(chooser).to_have_value(KICKOFF_KEY)
    context.close()


def test_the_browser_is_refused_without_the_secret_under_another_name_or_from_another_page(
    browser: Browser,
    start_ui: Callable[..., Ui],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    ui = start_ui(loopback_sandbox(tokens=(CANARY,), rate=0), "--organizer-key", ORGANIZER_KEY)
    seen = Seen()
    context, page = new_page(browser, seen)
    answer = page.goto(ui.base + "/")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Open the page from its own address")
    expect(page.locator("body")).to_contain_text("opens only from the address that g2w-import")
    expect(page.locator("body")).to_contain_text(
        f"find the line that starts with Page: and open that address, "
        f"http://127.0.0.1:{ui.port}/?token=…, in this browser"
    )
    expect(page.locator("body")).to_contain_text("then run g2w-import ui")
    expect(page.locator("html")).to_have_css("background-color", "rgb(245, 247, 250)")  # styled
    expect(page.locator(".step")).to_have_css("border-radius", "8px")
    stale = page.goto(f"{ui.base}/?token=from-an-earlier-start")
    assert stale is not None
    assert stale.status == 403
    expect(page.locator("body")).to_contain_text("from an earlier start of g2w-import ui")

    rebound = page.goto(f"http://rebind.test:{ui.port}/?token={ui.secret}")
    assert rebound is not None
    assert rebound.status == 403
    expect(page.locator("body")).to_contain_text(
        f"Refused: this page answers only at 127.0.0.1:{ui.port} or localhost:{ui.port}"
    )

    page.goto(f"http://localhost:{ui.port}/?token={ui.secret}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Register people for a GoTo Webinar")
    forged = page.evaluate("fetch('/api/register', {method: 'POST'}).then(r => r.status)")
    assert forged == 403  # the cookie alone does not make a change

    other = context.new_page()
    other.set_content(
        f'<form method="post" action="http://127.0.0.1:{ui.port}/api/stop">'
        "<button>Go</button></form>"
    )
    with other.expect_response(re.compile(r"/api/stop$")) as posted:
        other.get_by_role("button").click()
    assert posted.value.status == 403

    hostile = tmp_path / "hostile.csv"
    hostile.write_text(f"firstName,lastName,email\nAnn,Lee,{HOSTILE}\n", encoding="utf-8")
    page.locator("#file").set_input_files(hostile)
    expect(page.locator("#plan table")).to_contain_text(HOSTILE)  # shown as text, not run
    assert page.locator("#plan img").count() == 0
    page.get_by_label("Webinar", exact=True).select_option("__other")  # not signed in: no list
    page.get_by_label("Webinar key").fill(WEBINAR_KEY)
    page.keyboard.press("Enter")
    expect(page.locator("#blocker")).to_have_text(re.compile(r"^Sign in first: the rows are"))
    expect(page.get_by_label("Webinar", exact=True)).to_have_value(WEBINAR_KEY)

    big = tmp_path / "guests.csv"
    with big.open("wb") as handle:
        handle.truncate(50_000_001)
    page.locator("#file").set_input_files(big)
    expect(page.get_by_role("alert")).to_have_text(
        "guests.csv: is 50.0 MB, and the page takes files up to 50 MB; split the list into "
        "smaller files, or use g2w-import register in a terminal."
    )
    context.close()


def test_sign_in_from_the_page(
    browser: Browser,
    start_ui: Callable[..., Ui],
    loopback_sandbox: Callable[..., ThreadedServer],
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0)
    client_secret = "client-secret-canary-61d2"
    # started without a client, as a double-click starts the app: the client is typed in
    ui = start_ui(server, env={"G2W_AUTH_URL": server.api_url.split("/G2W/")[0]})
    seen = Seen()
    context, page = new_page(browser, seen)
    page.goto(ui.address)
    expect(page.locator("#signin-headline")).to_have_text("Not signed in")
    expect(page.locator("#signin-hint")).to_contain_text("Type your GoTo OAuth client's id")
    page.get_by_label("Client ID").fill("my-client")
    page.get_by_label("Client secret").fill(client_secret)
    page.get_by_role("button", name="Sign in").click()
    link = page.get_by_role("link", name="Open the GoTo sign-in page")
    with context.expect_page() as popup:
        link.click()
    expect(popup.value.locator("h1")).to_have_text("Signed in")
    expect(page.locator("#signin-headline")).to_have_text(
        "Signed in as organizer@sandbox.invalid", timeout=20_000
    )
    expect(page.locator("#signin-details")).to_contain_text(f"Organizer {ORGANIZER_KEY}")
    expect(page.get_by_label("Webinar", exact=True)).to_contain_text("Product launch (sandbox)")
    stored = json.loads(Path(os.environ["G2W_CREDENTIALS_FILE"]).read_text())
    for secret in (stored["access_token"], stored["refresh_token"], client_secret):
        assert not seen.holds(secret)
    assert stored["client_id"] == "my-client"  # kept to renew the login, as login keeps it
    expect(page.get_by_label("Client secret")).to_be_hidden()
    context.close()


def test_undo_an_import_from_the_page_once_its_plan_is_confirmed(
    browser: Browser,
    start_ui: Callable[..., Ui],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    ui = start_ui(server, "--organizer-key", ORGANIZER_KEY, env={"G2W_ACCESS_TOKEN": CANARY})
    seen = Seen()
    context, page = new_page(browser, seen, accept_downloads=True)
    page.goto(ui.address)
    chooser = page.get_by_label("Webinar", exact=True)
    expect(chooser).to_contain_text("Product launch (sandbox)")
    chooser.select_option(WEBINAR_KEY)
    expect(page.locator("#undo")).to_be_hidden()  # nothing imported yet
    page.locator("#file").set_input_files(SAMPLES / "registrants.csv")
    expect(page.locator("#plan .summary")).to_contain_text(
        "40 of 40 rows will be sent to Product launch (sandbox)"
    )
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#result-headline")).to_have_text("Done: 40 registered.", timeout=60_000)
    assert len(server.sandbox.registrants()) == 40

    page.get_by_role("button", name="Undo this import").click()
    question = page.get_by_role("group", name=re.compile(r"^Cancel these registrations\?"))
    expect(question).to_be_visible()
    expect(page.locator("#undo-question")).to_be_focused()
    plan = question.locator("dl")
    expect(plan.locator("dt").first).to_have_text("Webinar")
    expect(plan).to_contain_text("registrants.csv (40 rows)")
    expect(plan.locator("dt:text-is('To cancel') + dd")).to_have_text(
        "40 registrations made by g2w-import"
    )
    expect(page.get_by_role("button", name="Undo this import")).to_be_hidden()
    assert len(server.sandbox.registrants()) == 40  # the question changed nothing
    shoot(page.locator("#more"), "undo-plan")
    page.get_by_role("button", name="Yes, cancel these registrations").click()

    expect(page.locator("#undo-headline")).to_have_text("Done: 40 cancelled.", timeout=60_000)
    expect(page.locator("#undo-headline")).to_be_focused()
    expect(page.locator("#undo-counts")).to_have_text("cancelled: 40")
    expect(page.locator("#undo-meaning")).to_have_text(
        "Every registration g2w-import made for the people of this file is cancelled; anyone "
        "else is left alone (exit code 0)."
    )
    expect(question).to_be_hidden()
    assert server.sandbox.registrants() == []
    link = page.get_by_role("link", name="Download the cancellation report (registrants-undone")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "registrants-undone.xlsx"
    rows = sheet_rows(saved(download.value, tmp_path))
    assert [row["status"] for row in rows] == ["cancelled"] * 40
    expect(page.locator("#result-headline")).to_have_text("Done: 40 registered.")  # still shown

    # what this computer keeps: the journal of the webinar, forgotten once confirmed
    kept = page.locator("#kept-rows tr")
    expect(kept).to_have_count(1)
    expect(kept.first).to_contain_text(f"Product launch (sandbox) ({WEBINAR_KEY})40 cancelled")
    page.get_by_role("button", name="Forget the journal of Product launch (sandbox)").click()
    expect(page.locator("#forget-question")).to_be_focused()
    expect(page.locator("#forget-question")).to_contain_text("(40 cancelled) for good?")
    assert len(list(keeping.folder().glob("*.sqlite3"))) == 1  # the question changed nothing
    page.get_by_role("button", name="Yes, forget it").click()
    expect(page.locator("#forget-done")).to_have_text(
        f"Removed the journal of Product launch (sandbox) ({WEBINAR_KEY})."
    )
    expect(page.locator("#kept-none")).to_be_visible()
    assert list(keeping.folder().glob("*.sqlite3")) == []
    assert not seen.holds(CANARY)
    context.close()


def test_download_the_registrant_list_of_the_webinar_chosen(
    browser: Browser,
    start_ui: Callable[..., Ui],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    for first, last, email in people(3)[1:]:
        server.sandbox.add_registrant(
            {"firstName": first, "lastName": last, "email": email}, WORKSHOP_KEY
        )
    ui = start_ui(server, "--organizer-key", ORGANIZER_KEY, env={"G2W_ACCESS_TOKEN": CANARY})
    seen = Seen()
    context, page = new_page(browser, seen, accept_downloads=True)
    page.goto(ui.address)
    chooser = page.get_by_label("Webinar", exact=True)
    expect(chooser).to_contain_text("Customer workshop (sandbox)")
    chooser.select_option(WORKSHOP_KEY)  # no file chosen: the webinar alone
    expect(page.locator("#export-for")).to_have_text(
        "Everyone registered for Customer workshop (sandbox), however they registered, with "
        "their join links and their answers to its questions."
    )
    page.get_by_role("button", name="Download the registrant list").click()
    name = "Customer workshop (sandbox)-registrants.xlsx"
    link = page.get_by_role("link", name=f"Download {name}")
    expect(link).to_be_focused()
    expect(page.locator("#export-headline")).to_have_text("Done: 3 registrants exported.")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == name
    rows = sheet_rows(saved(download.value, tmp_path))
    assert {row["email"]: row["joinUrl"] for row in rows} == {
        r["email"]: r["joinUrl"] for r in server.sandbox.registrants(WORKSHOP_KEY)
    }
    assert all(row["joinUrl"].startswith("https://") for row in rows)
    assert not seen.holds(CANARY)
    context.close()
