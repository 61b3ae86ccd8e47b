"""Every way a run can end leaves a true report: the edges a new user and an attacker found."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sqlite3
import stat
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from importer import report as report_module
from importer.cli import account as login_command
from importer.read import workbook
from importer.sandbox import ORGANIZER_KEY, PREFIX, WEBINAR_KEY, WORKSHOP_KEY
from importer.serve.exchange import Answer, Request
from tests import helpers
from tests.helpers import (
    ENV,
    TOKEN,
    ScriptedServer,
    ThreadedServer,
    one_line_error,
    people,
    posix_only,
    register_args,
    sheet_rows,
    statuses,
    write_csv,
)

CANARY = "echoed-token-canary-4b1d"
invoke = functools.partial(helpers.invoke, env=ENV)


def on(server: ThreadedServer | ScriptedServer, source: Path, *extra: str) -> list[str]:
    return register_args(source, server, "--rate", "500", *extra)


# --- wrong or lost results -----------------------------------------------------------------------


def test_weiss_and_weiss_with_an_eszett_are_two_people(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = [["firstName", "lastName", "email"]]
    rows += [["Greta", "Weiß", "weiß@example.de"], ["Hans", "Weiss", "weiss@example.de"]]
    source = write_csv(tmp_path / "guests.csv", rows)
    assert invoke(*on(server, source)).exit_code == 0
    again = invoke(*on(server, source))
    assert again.exit_code == 0
    entries = {entry["email"]: entry for entry in server.sandbox.registrants()}
    assert set(entries) == {"weiß@example.de", "weiss@example.de"}
    report = {row["email"]: row for row in sheet_rows(tmp_path / "guests-joinurls.xlsx")}
    for address, entry in entries.items():
        assert report[address]["registrantKey"] == entry["registrantKey"]
        assert report[address]["joinUrl"] == entry["joinUrl"]


def test_a_header_with_a_control_character_still_gets_a_report(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = [[*row, "note\x01s" if i == 0 else "x"] for i, row in enumerate(people(3))]
    source = write_csv(tmp_path / "guests.csv", rows)
    result = invoke(*on(server, source))
    assert result.exit_code == 0, result.output
    headers = list(sheet_rows(tmp_path / "guests-joinurls.xlsx")[0])
    assert "note\ufffds" in headers
    assert "\x01" not in result.stderr


def test_columns_past_excels_limit(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    wide = [
        [*row, *(f"c{i}" if n == 0 else "v" for i in range(16_380))]
        for n, row in enumerate(people(2))
    ]
    fits = write_csv(tmp_path / "wide.csv", wide)
    result = invoke(*on(server, fits))
    assert result.exit_code == 0, result.output  # registered, and the report written
    summary = {
        row[0]: row[1]
        for row in load_workbook(tmp_path / "wide-joinurls.xlsx")["Summary"].iter_rows(
            values_only=True
        )
        if row
    }
    assert "input columns past Excel's limit" in summary["Not in this report"]
    too_wide = [[*row, *("x" for _ in range(20_000))] for row in people(1)]
    refused = invoke(*on(server, write_csv(tmp_path / "huge.csv", too_wide)))
    assert "huge.csv: has 20,003 columns, more than the 16,384 of an Excel sheet" in one_line_error(
        refused
    )


def test_out_may_not_be_the_input_or_the_file_to_fix(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(2))
    before = source.read_bytes()
    same = invoke(*on(server, source, "--out", str(tmp_path / "." / "guests.csv")))
    assert "is the input file itself" in one_line_error(same)
    clash = invoke(*on(server, source, "--out", str(tmp_path / "guests-needs-attention.xlsx")))
    assert "is where the rows needing attention go" in one_line_error(clash)
    assert source.read_bytes() == before
    assert server.sandbox.stats["calls"] == 0


def test_broken_bytes_in_a_utf8_file_stop_it_naming_the_line(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = tmp_path / "guests.csv"
    source.write_bytes(
        "firstName,lastName,email\nJürgen,Müller,j@example.de\n".encode()
        + b"Bo,K\xe4m,bo@example.com\n"
    )
    line = one_line_error(invoke(*on(server, source)))
    assert "guests.csv: line 3 has bytes that are not UTF-8 (at byte 58)" in line
    assert server.sandbox.stats["calls"] == 0
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes("firstName,lastName,email\nJürgen,Müller,j@example.de\n".encode("cp1252"))
    read = invoke(*on(server, legacy))
    assert read.exit_code == 0
    assert "not UTF-8, read as Windows-1252" in read.stderr
    assert server.sandbox.registrants()[0]["lastName"] == "Müller"


def test_an_unclosed_quote_stops_before_sending_naming_its_line(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    lines = ["firstName,lastName,email,notes"]
    lines += [f"F{i},L{i},p{i}@example.com,note {i}" for i in range(50)]
    lines[4] = 'F3,L3,p3@example.com,"a note that never ends'
    middle = tmp_path / "middle.csv"
    middle.write_text("\n".join(lines) + "\n")
    error = one_line_error(invoke(*on(server, middle)))
    assert "middle.csv: row 5 (line 5 of the file) opens a quotation mark" in error
    lines.append('F50,L50,p50@example.com,"the end"')  # a later quote closes it
    late = tmp_path / "late.csv"
    late.write_text("\n".join(lines) + "\n")
    assert "late.csv: row 5 (line 5 of the file)" in one_line_error(invoke(*on(server, late)))
    fine = tmp_path / "fine.csv"
    fine.write_text(
        'firstName,lastName,email,notes\nAnn,Lee,a@example.com,"Street 1\n12345 Town"\n'
    )
    assert invoke(*on(server, fine)).exit_code == 0  # a real cell with line breaks
    assert server.sandbox.stats["created"] == 1


def test_one_unknown_webinar_key_of_several_stops_before_sending_with_a_report(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = [
        [*row, "webinarKey"] if i == 0 else [*row, WEBINAR_KEY] for i, row in enumerate(people(3))
    ]
    rows[3][3] = "1111111111111111111"
    source = write_csv(tmp_path / "guests.csv", rows)
    args = register_args(source, server.api_url)
    args.remove("--webinar-key")
    args.remove(WEBINAR_KEY)
    result = invoke(*args)
    assert result.exit_code == 4
    assert "webinar 1111111111111111111 was not found" in result.stderr
    assert server.sandbox.stats["created"] == 0
    assert statuses(tmp_path / "guests-joinurls.xlsx") == ["pending"] * 3


def test_a_refused_token_on_the_first_call_still_writes_the_report(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0, token_calls=0)
    source = write_csv(tmp_path / "guests.csv", people(2))
    result = invoke(*on(server, source))
    assert result.exit_code == 4
    assert statuses(tmp_path / "guests-joinurls.xlsx") == ["pending"] * 2


@posix_only
def test_sigterm_while_the_report_is_written(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(3))
    real = report_module.write_xlsx  # the workbook, from rows written ahead or not
    signals = [signal.SIGTERM]

    def interrupted(*args: Any) -> None:
        for number in signals:
            os.kill(os.getpid(), number)  # arrives while the report is being written
        real(*args)

    monkeypatch.setattr(report_module, "write_xlsx", interrupted)
    once = invoke(*on(server, source))
    assert once.exit_code == 0, once.output
    assert "Stopping: letting the calls under way finish" in once.stderr
    assert statuses(tmp_path / "guests-joinurls.xlsx") == ["registered"] * 3
    signals.append(signal.SIGTERM)  # twice: the report is abandoned, and nothing is left behind
    exits: list[int] = []

    def leave(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", leave)
    (tmp_path / "guests-joinurls.xlsx").unlink()
    twice = invoke(*on(server, source))
    assert exits == [130]
    assert "Interrupted while writing the report" in twice.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["guests.csv"]


# --- crashes and hangs ---------------------------------------------------------------------------


def far_workbook(path: Path, cell: str) -> Path:
    book = Workbook()
    book.active.append(["firstName", "lastName", "email"])
    book.active.append(["Ann", "Lee", "ann@example.com"])
    book.active[cell] = "stray"
    book.save(path)
    return path


@pytest.mark.parametrize("cell", ["XFD1048576", "XFD5000"])
def test_a_workbook_with_a_far_away_cell_is_refused_in_one_line(tmp_path: Path, cell: str) -> None:
    path = far_workbook(tmp_path / "far.xlsx", cell)
    started = time.monotonic()
    for extra in ((), ("--dry-run",)):
        error = one_line_error(invoke("register", str(path), "--sandbox", *extra))
        assert f"far.xlsx: sheet 'Sheet' has a value as far out as cell {cell}" in error
    assert time.monotonic() - started < 20


def test_a_workbook_that_inflates_too_far_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = far_workbook(tmp_path / "bomb.xlsx", "C3")
    with zipfile.ZipFile(path) as book:
        inflated = sum(info.file_size for info in book.infolist())
    monkeypatch.setattr(workbook, "MAX_INFLATED", inflated - 1)
    error = one_line_error(invoke("register", str(path), "--sandbox"))
    assert "bomb.xlsx: unpacks to" in error


@pytest.mark.parametrize("name", [".", ""])
def test_a_folder_for_a_file_is_one_line(name: str) -> None:
    assert "is a folder, not a file" in one_line_error(invoke("register", name, "--sandbox"))


def test_a_rate_below_one_call_a_second(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(1))
    result = invoke("register", str(source), "--sandbox", "--rate", "0.5")
    assert result.exit_code == 0, result.output


def test_an_answer_trickled_byte_by_byte_ends_at_the_timeout(tmp_path: Path) -> None:
    handlers: set[asyncio.Task[None]] = set()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n")
            for _ in range(1000):  # one byte every half second: each read is quick
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.5)
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.transport.abort()
            handlers.discard(task)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(trickle, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def shut() -> None:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    try:
        source = write_csv(tmp_path / "guests.csv", people(1))
        url = f"http://127.0.0.1:{port}{PREFIX}"
        started = time.monotonic()
        result = invoke(*register_args(source, url, "--timeout", "2", "--give-up-after", "5"))
        elapsed = time.monotonic() - started
    finally:
        asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
    assert result.exit_code == 3, result.output
    assert "no complete answer from the API within 2 s" in result.stderr
    assert elapsed < 30  # a deadline per call, not per byte: it waited 130 s before


# --- leaks and unsafe output ---------------------------------------------------------------------


def echoing(request: Request) -> Answer:
    """A server that echoes the Authorization header it was sent into its error bodies."""
    said = request.headers.get("authorization", "")
    path = request.target.split("?")[0]
    webinar = f"{PREFIX}/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}"
    if path == webinar:
        subject = "\x1b[2J\x1b]0;pwned\x07Evil webinar"
        return Answer(200, json.dumps({"subject": subject, "times": []}).encode())
    if path == f"{webinar}/registrants/fields":
        return Answer(200, json.dumps({"fields": [], "questions": []}).encode())
    if path == f"{webinar}/registrants" and request.method == "GET":
        return Answer(200, b"[]")
    if request.method == "GET":  # the organizer's webinars: no such list here
        return Answer(404, json.dumps({"description": f"nothing here for {said}"}).encode())
    body = json.loads(request.body)
    if body["email"].startswith("person0"):  # spelt out with escapes between its letters
        spelt = "\x1b".join(said)
        return Answer(400, json.dumps({"description": f"bad header {spelt}"}).encode())
    if body["email"].startswith("person1"):  # across the 200th character the message is cut at
        padded = f"failed {'.' * 180} for {said}"
        return Answer(500, f"<html><body>{padded}</body></html>".encode(), "text/html")
    return Answer(403, json.dumps({"msg": f"closed; you sent {said}"}).encode())


def test_a_server_that_echoes_the_token_never_gets_it_printed_or_stored(tmp_path: Path) -> None:
    async def handle(request: Request) -> Answer:
        return echoing(request)

    with ScriptedServer(handle) as server:
        source = write_csv(tmp_path / "guests.csv", people(3))
        args = register_args(source, server.api_url, "--concurrency", "1", "--give-up-after", "3")
        args += ["--journal", str(tmp_path / "journal.sqlite3")]
        result = invoke(*args, env={"G2W_ACCESS_TOKEN": CANARY})
    assert result.exit_code == 3, result.output  # the 403 about the webinar stops it
    assert "closed; you sent Bearer <hidden>" in result.stderr
    assert CANARY not in result.output
    assert "\x1b" not in result.output  # the webinar's subject came with escape sequences
    assert "Evil webinar" in result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in written)
    for path in written:
        assert CANARY[:8].encode() not in path.read_bytes(), path  # not even half of it
    assert CANARY[:8] not in result.output
    rows = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert rows[0]["error"] == "GoTo refused this row: bad header Bearer <hidden>"
    journal = sqlite3.connect(tmp_path / "journal.sqlite3")
    try:
        errors = [row[0] for row in journal.execute("SELECT error FROM people")]
    finally:
        journal.close()
    assert "GoTo refused this row: bad header Bearer <hidden>" in errors


def test_headers_that_look_like_formulas_are_text_in_every_file(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    formula = '=HYPERLINK("http://evil.example","x")'
    rows = [[*row, formula if i == 0 else "v"] for i, row in enumerate(people(2))]
    rows[2][2] = "not-an-address"
    source = write_csv(tmp_path / "guests.csv", rows)
    assert invoke(*on(server, source)).exit_code == 1
    for path, name in (
        (tmp_path / "guests-joinurls.xlsx", "Registrants"),
        (tmp_path / "guests-needs-attention.xlsx", "Needs attention"),
    ):
        cells = [cell for row in load_workbook(path)[name].iter_rows() for cell in row]
        assert all(cell.data_type != "f" for cell in cells)
        header = next(cell for cell in cells if cell.value == formula)
        assert header.quotePrefix
    csv_report = invoke(*on(server, source, "--out", str(tmp_path / "r.csv")))
    assert csv_report.exit_code == 1
    first = (tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert f",'{formula.replace(chr(34), chr(34) * 2)}" in first or "'=HYPERLINK" in first


def test_escape_sequences_never_reach_the_terminal_and_bidi_overrides_are_flagged(
    tmp_path: Path,
) -> None:
    rows = [["firstName", "lastName", "email", "\x1b]0;title\x07Notes"]]
    rows += [["Ann", "Lee\u202egnp.exe", "ann@example.com", "x"]]
    source = write_csv(tmp_path / "guests.csv", rows)
    result = invoke("register", str(source), "--sandbox")
    assert result.exit_code == 1
    assert "\x1b" not in result.output
    assert "\u202e" not in result.output
    assert "contains a bidirectional control character" in result.stderr


@posix_only
def test_a_token_file_others_can_read_is_used_with_a_warning_and_its_bom_dropped(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    token_file = tmp_path / "token.txt"
    token_file.write_bytes(b"\xef\xbb\xbf" + TOKEN.encode() + b"\r\n")
    token_file.chmod(0o644)
    source = write_csv(tmp_path / "guests.csv", people(1))
    result = invoke(*on(server, source, "--token-file", str(token_file)), env={})
    assert result.exit_code == 0, result.output
    assert "other users may read this token (mode 644); run: chmod 600" in result.stderr
    assert invoke("login", "--client-secret", "s").exit_code == 2  # no secrets on the line
    for command in (["webinars", "--api-url", server.api_url], ["whoami"]):
        other = invoke(*command, "--token-file", str(token_file), env={})
        assert "other users may read this token (mode 644)" in other.stderr, command
    token_file.chmod(0o600)
    assert "other users" not in invoke("whoami", "--token-file", str(token_file), env={}).stderr


def test_a_dry_run_refuses_a_report_folder_the_real_run_would_refuse(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(1))
    for extra in ((), ("--dry-run",)):
        out = tmp_path / "missing" / "report.xlsx"
        error = one_line_error(
            invoke("register", str(source), "--sandbox", "--out", str(out), *extra)
        )
        assert "missing: no such folder for the report; create it or change --out" in error


# --- what a new user stumbled over ---------------------------------------------------------------


def test_an_out_folder_that_cannot_be_written_is_found_before_sending(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(1))
    missing = invoke(*on(server, source, "--out", str(tmp_path / "no" / "r.xlsx")))
    assert "no such folder for the report; create it or change --out" in one_line_error(missing)
    assert server.sandbox.stats["calls"] == 0
    if os.name == "posix" and os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        denied = invoke(*on(server, source, "--out", str(locked / "r.xlsx")))
        assert "you may not write there (permission denied)" in one_line_error(denied)


def test_the_fix_and_register_again_loop_survives_excel(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = people(3)
    rows[2][2] = "p1@example"  # a mistake
    source = write_csv(tmp_path / "guests.csv", rows)
    assert invoke(*on(server, source)).exit_code == 1
    fix = tmp_path / "guests-needs-attention.xlsx"
    book = load_workbook(fix)
    page = book["Needs attention"]
    headers = [cell.value for cell in page[1]]
    # the first column is the row's line in guests-joinurls.xlsx, where its result goes back
    assert headers == ["row", "firstName", "lastName", "email", "webinarKey", "error"]
    assert page.cell(row=2, column=5).value == WEBINAR_KEY  # all 19 digits, as text
    page.cell(row=2, column=4, value="p1@example.com")  # corrected, as a person would in Excel
    book.save(fix)
    again = invoke("register", str(fix), "--api-url", server.api_url, "--rate", "500")
    assert again.exit_code == 0, again.output
    assert "Not sent: columns" not in again.stderr  # error is the file's own column, not theirs
    report = sheet_rows(tmp_path / "guests-needs-attention-joinurls.xlsx")
    assert "error (input)" not in report[0]
    assert report[0]["status"] == "registered"
    assert not fix.with_name("guests-needs-attention-needs-attention.xlsx").exists()
    # the corrected row went back into the first report: one list with everyone's join URL
    first = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert [row["status"] for row in first] == ["registered"] * 3
    assert first[1]["joinUrl"] == report[0]["joinUrl"]
    fed_back = invoke(
        "register",
        str(tmp_path / "guests-joinurls.xlsx"),
        "--api-url",
        server.api_url,
        "--webinar-key",
        WEBINAR_KEY,
    )
    assert fed_back.exit_code == 0, fed_back.output  # the old report holds the corrected row
    assert "Not sent: columns" not in fed_back.stderr
    assert not any(
        h.endswith("(input)") for h in sheet_rows(tmp_path / "guests-joinurls-joinurls.xlsx")[0]
    )


@posix_only
def test_reports_follow_the_umask_and_journals_stay_private(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = people(2)
    rows[1][2] = "broken"
    source = write_csv(tmp_path / "guests.csv", rows)
    old = os.umask(0o022)
    try:
        assert invoke(*on(server, source)).exit_code == 1
        assert invoke("template", str(tmp_path / "t.xlsx")).exit_code == 0
    finally:
        os.umask(old)
    for name in ("guests-joinurls.xlsx", "guests-needs-attention.xlsx", "t.xlsx"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    journals = list(tmp_path.rglob("*.sqlite3"))
    assert journals
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in journals)


def test_a_sandbox_login_leaves_the_real_one_alone(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    server = loopback_sandbox(rate=0)
    real = invoke("login", "--with-token", env={"G2W_API_URL": server.api_url}, stdin=TOKEN)
    assert real.exit_code == 0
    stored = Path(os.environ["G2W_CREDENTIALS_FILE"]).read_text()

    def browser(address: str) -> None:
        with httpx.Client(follow_redirects=True, timeout=10) as http:
            http.get(address)

    monkeypatch.setattr(login_command, "open_browser", browser)
    from tests.helpers import free_port

    tried = invoke("login", "--sandbox", "--port", str(free_port()))
    assert tried.exit_code == 0, tried.output
    assert "nothing was kept" in tried.stderr
    assert Path(os.environ["G2W_CREDENTIALS_FILE"]).read_text() == stored


def test_a_single_name_column_is_split_and_one_word_names_are_invalid(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = [
        ["Full name", "E-mail"],
        ["Anna Maria Schmidt", "anna@example.com"],
        ["Cher", "cher@example.com"],
    ]
    source = write_csv(tmp_path / "guests.csv", rows)
    result = invoke(*on(server, source))
    assert result.exit_code == 1
    assert "'Full name' → firstName and lastName (split at the last space)" in result.stderr
    assert "row 3, Full name: 'Cher' is one word" in result.stderr
    entry = server.sandbox.registrants()[0]
    assert (entry["firstName"], entry["lastName"]) == ("Anna Maria", "Schmidt")


def test_messages_a_new_user_meets(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    folder = tmp_path / "somedir"
    folder.mkdir()
    assert "somedir: is a folder, not a file" in one_line_error(invoke("register", str(folder)))
    assert "Exit codes:" in invoke("--help").output
    book = Workbook()
    book.active.append(["access_token", "leaked"])
    book.active.append(["webinarKey", 8.32536e18])
    book.active.append([])
    book.active.append(["firstName", "lastName", "email"])
    book.active.append(["Ann", "Lee", "ann@example.com"])
    book.save(tmp_path / "old.xlsx")
    rounded = one_line_error(invoke("register", str(tmp_path / "old.xlsx"), "--sandbox"))
    assert "webinarKey above the header of old.xlsx" in rounded
    assert "Settings sheet" not in rounded
    server = loopback_sandbox(rate=0)
    one = invoke(*on(server, write_csv(tmp_path / "one.csv", people(1))))
    assert "(header in line 1, 1 row)" in one.stderr
    assert "To send:  1 registrant\n" in one.stderr


def test_the_question_before_sending_defaults_to_no(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from importer.cli import console

    monkeypatch.setattr(console, "_is_terminal", lambda stream: True)
    stream = io.StringIO()
    for typed, expected in (("\n", False), ("y\n", True), ("yes\n", True), ("n\n", False)):
        monkeypatch.setattr("sys.stdin", io.StringIO(typed))
        assert console.Console(stream=stream).confirm("Send 1 person?") is expected
    assert "Send 1 person? [y/N]: " in stream.getvalue()


@pytest.fixture
def workshop_file(tmp_path: Path) -> Path:
    rows = [[*row, "Your role?"] if i == 0 else [*row, "Other"] for i, row in enumerate(people(2))]
    return write_csv(tmp_path / "workshop.csv", rows)


def test_several_webinars_each_checked_before_anyone_is_sent(
    workshop_file: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    args = on(server, workshop_file)
    args[args.index(WEBINAR_KEY)] = WORKSHOP_KEY
    args += ["--webinar-key", "1111111111111111111"]
    result = invoke(*args)
    assert result.exit_code == 4
    assert server.sandbox.stats["created"] == 0


def test_a_misspelt_header_gets_a_did_you_mean(tmp_path: Path) -> None:
    source = tmp_path / "typo.csv"
    source.write_text("First Name,Lastname,Email,Compnay\nAnn,Lee,ann@example.com,X\n")
    checked = invoke("register", str(source), "--sandbox", "--dry-run")
    assert checked.exit_code == 0, checked.output
    assert (
        "Not sent: column 'Compnay' (did you mean 'organization'?) matches no field or question"
        in checked.stderr
    )
    source.write_text("First Name,Lastname,Emial\nAnn,Lee,ann@example.com\n")
    error = one_line_error(invoke("register", str(source), "--sandbox"))
    assert error.endswith("rename the column 'Emial' to email (or E-Mail)")


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def rewritten_workbook(path: Path, sheet: str, strings: list[str] | None = None) -> Path:
    """A workbook whose first sheet's XML is ``sheet`` (and shared strings ``strings``)."""
    plain = path.with_suffix(".plain.xlsx")
    Workbook().save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as book:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet.encode()
            elif info.filename == "[Content_Types].xml" and strings is not None:
                data = data.replace(
                    b"</Types>",
                    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
                )
            elif info.filename == "xl/_rels/workbook.xml.rels" and strings is not None:
                data = data.replace(
                    b"</Relationships>",
                    b'<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/'
                    b'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                    b"</Relationships>",
                )
            book.writestr(info.filename, data)
        if strings is not None:
            items = "".join(f"<si><t>{text}</t></si>" for text in strings)
            book.writestr("xl/sharedStrings.xml", f'<sst xmlns="{_MAIN_NS}">{items}</sst>')
    plain.unlink()
    return path


