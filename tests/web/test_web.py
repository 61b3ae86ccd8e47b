"""The local web page's server: its guard, its routes, and imports run through it.

Each test serves the page with uvicorn on a free port of 127.0.0.1, as ``g2w-import ui`` does, and
asks it what the page's script asks (the browser itself is in ``test_web_browser.py``).
"""

from __future__ import annotations

import io
import json
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from importer.goto.connection import Access
from importer.goto.credentials import Credentials, FileStore, store
from importer.model import local_time
from importer.sandbox import KICKOFF_KEY, ORGANIZER_KEY, SUMMIT_KEY, WEBINAR_KEY, WORKSHOP_KEY
from importer.web.app import create_app
from importer.web.desk import BUSY, MAX_UPLOAD, Desk, upload_name
from importer.web.guard import SECURITY_HEADERS, cookie_name
from importer.web.server import bind, uvicorn_server
from importer.web.signin import OAuthClient, SignIn
from tests.helpers import ThreadedServer, free_port, people, posix_only, sheet_rows, write_csv

SECRET = "launch-secret-for-the-tests"
CANARY = "access-token-canary-5d1e"
SAMPLES = Path(__file__).parents[2] / "samples"


class Page:
    """The page's server on 127.0.0.1, asked what its script asks; every answer is kept, to look
    for secrets in."""

    def __init__(
        self,
        access: Access,
        folder: Path,
        *,
        rate: float = 100.0,
        client: OAuthClient | None = None,
        open_browser: Callable[[str], None] | None = None,
        **sign_in: Any,
    ) -> None:
        self.desk = Desk(access, folder, rate=rate)
        sock = bind(0)
        self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        app = create_app(
            self.desk,
            SignIn(access, client, open_browser, **sign_in),
            port=self.port,
            secret=SECRET,
        )
        self.server = uvicorn_server(app)
        self._thread = threading.Thread(target=self.server.run, args=([sock],), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the page's server did not start"
            time.sleep(0.01)
        self.http = self.stranger()
        self.http.cookies.set(cookie_name(self.port), SECRET)
        self.answers: list[str] = []
        self.closing = [self.http, sock]

    def stranger(self) -> httpx.Client:
        """A client without the secret."""
        return httpx.Client(base_url=self.base, timeout=30)

    def close(self) -> None:
        """Stop the server as Ctrl-C does: an import under way stops and its report is written."""
        self.server.should_exit = True
        self._thread.join(timeout=90)
        for thing in self.closing:
            thing.close()

    def _kept(self, answer: httpx.Response) -> httpx.Response:
        if not answer.headers.get("content-type", "").startswith("application/vnd"):
            self.answers.append(answer.text)
        return answer

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._kept(self.http.get(path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-G2W-Secret": SECRET, **kwargs.pop("headers", {})}
        return self._kept(self.http.post(path, headers=headers, **kwargs))

    def state(self) -> dict[str, Any]:
        answer = self.get("/api/state")
        assert answer.status_code == 200, answer.text
        state: dict[str, Any] = answer.json()
        return state

    def settle(self, until: Callable[[dict[str, Any]], bool] = lambda s: not s["busy"]) -> Any:
        """Ask for the state, as the page does, until ``until`` holds (a minute at most)."""
        deadline = time.monotonic() + 60
        while True:
            state = self.state()
            if until(state):
                return state
            assert time.monotonic() < deadline, state
            time.sleep(0.05)

    def upload(self, path: Path, name: str | None = None, webinar: str = "") -> httpx.Response:
        """Upload ``path`` as the page does, with the webinar chosen on the page (if any)."""
        params = {"name": name or path.name, **({"webinar": webinar} if webinar else {})}
        return self.post("/api/upload", params=params, content=path.read_bytes())


@pytest.fixture
def open_page(tmp_path: Path) -> Iterator[Callable[..., Page]]:
    """Start the page's server on a free port; each is stopped after the test."""
    pages: list[Page] = []

    def start(access: Access | None = None, **kwargs: Any) -> Page:
        pages.append(Page(access or Access(sandbox=True), tmp_path / "ui", **kwargs))
        return pages[-1]

    yield start
    for page in pages:
        page.close()


def on_loopback(server: ThreadedServer) -> Access:
    """Access to a sandbox served on 127.0.0.1, with the canary as the token."""
    return Access(api_url=server.api_url, token=CANARY, organizer_key=ORGANIZER_KEY)


def test_only_the_launch_secret_from_this_machine_gets_an_answer(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    stranger = page.stranger()
    page.closing.append(stranger)
    refused = stranger.get("/", headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert "printed when it started" in refused.text
    assert f"<code>http://127.0.0.1:{page.port}/?token=…</code>" in refused.text
    assert "run <code>g2w-import ui</code>" in refused.text
    assert SECRET not in refused.text
    assert stranger.get("/api/state").json()["error"].startswith("This page opens only")
    stale = stranger.get("/?token=guessed", headers={"Accept": "text/html"})
    assert stale.status_code == 403
    assert "is not this page's: it is from an earlier start of" in stale.text
    assert stranger.post("/api/stop", headers={"X-G2W-Secret": SECRET}).status_code == 403

    welcomed = stranger.get("/?token=" + SECRET)
    assert welcomed.status_code == 303
    assert welcomed.headers["location"] == "/"  # the secret does not stay in the address
    cookie = welcomed.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(page.port)}={SECRET};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    shown = stranger.get("/")
    assert shown.status_code == 200
    assert f'<meta name="g2w-secret" content="{SECRET}">' in shown.text
    assert stranger.get("/template.xlsx?token=" + SECRET + "&webinar=1").headers["location"] == (
        "/template.xlsx?webinar=1"
    )

    port = page.port
    for host in (f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", f"[::1]:{port}"):
        rebound = page.http.get("/api/state", headers={"Host": host})
        assert rebound.status_code == 403, host
        assert f"answers only at 127.0.0.1:{port} or localhost:{port}" in rebound.text
    assert page.http.get("/api/state", headers={"Host": f"localhost:{port}"}).status_code == 200


def test_without_the_secret_only_the_stylesheet_of_the_refusal_is_served(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    stranger = page.stranger()
    page.closing.append(stranger)
    refused = stranger.get("/", headers={"Accept": "text/html"})
    assert '<link rel="stylesheet" href="/static/page.css">' in refused.text
    style = stranger.get("/static/page.css")
    assert style.status_code == 200
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert style.headers["cross-origin-resource-policy"] == "same-origin"
    for path in ("/static/page.js", "/api/state", "/api/webinars", "/files/report", "/"):
        assert stranger.get(path).status_code == 403, path
    assert stranger.post("/static/page.css").status_code == 403
    elsewhere = stranger.get("/static/page.css", headers={"Host": f"evil.example:{page.port}"})
    assert elsewhere.status_code == 403


def test_a_change_needs_the_secret_in_a_header_as_well_as_the_cookie(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    for headers in ({}, {"X-G2W-Secret": "guessed"}):
        forged = page.http.post("/api/stop", headers=headers)
        assert forged.status_code == 403
        assert "did not come from the g2w-import page" in forged.json()["error"]
    assert page.post("/api/stop").status_code == 200
    for answer in (page.http.get("/"), page.http.get("/nowhere", headers={"Host": "x"})):
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value


def test_an_upload_over_the_limit_is_refused_and_not_kept(
    open_page: Callable[..., Page], tmp_path: Path
) -> None:
    page = open_page()
    too_big = b"firstName,lastName,email\n" + b"x" * MAX_UPLOAD
    announced = page.post("/api/upload", params={"name": "guests.csv"}, content=too_big)
    assert announced.status_code == 413
    assert announced.json()["error"] == (
        "guests.csv: is 50.0 MB, and the page takes files up to 50 MB; split the list into "
        "smaller files, or use g2w-import register in a terminal"
    )
    streamed = page.post(
        "/api/upload", params={"name": "guests.csv"}, content=iter([too_big[:1000], too_big])
    )
    assert streamed.status_code == 413  # no Content-Length: counted while it arrives
    assert not any((tmp_path / "ui" / "uploads").iterdir())
    assert page.state()["file"] is None


@posix_only
def test_uploads_are_kept_privately_under_a_safe_name(
    open_page: Callable[..., Page], tmp_path: Path
) -> None:
    assert upload_name("../../etc/guests.csv") == "guests.csv"
    assert upload_name("C:\\Users\\ann\\Desktop\\Gäste Mai.xlsx") == "Gäste Mai.xlsx"
    assert upload_name(".hidden.CSV") == "hidden.csv"
    assert upload_name('a<b>:"c|?*.txt') == "abc.txt"
    page = open_page()
    page.upload(SAMPLES / "registrants.csv", name="../registrants.csv")
    kept = page.desk.upload
    assert kept is not None
    assert kept.name == "registrants.csv"
    for folder in (tmp_path / "ui", tmp_path / "ui" / "uploads", kept.path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(kept.path.stat().st_mode) == 0o600
    assert kept.path.read_bytes() == (SAMPLES / "registrants.csv").read_bytes()


def test_a_file_that_cannot_be_used_says_why_in_one_line(
    open_page: Callable[..., Page], tmp_path: Path
) -> None:
    page = open_page()
    pdf = page.post("/api/upload", params={"name": "guests.pdf"}, content=b"%PDF-1.4")
    assert pdf.status_code == 400
    assert pdf.json()["error"] == (
        "guests.pdf: cannot read '.pdf' files; save the list as .xlsx or .csv and choose it again"
    )
    (tmp_path / "empty.csv").write_bytes(b"")
    page.upload(tmp_path / "empty.csv")
    state = page.settle()
    assert state["check"]["error"].startswith("empty.csv: the file is empty")
    assert state["blocker"] == state["check"]["error"]
    refused = page.post("/api/register")
    assert refused.status_code == 400
    assert refused.json()["error"] == state["check"]["error"]
    write_csv(tmp_path / "names.csv", [["name", "phone"], ["Ann", "0049"]])
    page.upload(tmp_path / "names.csv")
    error = page.settle()["check"]["error"]
    assert error.startswith("names.csv")
    assert "\n" not in error


def test_a_file_chosen_keeps_the_webinar_chosen_unless_it_names_its_own(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    page = open_page(on_loopback(server))
    guests = write_csv(tmp_path / "guests.csv", people(3))
    page.upload(guests)
    assert page.settle()["blocker"].startswith("Choose the webinar")
    page.upload(guests, webinar=WEBINAR_KEY)
    state = page.settle()
    assert state["check"]["chosen"] == WEBINAR_KEY
    (plan,) = state["check"]["plans"]
    assert (plan["key"], plan["send"], state["blocker"]) == (WEBINAR_KEY, 3, None)

    page.upload(SAMPLES / "workshop.xlsx", webinar=WEBINAR_KEY)  # its Settings sheet names one
    state = page.settle()
    assert state["check"]["chosen"] == ""
    assert [plan["key"] for plan in state["check"]["plans"]] == [WORKSHOP_KEY]

    (tmp_path / "empty.csv").write_bytes(b"")
    page.upload(tmp_path / "empty.csv", webinar=WORKSHOP_KEY)
    check = page.settle()["check"]
    assert check["error"].startswith("empty.csv: the file is empty")
    assert check["chosen"] == WORKSHOP_KEY  # still the webinar chosen on the page
    mangled = page.upload(guests, webinar="8.32536E+18")
    assert mangled.status_code == 400
    assert mangled.json()["error"].startswith("the webinar key '8.32536E+18' is a number")


def test_the_plan_lists_each_row_that_needs_attention_with_its_reason(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    page.upload(SAMPLES / "broken-rows.csv")
    state = page.settle()
    (plan,) = state["check"]["plans"]
    assert plan["key"] == WEBINAR_KEY
    assert plan["webinar"]["subject"] == "Product launch (sandbox)"
    assert (plan["rows"], plan["send"]) == (7, 2)
    reasons = {(p["row"], p["column"]): p["problem"] for p in plan["attention"]}
    assert list(reasons) == [
        (3, "lastName"),
        (4, "email"),
        (5, "email"),
        (6, "firstName"),
        (7, "email"),
    ]
    assert reasons[3, "lastName"] == "is empty; fill in the last name"
    assert reasons[5, "email"] == "same e-mail as row 2; not sent again"
    assert "non-breaking space" in reasons[6, "firstName"]
    assert state["blocker"] is None
    assert state["register"] == "Register"


def test_the_webinar_chosen_checks_the_file_again_against_its_form(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    listed = page.get("/api/webinars").json()["webinars"]
    assert [(w["key"], w["subject"]) for w in listed] == [
        (WEBINAR_KEY, "Product launch (sandbox)"),
        (WORKSHOP_KEY, "Customer workshop (sandbox)"),
        (SUMMIT_KEY, "Partner summit (sandbox)"),
    ]
    page.upload(SAMPLES / "workshop.xlsx")
    first = page.settle()["check"]
    assert first["chosen"] == ""
    assert [plan["key"] for plan in first["plans"]] == [WORKSHOP_KEY]  # its Settings sheet's
    assert first["plans"][0]["send"] == 12
    page.upload(SAMPLES / "registrants.csv")
    page.settle()
    page.post("/api/check", json={"webinar": WORKSHOP_KEY})
    state = page.settle()
    assert state["check"]["chosen"] == WORKSHOP_KEY
    assert state["check"]["error"].startswith(
        "registrants.csv: no 'Your role?' column (the header in line 1 has 'First Name'"
    )  # the workshop's required question, which this file lacks
    assert state["blocker"] == state["check"]["error"]
    assert state["register"] == "Register"
    typed = page.post("/api/check", json={"webinar": "8.32536E+18"})
    assert typed.status_code == 400
    assert typed.json()["error"].startswith(
        "the webinar key '8.32536E+18' is a number rounded by Excel, not a key"
    )


def test_a_webinar_typed_by_its_key_is_looked_up_and_starts_read_as_the_command_says(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    listed = page.get("/api/webinars").json()["webinars"]
    for webinar in listed:
        assert webinar["when"] == local_time(webinar["starts"], webinar["zone"])
        assert re.fullmatch(
            r"[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC", webinar["when"]
        )
    typed = page.get("/api/webinar", params={"key": KICKOFF_KEY})  # over, so not listed
    assert typed.status_code == 200
    kickoff = typed.json()["webinar"]
    assert (kickoff["key"], kickoff["subject"]) == (KICKOFF_KEY, "Kick-off (sandbox)")
    assert kickoff["when"] == local_time(kickoff["starts"], kickoff["zone"])
    unknown = page.get("/api/webinar", params={"key": "123"})
    assert unknown.status_code == 400
    assert "123" in unknown.json()["error"]
    page.upload(SAMPLES / "workshop.xlsx")
    (plan,) = page.settle()["check"]["plans"]
    assert plan["webinar"]["when"] == next(w["when"] for w in listed if w["key"] == WORKSHOP_KEY)


def test_without_a_sign_in_or_a_webinar_the_page_says_what_is_missing(
    open_page: Callable[..., Page],
) -> None:
    page = open_page(Access())
    status = page.get("/api/sign-in").json()
    assert (status["state"], status["headline"], status["needs_client"]) == (
        "signed-out",
        "Not signed in",
        True,
    )
    assert "Type your GoTo OAuth client's id and secret" in status["hint"]
    assert "its redirect URI must be http://127.0.0.1:51123/callback" in status["hint"]
    assert "G2W_CLIENT_ID" in status["hint"]
    assert "run g2w-import login in a terminal" in status["hint"]
    untyped = page.post("/api/sign-in", json={"client_id": "x", "client_secret": " "})
    assert untyped.status_code == 400
    assert "type your OAuth client's id and secret first" in untyped.json()["error"]
    assert status["message"] is None  # said once, in the hint
    webinars = page.get("/api/webinars")
    assert webinars.status_code == 400
    assert webinars.json()["error"].startswith("Not signed in: once you are (see the top")
    looked_up = page.get("/api/webinar", params={"key": WEBINAR_KEY})
    assert looked_up.json()["error"] == webinars.json()["error"]  # said once on the page
    page.upload(SAMPLES / "registrants.csv")
    state = page.settle()
    assert state["check"]["plans"][0]["webinar"] is None
    assert state["check"]["plans"][0]["send"] == 40  # the file alone is checked meanwhile
    assert state["blocker"].startswith("Choose the webinar")
    page.post("/api/check", json={"webinar": WEBINAR_KEY})
    assert page.settle()["blocker"].startswith("Sign in first")
    assert page.post("/api/register").json()["error"].startswith("Sign in first")


def test_register_through_the_page_and_download_the_report(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    page = open_page(on_loopback(server))
    rows = people(6)
    rows[3][2] = "not-an-address"
    page.upload(write_csv(tmp_path / "guests.csv", rows))
    assert page.settle()["blocker"].startswith("Choose the webinar")
    page.post("/api/check", json={"webinar": WEBINAR_KEY})
    page.settle()
    started = page.post("/api/register")
    assert started.status_code == 200
    assert page.post("/api/register").status_code == 409  # one import at a time
    state = page.settle()
    result = state["result"]
    assert result["headline"] == "Done: 5 registered, 1 invalid."
    assert result["counts"] == [
        {"status": "registered", "count": 5},
        {"status": "invalid", "count": 1},
    ]
    assert result["columns"] == [
        "row", "firstName", "lastName", "email", "status", "joinUrl", "error"
    ]  # fmt: skip
    assert result["rows"][2][6].startswith("email: 'not-an-address' is not a valid e-mail")
    assert state["register"] is None  # nothing left to send from this file
    assert state["run"]["counts"] == {"registered": 5}
    registered = {r["email"]: r["joinUrl"] for r in server.sandbox.registrants()}
    shown = {row[3]: row[5] for row in result["rows"] if row[4] == "registered"}
    assert shown == registered

    report = page.get("/files/report")
    assert report.status_code == 200
    assert 'filename="guests-joinurls.xlsx"' in report.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(report.content))["Registrants"]
    table = list(sheet.iter_rows(values_only=True))
    column = table[0].index("joinUrl")
    assert {row[3]: row[column] for row in table[1:] if row[column]} == registered
    attention = page.get("/files/attention")
    assert attention.status_code == 200
    fix = load_workbook(io.BytesIO(attention.content))["Needs attention"]
    assert any("not-an-address" in (cell.value or "") for row in fix.iter_rows() for cell in row)
    assert [cell.value for cell in fix[1]][-1] == "error"
    assert page.get("/files/elsewhere").status_code == 404
    assert not any(CANARY in answer for answer in page.answers)


def test_an_old_report_kept_aside_is_said_as_the_command_says_it(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    page = open_page(on_loopback(server))
    page.upload(write_csv(tmp_path / "guests.csv", people(2)), webinar=WEBINAR_KEY)
    page.settle()
    upload = page.desk.upload
    assert upload is not None
    old = Workbook()
    sheet = old.active
    sheet.title = "Registrants"
    sheet.append(["firstName", "lastName", "email", "joinUrl"])
    sheet.append(["Zoe", "Old", "zoe@earlier.example", "https://join.example/zoe"])
    old.save(upload.report_path)
    page.post("/api/register")
    result = page.settle()["result"]
    assert result["headline"] == "Done: 2 registered."
    (note,) = result["notes"]
    assert re.fullmatch(
        r"guests-joinurls\.xlsx held join URLs that this run's report does not have \(of 1 "
        r"person\); it was kept as guests-joinurls-\d{8}-\d{6}\.xlsx",
        note,
    )
    assert page.get("/files/report").status_code == 200


def test_a_message_about_a_file_the_page_keeps_names_it_without_the_folder(
    open_page: Callable[..., Page], tmp_path: Path
) -> None:
    page = open_page()
    page.upload(write_csv(tmp_path / "guests.csv", people(2)))
    page.settle()
    upload = page.desk.upload
    assert upload is not None
    upload.report_path.mkdir()  # where the report goes: it cannot be written
    page.post("/api/register")
    error = page.settle()["result"]["error"]
    assert error.startswith("guests-joinurls.xlsx: ")
    assert str(tmp_path) not in "".join(page.answers)


def test_stopped_or_closed_an_import_continues_and_nobody_is_registered_twice(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(
        tokens=(CANARY,), rate=0, latency=0.2, dedupe=False
    )  # a double send would show
    access = on_loopback(server)
    page = open_page(access, rate=10)
    page.upload(write_csv(tmp_path / "guests.csv", people(30)))
    page.settle()
    page.post("/api/check", json={"webinar": WEBINAR_KEY})
    page.settle()
    page.post("/api/register")
    page.settle(lambda s: s["run"]["done"] >= 3)
    page.post("/api/stop")
    state = page.settle()
    result = state["result"]
    pending = result["pending"]
    assert pending > 0
    assert result["headline"].startswith(f"Stopped. {pending} rows are pending: press Continue")
    assert state["register"] == "Continue"
    book = load_workbook(io.BytesIO(page.get("/files/report").content))
    summary = dict(book["Summary"].iter_rows(values_only=True))
    assert summary["Input file"] == "guests.csv"  # as the person's computer calls it
    assert summary["Interrupted"].endswith(
        "To continue, choose the same file in g2w-import ui and press Continue (nobody is "
        "registered twice)"
    )
    rows = list(book["Registrants"].iter_rows(values_only=True))
    status, error = rows[0].index("status"), rows[0].index("error")
    waiting = {row[error] for row in rows[1:] if row[status] == "pending"}
    assert waiting == {"not sent: the run stopped first; press Continue in g2w-import ui"}
    shown = {column: i for i, column in enumerate(result["columns"])}
    assert waiting == {
        row[shown["error"]] for row in result["rows"] if row[shown["status"]] == "pending"
    }
    assert not any(str(tmp_path) in answer for answer in page.answers)  # no folder of the page

    page.post("/api/register")  # Continue, then the server stops while it runs
    page.settle(lambda s: s["run"]["sending"] and s["run"]["done"] >= 3)
    page.close()
    assert not json.loads((tmp_path / "ui" / "last-run.json").read_text())["finished"]

    again = open_page(access, rate=10)  # the next start offers the same file again
    state = again.settle()
    assert state["restored"]
    assert state["file"]["name"] == "guests.csv"
    assert state["register"] == "Continue"
    again.post("/api/register")
    state = again.settle()
    assert state["result"]["headline"] == "Done: 30 registered."
    assert state["run"]["resumed"] >= 6
    assert state["run"]["resuming"]  # the import before stopped with rows left
    emails = [r["email"] for r in server.sandbox.registrants()]
    assert sorted(emails) == sorted(row[2] for row in people(30)[1:])
    assert json.loads((tmp_path / "ui" / "last-run.json").read_text())["finished"]


def test_the_template_download_is_made_for_the_webinar_chosen(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    plain = load_workbook(io.BytesIO(page.get("/template.xlsx").content))
    assert plain["Settings"]["B2"].value in (None, "")
    made = page.get("/template.xlsx", params={"webinar": WORKSHOP_KEY})
    assert 'filename="registrants.xlsx"' in made.headers["content-disposition"]
    book = load_workbook(io.BytesIO(made.content))
    assert book["Settings"]["B2"].value == WORKSHOP_KEY
    headers = [cell.value for cell in book["Registrants"][1]]
    assert "Your role? *" in headers  # the workshop's required question
    unknown = page.get("/template.xlsx", params={"webinar": "123"})
    assert unknown.status_code == 400
    assert '<a href="/">Back to the page</a>' in unknown.text


def test_the_sign_in_state_names_who_and_never_a_token(open_page: Callable[..., Page]) -> None:
    place = store()
    assert isinstance(place, FileStore)
    place.save(
        Credentials(
            CANARY,
            refresh_token="refresh-canary-77a0",
            expires_at=time.time() + 3600,
            lifetime=3600,
            organizer_key=ORGANIZER_KEY,
            account="ann@example.com",
            client_id="client",
            client_secret="client-secret-canary-3c9f",
        )
    )
    page = open_page(Access())
    answer = page.get("/api/sign-in")
    status = answer.json()
    assert status["state"] == "signed-in"
    assert status["headline"] == "Signed in as ann@example.com"
    assert status["details"][0] == f"Organizer {ORGANIZER_KEY}"
    assert status["details"][2].endswith("; renewed automatically")
    for secret in (CANARY, "refresh-canary-77a0", "client-secret-canary-3c9f"):
        assert secret not in answer.text


def test_sign_in_from_the_page_runs_the_login_flow(
    open_page: Callable[..., Page], loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    server = loopback_sandbox(tokens=(CANARY,), rate=0, redirect_uri=redirect)
    visited: list[str] = []

    def browser(address: str) -> None:  # follows the authorize redirect into the callback
        visited.append(address)
        with httpx.Client(follow_redirects=True, timeout=10) as http:
            http.get(address)

    sign_in_server = server.api_url.split("/G2W/")[0]
    page = open_page(
        Access(api_url=server.api_url), auth_url=sign_in_server, port=port, open_browser=browser
    )
    assert page.get("/api/sign-in").json()["needs_client"]  # typed on the page
    typed = {"client_id": "my-client", "client_secret": "client-secret-canary-3c9f"}
    assert page.post("/api/sign-in", json=typed).status_code == 200
    deadline = time.monotonic() + 30
    while (status := page.get("/api/sign-in").json())["state"] != "signed-in":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["headline"] == "Signed in as organizer@sandbox.invalid"
    assert "code_challenge_method=S256" in visited[0]
    signed = store().load()
    assert signed is not None
    assert signed.organizer_key == ORGANIZER_KEY
    assert page.get("/api/webinars").status_code == 200
    for secret in (signed.access_token, signed.refresh_token, "client-secret-canary-3c9f"):
        assert secret
        assert not any(secret in answer for answer in page.answers)


def test_the_plan_says_how_many_places_are_left_and_warns_when_too_few(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0, registration_limit=5)
    for first, last, email in people(2, domain="earlier.example")[1:]:
        server.sandbox.add_registrant({"firstName": first, "lastName": last, "email": email})
    page = open_page(on_loopback(server))
    page.upload(write_csv(tmp_path / "guests.csv", people(6)))
    page.settle()
    page.post("/api/check", json={"webinar": WEBINAR_KEY})
    (plan,) = page.settle()["check"]["plans"]
    assert (plan["webinar"]["left"], plan["webinar"]["limit"]) == (3, 5)
    assert any(
        warning.startswith("this webinar has 3 places left and 6 people are to be sent: ")
        for warning in plan["warnings"]
    )


def test_the_plan_names_the_sheet_read_and_the_hidden_rows_as_the_command_does(
    open_page: Callable[..., Page], tmp_path: Path
) -> None:
    book = Workbook()
    archive = book.active
    assert archive is not None
    archive.title = "Archive 2019"
    for row in people(4):
        archive.append(row)
    archive.sheet_state = "hidden"
    guests = book.create_sheet("Guests")
    for row in people(5):
        guests.append(row)
    for line in (3, 5):  # hidden as a filter hides them
        guests.row_dimensions[line].hidden = True
    book.active = 1
    book.save(tmp_path / "guests.xlsx")
    page = open_page()
    page.upload(tmp_path / "guests.xlsx")
    (plan,) = page.settle()["check"]["plans"]
    assert plan["sheet"] == (
        "'Guests' (also with e-mails: 'Archive 2019' (hidden, 4 rows); "
        "to read another, save the workbook with that sheet open)"
    )
    assert (
        plan["hidden"] == "2 rows hidden in Excel are not sent; unhide them in Excel to send them"
    )
    assert (plan["rows"], plan["send"]) == (5, 3)
    assert page.post("/api/register").status_code == 200
    result = page.settle()["result"]
    # the command's Done line: a row left out on purpose is no problem
    assert result["headline"] == "Done: 3 registered, 2 skipped hidden."
    assert result["tone"] == "good"


def test_undo_shows_its_plan_then_cancels_what_the_import_registered_for_the_file(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    earlier = people(1, domain="earlier.example")[1]  # in the file, but registered already
    outsider = people(1, domain="elsewhere.example")[1]  # registered, and not in the file
    for first, last, email in (earlier, outsider):
        server.sandbox.add_registrant({"firstName": first, "lastName": last, "email": email})
    page = open_page(on_loopback(server))
    page.upload(write_csv(tmp_path / "guests.csv", [*people(4), earlier]), webinar=WEBINAR_KEY)
    assert page.settle()["undo"] is None  # nothing imported yet
    page.post("/api/register")
    state = page.settle()
    assert state["result"]["headline"] == "Done: 4 registered, 1 already registered."
    assert state["undo"]["phase"] == "ready"
    (webinar,) = state["undo"]["webinars"]
    assert (webinar["key"], webinar["subject"]) == (WEBINAR_KEY, "Product launch (sandbox)")
    unasked = page.post("/api/undo")
    assert unasked.status_code == 400
    assert unasked.json()["error"].startswith("press Undo this import first: it shows what")

    assert page.post("/api/undo/plan").status_code == 200
    undo = page.settle()["undo"]
    assert undo["phase"] == "confirm"
    plan = {label: text for label, text in undo["plan"]}
    assert plan["Webinar"].startswith("Product launch (sandbox)")
    assert plan["File"] == "guests.csv (5 rows)"
    assert plan["Left alone"] == (
        "1 person g2w-import did not register (registered already, or through another channel)"
    )
    assert plan["To cancel"] == "4 registrations made by g2w-import"
    assert len(server.sandbox.registrants()) == 6  # the plan changed nothing

    assert page.post("/api/undo").status_code == 200
    state = page.settle()
    undo = state["undo"]
    assert (undo["phase"], undo["error"], undo["plan"]) == ("done", None, [])
    result = undo["result"]
    assert result["headline"] == "Done: 4 cancelled, 1 left alone."
    assert result["meaning"] == (
        "Every registration g2w-import made for the people of this file is cancelled; anyone "
        "else is left alone (exit code 0)."
    )
    assert result["counts"] == [
        {"status": "cancelled", "count": 4},
        {"status": "left_alone", "count": 1},
    ]
    assert result["report"] == "guests-undone.xlsx"
    assert sorted(r["email"] for r in server.sandbox.registrants()) == [earlier[2], outsider[2]]

    upload = page.desk.upload
    assert upload is not None
    written = upload.path.with_name("guests-undone.xlsx")  # beside the upload
    rows = sheet_rows(written)
    assert {row["email"]: row["status"] for row in rows} == {
        **{email: "cancelled" for _, _, email in people(4)[1:]},
        earlier[2]: "left_alone",
    }
    download = page.get("/files/undone")
    assert download.status_code == 200
    assert 'filename="guests-undone.xlsx"' in download.headers["content-disposition"]
    assert download.content == written.read_bytes()
    assert state["result"]["headline"] == "Done: 4 registered, 1 already registered."  # kept
    assert plan["Journal"].startswith(str(tmp_path / "user-data"))  # the journal's own place
    assert not any(str(tmp_path / "ui") in answer for answer in page.answers)  # the page's not
    assert not any(CANARY in answer for answer in page.answers)


def test_the_registrant_list_is_exported_with_join_urls_and_answers_into_the_pages_folder(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    server.sandbox.add_registrant(  # through another channel: listed too
        {"firstName": "Zoe", "lastName": "Other", "email": "zoe@elsewhere.example"}, WORKSHOP_KEY
    )
    page = open_page(on_loopback(server))
    refused = page.post("/api/export")
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("choose the webinar first")
    page.upload(SAMPLES / "workshop.xlsx")  # its Settings sheet names the workshop
    page.settle()
    page.post("/api/register")
    assert page.settle()["result"]["headline"] == "Done: 12 registered."

    assert page.post("/api/export").status_code == 200  # the webinar of the import
    export = page.settle()["export"]
    assert (export["key"], export["error"]) == (WORKSHOP_KEY, None)
    result = export["result"]
    assert result["headline"] == "Done: 13 registrants exported."
    assert result["meaning"] == "The list is complete (exit code 0)."
    name = "Customer workshop (sandbox)-registrants.xlsx"
    assert result["file"] == name
    assert (tmp_path / "ui" / "exports" / name).is_file()
    assert not (tmp_path / name).exists()  # not in the current folder

    answer = page.get("/files/registrants")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    disposition = answer.headers["content-disposition"]
    assert disposition == f"attachment; filename*=utf-8''{quote(name)}"  # spaces, brackets
    (tmp_path / "downloaded.xlsx").write_bytes(answer.content)
    rows = sheet_rows(tmp_path / "downloaded.xlsx")
    registered = server.sandbox.registrants(WORKSHOP_KEY)
    assert {row["email"]: row["joinUrl"] for row in rows} == {
        r["email"]: r["joinUrl"] for r in registered
    }
    assert {row["email"]: row["registrantKey"] for row in rows} == {
        r["email"]: r["registrantKey"] for r in registered
    }
    roles = {row["email"]: row["Your role?"] for row in rows}
    assert roles["anna.dubois0@example.com"] == "Other"
    assert not roles["zoe@elsewhere.example"]  # registered without answering

    chosen = page.post("/api/export", json={"webinar": WEBINAR_KEY})  # chosen on the page
    assert chosen.status_code == 200
    export = page.settle()["export"]
    assert export["result"]["headline"] == "Done: 0 registrants exported."
    assert export["result"]["file"] == "Product launch (sandbox)-registrants.xlsx"
    assert sheet_rows(tmp_path / "ui" / "exports" / export["result"]["file"]) == []
    assert not any(CANARY in text for text in page.answers)


def test_an_import_an_export_and_an_undo_run_one_at_a_time_and_each_stops(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0.2)
    page = open_page(on_loopback(server), rate=10)
    rows = [[*row, "Your role?" if i == 0 else "Developer"] for i, row in enumerate(people(30))]
    guests = write_csv(tmp_path / "guests.csv", rows)
    page.upload(guests, webinar=WORKSHOP_KEY)
    page.settle()

    def refused(busy: str, register: str | None = None) -> None:
        """Everything that would start another job is refused, saying what runs."""
        answer = page.post("/api/register")
        assert (answer.status_code, answer.json()["error"]) == (409, register or busy)
        for path, body in (
            ("/api/export", {"webinar": WORKSHOP_KEY}),
            ("/api/undo/plan", None),
            ("/api/check", {"webinar": WORKSHOP_KEY}),
        ):
            answer = page.post(path, json=body)
            assert (answer.status_code, answer.json()["error"]) == (409, busy), path
        answer = page.upload(guests)
        assert (answer.status_code, answer.json()["error"]) == (409, busy)

    page.post("/api/register")
    page.settle(lambda s: s["run"]["done"] >= 3)
    refused(BUSY, "an import is under way already")
    assert page.state()["undo"] is None  # offered once the import is over
    assert page.settle()["result"]["headline"] == "Done: 30 registered."

    # the answers are read one registrant at a time: slow enough to be stopped
    page.post("/api/export")
    state = page.settle(lambda s: s["export"]["run"] and s["export"]["run"]["done"] >= 3)
    assert state["sending"]
    refused("the registrant list is being read: stop it, or wait until it is over")
    page.post("/api/stop")
    export = page.settle()["export"]
    result = export["result"]
    assert re.fullmatch(
        r"Stopped: 30 registrants exported, without the answers of \d+ registrants; download "
        r"the list again for all of them\.",
        result["headline"],
    ), result["headline"]
    assert result["meaning"] == (
        "Stopped: some answers are missing; download the list again for all of them "
        "(exit code 130)."
    )
    assert page.get("/files/registrants").status_code == 200  # what was read is kept

    page.post("/api/undo/plan")
    assert page.settle()["undo"]["phase"] == "confirm"
    page.post("/api/undo")
    state = page.settle(lambda s: s["undo"]["run"] and s["undo"]["run"]["done"] >= 3)
    assert state["undo"]["phase"] == "running"
    refused("an undo is under way: stop it, or wait until it is over")
    page.post("/api/stop")
    undo = page.settle()["undo"]
    result = undo["result"]
    assert re.fullmatch(
        r"Stopped: \d+ cancelled, \d+ pending\. Press Undo this import again to cancel the "
        r"rest; nobody is cancelled twice\.",
        result["headline"],
    ), result["headline"]
    assert result["meaning"].endswith("nobody is cancelled twice (exit code 130).")
    left = len(server.sandbox.registrants(WORKSHOP_KEY))
    assert 0 < left < 30

    page.post("/api/undo/plan")  # again: the rest, and nobody twice
    plan = {label: text for label, text in page.settle()["undo"]["plan"]}
    assert plan["To cancel"] == f"{left} registrations made by g2w-import"
    page.post("/api/undo")
    result = page.settle()["undo"]["result"]
    assert result["headline"] == (f"Done: {left} cancelled ({30 - left} were cancelled already).")
    assert server.sandbox.registrants(WORKSHOP_KEY) == []


def test_an_undo_where_g2w_import_registered_nobody_says_so_in_one_line(
    open_page: Callable[..., Page],
    loopback_sandbox: Callable[..., ThreadedServer],
    tmp_path: Path,
) -> None:
    server = loopback_sandbox(tokens=(CANARY,), rate=0, latency=0)
    folder = tmp_path / "ui" / "uploads" / "20250102-030405-abcdef"
    folder.mkdir(parents=True)
    guests = write_csv(folder / "guests.csv", people(3))
    last = {"file": str(guests), "webinars": [WEBINAR_KEY], "finished": False}
    (tmp_path / "ui" / "last-run.json").write_text(json.dumps(last))
    page = open_page(on_loopback(server))  # restores the import that did not finish
    state = page.settle()
    assert state["restored"]
    assert (state["undo"]["phase"], state["undo"]["webinars"][0]["key"]) == ("ready", WEBINAR_KEY)
    assert page.post("/api/undo/plan").status_code == 200
    undo = page.settle()["undo"]
    assert undo["phase"] == "ready"
    error = undo["error"]
    assert error.startswith(f"no journal of webinar {WEBINAR_KEY} at ")
    assert "g2w-import has registered nobody for it from this computer" in error
    assert "\n" not in error
    assert page.post("/api/undo").status_code == 400  # no plan was shown: nothing to confirm
    other = page.post("/api/undo/plan", json={"webinar": WORKSHOP_KEY})
    assert other.status_code == 400
    assert other.json()["error"] == (
        f"this import was not for webinar {WORKSHOP_KEY}; choose one of its webinars to undo"
    )


def test_the_journals_are_listed_and_one_is_forgotten_once_confirmed(
    open_page: Callable[..., Page],
) -> None:
    from importer.jobs import journals as keeping
    from tests.engine.test_journals import make

    folder = keeping.folder(sandbox=True)  # the page runs on the built-in sandbox here
    folder.mkdir(parents=True)
    make(folder, "201", people=2, subject="Spring <b>launch</b>")
    make(folder, "202", people=1, sending=1)
    page = open_page()
    listed = page.get("/api/journals").json()
    assert listed["keepDays"] == 30
    journals = {j["webinarKey"]: j for j in listed["journals"]}
    assert journals["201"]["peopleText"] == "2 registered"
    assert journals["201"]["subject"] == "Spring <b>launch</b>"  # the script puts it as text
    assert journals["202"]["peopleText"] == "1 registered, 1 of unknown outcome"
    assert all(j["path"] is None for j in listed["journals"])  # the page names no files

    kept = page.post("/api/journals/forget", json={"webinar": "202"})
    assert kept.status_code == 400
    assert "1 person of unknown outcome" in kept.json()["error"]
    assert "in a terminal with g2w-import journals forget --force" in kept.json()["error"]
    assert page.post("/api/journals/forget", json={}).status_code == 400
    forgotten = page.post("/api/journals/forget", json={"webinar": "201"}).json()
    assert forgotten["said"] == "Removed the journal of Spring <b>launch</b> (201)."
    assert [j["webinarKey"] for j in forgotten["journals"]] == ["202"]
    gone = page.post("/api/journals/forget", json={"webinar": "201"})
    assert "no journal of webinar 201" in gone.json()["error"]
    assert page.http.post("/api/journals/forget", json={"webinar": "202"}).status_code == 403


def test_the_pages_old_copies_are_removed_but_an_unfinished_imports_file(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "ui"
    old, recent, unfinished = (folder / "uploads" / name for name in ("old", "recent", "unf"))
    for each in (old, recent, unfinished):
        each.mkdir(parents=True)
        (each / "list.csv").write_text("First,Last,Email\n")
    exported = folder / "exports" / "Launch-registrants.xlsx"
    exported.parent.mkdir()
    exported.write_bytes(b"PK")
    month_ago = time.time() - 31 * 86400
    for each in (old, unfinished, exported):
        os.utime(each, (month_ago, month_ago))
    last = {"file": str(unfinished / "list.csv"), "webinars": [WEBINAR_KEY], "finished": False}
    (folder / "last-run.json").write_text(json.dumps(last))
    desk = Desk(Access(sandbox=True), folder, keep_days=30)
    try:
        assert sorted(p.name for p in (folder / "uploads").iterdir()) == ["recent", "unf"]
        assert list((folder / "exports").iterdir()) == []
        assert desk.restored  # the unfinished import's file is still there to continue
    finally:
        desk.close()
    forever = Desk(Access(sandbox=True), folder, keep_days=0)
    try:
        assert forever.tidy(time.time() + 1e9) == []  # 0: kept until removed by hand
    finally:
        forever.close()