@pytest.mark.parametrize(
    "cell",
    [
        '<c t="inlineStr" r="XFD1048576"><is><t>x</t></is></c>',  # the reference not first
        '<x:c r="XFD1048576" t="inlineStr"><x:is><x:t>x</x:t></x:is></x:c>',  # a prefix
    ],
)
def test_a_far_away_cell_however_it_is_written_is_refused(tmp_path: Path, cell: str) -> None:
    prefix = "x:" if cell.startswith("<x:") else ""
    header = (
        f'<{prefix}row r="1"><{prefix}c r="A1" t="inlineStr"><{prefix}is><{prefix}t>email'
        f"</{prefix}t></{prefix}is></{prefix}c></{prefix}row>"
    )
    xmlns = f'xmlns:x="{_MAIN_NS}"' if prefix else f'xmlns="{_MAIN_NS}"'
    sheet = (
        f'<{prefix}worksheet {xmlns}><{prefix}sheetData>{header}<{prefix}row r="1048576">'
        f"{cell}</{prefix}row></{prefix}sheetData></{prefix}worksheet>"
    )
    path = rewritten_workbook(tmp_path / "far.xlsx", sheet)
    error = one_line_error(invoke("register", str(path), "--sandbox"))
    assert "has a value as far out as cell XFD1048576" in error


def test_a_shared_string_repeated_into_gigabytes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "MAX_TEXT", 2**20)
    rows = ['<row r="1"><c r="A1" t="s"><v>0</v></c></row>']
    rows += [f'<row r="{i}"><c r="A{i}" t="s"><v>1</v></c></row>' for i in range(2, 40)]
    sheet = f'<worksheet xmlns="{_MAIN_NS}"><sheetData>{"".join(rows)}</sheetData></worksheet>'
    path = rewritten_workbook(tmp_path / "bomb.xlsx", sheet, ["email", "A" * 50_000])
    with zipfile.ZipFile(path) as book:  # small, and small unpacked
        assert sum(info.file_size for info in book.infolist()) < 100_000
    error = one_line_error(invoke("register", str(path), "--sandbox"))
    assert "comes to 2 MB of text once its repeated cells are spelt out" in error
    monkeypatch.setattr(workbook, "MAX_TEXT", 4 * 2**20)
    read = one_line_error(invoke("register", str(path), "--sandbox", "--dry-run"))
    assert "no 'firstName' or 'lastName' column" in read  # under the limit: read, and checked


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_pipes_devices_and_looping_links_are_refused_in_one_line(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    error = one_line_error(invoke("register", str(pipe), "--sandbox"))
    assert "is a device, pipe or socket, not a file" in error
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    assert "cannot be opened" in one_line_error(invoke("register", str(loop), "--sandbox"))
    source = write_csv(tmp_path / "guests.csv", people(1))
    looping_out = tmp_path / "out.xlsx"
    looping_out.symlink_to(looping_out)
    written = invoke("register", str(source), "--sandbox", "--out", str(looping_out))
    assert written.exit_code == 0, written.output
    token_pipe = tmp_path / "token"
    os.mkfifo(token_pipe)
    alone = {"G2W_ACCESS_TOKEN": ""}  # nothing in the environment to come first
    piped = invoke("whoami", "--token-file", str(token_pipe), env=alone)
    assert "is not a regular file" in one_line_error(piped)
    assert "Warning" not in piped.stderr


def test_a_token_with_a_line_break_is_refused_before_any_call(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(1))
    evil = {"G2W_ACCESS_TOKEN": "demo-token\r\nX-Evil: 1"}
    result = invoke(*register_args(source, "http://127.0.0.1:9/G2W/rest/v2"), env=evil)
    error = one_line_error(result)
    assert "G2W_ACCESS_TOKEN: the token holds spaces, line breaks or control characters" in error
