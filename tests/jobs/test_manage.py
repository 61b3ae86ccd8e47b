"""export, cancel and undo: end to end against a loopback sandbox, the DELETE worker pool on
virtual time, the journal's record of cancellations, and kills at random moments."""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime as dt
import functools
import random
import sqlite3
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from importer.cli.console import Console
from importer.engine.canceller import Canceller, Settled, Target
from importer.engine.journal import Journal, State, default_path
from importer.goto.provenance import ServerClock
from importer.goto.session import ApiSession
from importer.model import Cancellation, ListedRegistrant, Registrant, Status, Webinar
from importer.model import Result as RowResult
from importer.report.names import named_after
from importer.sandbox import ORGANIZER_KEY, WEBINAR_KEY, WORKSHOP_KEY, Sandbox, SandboxTransport
from tests import helpers
from tests.helpers import (
    ENV,
    TOKEN,
    SandboxProcess,
    ThreadedServer,
    api,
    at,
    command,
    kill_repeatedly,
    people,
    person,
    posix_only,
    register,
    register_args,
    sandbox_client,
    server_registrants,
    sheet_rows,
    status_counts,
    statuses,
    summary,
    token_env,
    virtual_sandbox,
    write_csv,
)

Run = Callable[[Coroutine[Any, Any, Any]], Any]
invoke = functools.partial(helpers.invoke, env=ENV)


def add_through_api(server_url: str, rows: list[list[str]]) -> None:
    """Register people the way another channel would: straight through the API."""
    path = f"organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}/registrants"
    with httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for first, last, email in rows:
            answer = http.post(path, json={"firstName": first, "lastName": last, "email": email})
            answer.raise_for_status()


def listed_emails(server: ThreadedServer) -> set[str]:
    return {entry["email"] for entry in server.sandbox.registrants()}


def test_export_cancel_undo_and_register_again(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    guests = write_csv(tmp_path / "guests.csv", people(100))
    assert register(server.api_url, guests, "--rate", "200").exit_code == 0
    others = people(20, domain="elsewhere.example")[1:]
    add_through_api(server.api_url, others)

    exported = invoke("export", *at(server.api_url), "--out", str(tmp_path / "all.xlsx"))
    assert exported.exit_code == 0, exported.output
    assert "Found:      120 registrants" in exported.stderr
    assert exported.stdout == f"Report: {tmp_path / 'all.xlsx'}\n"
    rows = sheet_rows(tmp_path / "all.xlsx")
    server_view = {
        e["email"]: (e["registrantKey"], e["joinUrl"], e["firstName"])
        for e in server.sandbox.registrants()
    }
    assert {r["email"]: (r["registrantKey"], r["joinUrl"], r["firstName"]) for r in rows} == (
        server_view
    )
    assert all(r["status"] == "APPROVED" and r["registrationDate"] for r in rows)
    link = load_workbook(tmp_path / "all.xlsx")["Registrants"]["G2"]
    assert link.hyperlink is not None
    assert link.hyperlink.target == rows[0]["joinUrl"]
    assert summary(tmp_path / "all.xlsx")["Registrants"] == 120

    leaving = [[email.upper()] for _, _, email in others[:10]]
    cancel_file = write_csv(
        tmp_path / "leaving.csv", [["E-Mail"], *leaving, ["nobody@example.com"]]
    )
    cancelled = invoke("cancel", str(cancel_file), *at(server.api_url), "--rate", "200")
    assert cancelled.exit_code == 1, cancelled.output  # a mistyped address is worth a look
    assert "Not found:  1 row names nobody registered for this webinar:" in cancelled.stderr
    assert "row 12, nobody@example.com" in cancelled.stderr
    assert "Done: 10 cancelled, 1 not registered (nobody@example.com)." in cancelled.stderr
    report = sheet_rows(tmp_path / "leaving-cancelled.xlsx")
    assert [r["status"] for r in report] == ["cancelled"] * 10 + ["not_registered"]
    assert report[-1]["error"] == "nobody with this e-mail is registered for the webinar"
    assert report[0]["registrantKey"] == server_view[others[0][2]][0]
    assert len(server.sandbox.registrants()) == 110

    undone = invoke("undo", *at(server.api_url), "--rate", "200", "--out", str(tmp_path / "u.xlsx"))
    assert undone.exit_code == 0, undone.output
    assert "To cancel:  100 registrations made by g2w-import" in undone.stderr
    # the 10 that cancel took back are nobody's now; the 10 others were never in the journal:
    # nobody is left alone, and the plan does not say "0 people"
    assert "Left alone" not in undone.stderr
    assert listed_emails(server) == {email for _, _, email in others[10:]}
    statuses = status_counts(tmp_path / "u.xlsx")
    assert statuses == {"cancelled": 100}

    again = register(server.api_url, guests, "--rate", "200")
    assert again.exit_code == 0, again.output
    assert "Done: 100 registered." in again.stderr
    # the first report's join URLs are those of the registrations undo cancelled: none is lost
    assert "held join URLs" not in again.stderr
    assert not list(tmp_path.glob("guests-joinurls-*"))
    assert len(server.sandbox.registrants()) == 110
    assert server.sandbox.stats["cancelled"] == 110
    assert server.sandbox.stats["cancel_missing"] == 0


def test_undo_cancels_only_what_this_tool_registered(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = people(10)
    add_through_api(server.api_url, rows[1:3])  # person0 and person1 were there first
    guests = write_csv(tmp_path / "guests.csv", rows)
    assert register(server.api_url, guests).exit_code == 0
    # person2's registration is removed in GoTo and made again through its own form
    moved = next(e for e in server.sandbox.registrants() if e["email"] == "person2@example.com")
    with httpx.Client(
        base_url=server.api_url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        path = f"organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}/registrants"
        assert http.delete(f"{path}/{moved['registrantKey']}").status_code == 204
        assert http.delete(f"{path}/{moved['registrantKey']}").status_code == 404
    add_through_api(server.api_url, [rows[3]])
    # a killed import left person9 sent without an answer (it arrived) and a ghost sent (it
    # did not arrive): the first is this tool's registration, the second is nobody's
    path = default_path(ORGANIZER_KEY, WEBINAR_KEY)
    with Journal.open(path, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as journal:
        ghost = Registrant(99, "Ghost", "Row", "ghost@example.com")
        journal.admit([ghost])
        journal.sending(ghost)
        journal.sending(Registrant(11, "First9", "Last9", "person9@example.com"), 0.0)
    arrived = next(e for e in server.sandbox.registrants() if e["email"] == "person9@example.com")
    arrived["registrationDate"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    first_six = write_csv(tmp_path / "first-six.csv", rows[:7])
    partly = invoke("undo", *at(server.api_url), "--file", str(first_six))
    assert partly.exit_code == 0, partly.output
    assert "Left alone: 3 people g2w-import did not register" in partly.stderr
    report = sheet_rows(tmp_path / "first-six-undone.xlsx")
    assert [(r["row"], r["email"], r["status"]) for r in report] == [
        (2, "person0@example.com", "left_alone"),  # every row of the file is in the report
        (3, "person1@example.com", "left_alone"),
        (4, "person2@example.com", "left_alone"),  # registered again, by someone else
        *((line, f"person{line - 2}@example.com", "cancelled") for line in (5, 6, 7)),
    ]
    assert report[0]["firstName"] == "First0"  # names from the file
    # left alone as asked: a note, not an error
    assert "not registered by g2w-import" in report[0]["note"]
    assert "the one made since by someone else is left alone" in report[2]["note"]
    assert report[0]["error"] is None
    assert report[2]["registrantKey"] != moved["registrantKey"]
    kept = {f"person{i}@example.com" for i in (0, 1, 2, *range(6, 10))}
    assert listed_emails(server) == kept

    rest = invoke("undo", *at(server.api_url), "--out", str(tmp_path / "rest.csv"))
    assert rest.exit_code == 0, rest.output
    # the undo before finished its work: there is nothing to resume
    assert "Resuming" not in rest.stderr
    assert "Cancelled:  4 of g2w-import's registrations are cancelled already" in rest.stderr
    assert listed_emails(server) == {f"person{i}@example.com" for i in (0, 1, 2)}
    text = (tmp_path / "rest.csv").read_text(encoding="utf-8-sig")
    assert text.count("(by an earlier run, or in GoTo Webinar)") == 4  # person2's among them
    assert text.count(",cancelled,") == 8

    again = register(server.api_url, guests)
    assert again.exit_code == 0
    assert "Done: 7 registered, 3 already registered." in again.stderr


def test_export_with_answers_as_csv(
    tmp_path: Path,
    loopback_sandbox: Callable[..., ThreadedServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = loopback_sandbox(rate=0)
    answers = [
        {"questionKey": 7001, "answerKey": 9002},
        {"questionKey": 7002, "responseText": "=1+1"},
    ]
    server.sandbox.add_registrant(
        {"firstName": "Ana", "lastName": "Løv", "email": "ana@example.com", "responses": answers},
        WORKSHOP_KEY,
    )
    server.sandbox.add_registrant(
        {"firstName": "Bo", "lastName": "Kim", "email": "bo@example.com", "responses": answers[:1]},
        WORKSHOP_KEY,
    )
    monkeypatch.chdir(tmp_path)
    result = invoke("export", *at(server.api_url, WORKSHOP_KEY))
    assert result.exit_code == 0, result.output
    assert "Answers:    2 custom questions, read one registrant at a time (2 calls" in result.stderr
    assert (tmp_path / "Customer workshop (sandbox)-registrants.xlsx").exists()

    out = tmp_path / "workshop.csv"
    assert invoke("export", *at(server.api_url, WORKSHOP_KEY), "--out", str(out)).exit_code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert table[0] == [
        "firstName",
        "lastName",
        "email",
        "status",
        "registrationDate",
        "registrantKey",
        "joinUrl",
        "Your role?",
        "What do you hope to learn?",
    ]
    keys = [entry["registrantKey"] for entry in server.sandbox.registrants(WORKSHOP_KEY)]
    assert [row[5] for row in table[1:]] == keys  # every digit, as text
    assert table[1][:3] == ["Ana", "Løv", "ana@example.com"]
    assert table[1][7:] == ["Marketing", "'=1+1"]  # never a formula
    assert table[2][7:] == ["Marketing", ""]

    plain = invoke("export", *at(server.api_url, WORKSHOP_KEY), "--no-answers", "--out", "n.csv")
    assert plain.exit_code == 0
    assert "Your role?" not in (tmp_path / "n.csv").read_text(encoding="utf-8-sig")


def test_merge_fills_a_copy_of_the_users_file(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    add_through_api(server.api_url, people(3)[1:])
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Guest list for the launch"])
    sheet.append(["E-Mail Address", "Name", "Status", "Notes"])
    sheet.append(["PERSON1@example.com", "One", "VIP", "+49 30 1234"])
    sheet.append(["stranger@example.com", "Two", "", "late"])
    sheet.append(["person0@example.com", "Three", "", ""])
    source = tmp_path / "mine.xlsx"
    book.save(source)
    result = invoke("export", *at(server.api_url), "--merge", str(source))
    assert result.exit_code == 0, result.output
    assert (
        "mine.xlsx, sheet 'Sheet' (3 rows): 2 matched by e-mail, 1 not registered" in result.stderr
    )
    assert "Done: 2 of 3 rows matched a registrant." in result.stderr
    rows = sheet_rows(tmp_path / "mine-registrants.xlsx")
    assert list(rows[0]) == [
        "E-Mail Address",
        "Name",
        "Status",
        "Notes",
        "registrantKey",
        "joinUrl",
    ]
    by_email = {e["email"]: e for e in server.sandbox.registrants()}
    assert rows[0]["Status"] == "APPROVED"
    assert rows[0]["Notes"] == "+49 30 1234"  # text, never a formula
    assert rows[0]["registrantKey"] == by_email["person1@example.com"]["registrantKey"]
    assert rows[0]["joinUrl"] == by_email["person1@example.com"]["joinUrl"]
    assert (rows[1]["Status"], rows[1]["registrantKey"], rows[1]["Notes"]) == (
        "not_registered",
        None,
        "late",
    )
    assert rows[2]["joinUrl"] == by_email["person0@example.com"]["joinUrl"]

    csv_source = write_csv(
        tmp_path / "list.csv", [["email", "Company"], ["person1@example.com", "Acme"]]
    )
    assert invoke("export", *at(server.api_url), "--merge", str(csv_source)).exit_code == 0
    merged = (tmp_path / "list-registrants.csv").read_text(encoding="utf-8-sig").splitlines()
    assert merged[0] == "email,Company,registrantKey,joinUrl,status"
    assert merged[1].endswith(f",{by_email['person1@example.com']['joinUrl']},APPROVED")


def test_a_dry_run_or_a_no_changes_nothing(
    tmp_path: Path,
    loopback_sandbox: Callable[..., ThreadedServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = loopback_sandbox(rate=0)
    add_through_api(server.api_url, people(4)[1:])
    rows = [*people(2), ["No", "Mail", ""], ["Again", "Zero", "Person0@Example.com"]]
    leaving = write_csv(tmp_path / "leaving.csv", rows)
    dry = invoke("cancel", str(leaving), *at(server.api_url), "--dry-run")
    assert dry.exit_code == 1, dry.output  # as the run would: a row names nobody registered
    assert "Not found:  1 row names nobody registered for this webinar:" in dry.stderr
    assert "row 4, (no e-mail)" in dry.stderr
    assert "To cancel:  2 registrations" in dry.stderr
    assert "Dry run: nothing was changed or written." in dry.stderr
    assert dry.stdout == ""
    done_report = tmp_path / "leaving-cancelled.xlsx"
    assert not done_report.exists()
    assert not list((tmp_path / "user-data").rglob("*.sqlite3"))  # no journal was created

    with monkeypatch.context() as patched:
        patched.setattr(Console, "confirm", lambda self, question: False)
        declined = invoke("cancel", str(leaving), *at(server.api_url))
    assert declined.exit_code == 1
    assert "Nothing was cancelled." in declined.stderr
    assert len(server.sandbox.registrants()) == 4
    assert server.sandbox.stats["cancelled"] == 0

    done = invoke("cancel", str(leaving), *at(server.api_url))
    assert done.exit_code == 1  # row 4 names nobody
    assert "Done: 3 cancelled, 1 not registered (row 4 without an e-mail)." in done.stderr
    assert [(r["row"], r["status"], r["error"], r["note"]) for r in sheet_rows(done_report)] == [
        (2, "cancelled", None, None),
        (3, "cancelled", None, None),
        (4, "not_registered", "the row has no e-mail address", None),
        (5, "cancelled", None, "same e-mail as row 2"),
    ]
    assert len(server.sandbox.registrants()) == 2


def test_a_call_budget_stops_resumably_and_the_next_run_goes_on(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    crowd = people(10)
    add_through_api(server.api_url, crowd[1:])
    leaving = write_csv(tmp_path / "leaving.csv", crowd)
    budget = ["--max-calls", "5", "--concurrency", "1"]  # the webinar, the list, 3 cancellations
    first = invoke("cancel", str(leaving), *at(server.api_url), *budget)
    assert first.exit_code == 3, first.output
    assert "Stopped early: the run made the 5 calls --max-calls allows. 7 rows are pending" in (
        first.stderr
    )
    report = tmp_path / "leaving-cancelled.xlsx"
    assert statuses(report) == ["cancelled"] * 3 + ["pending"] * 7
    assert "To continue, run the same command again: g2w-import" in summary(report)["Stopped early"]
    assert len(server.sandbox.registrants()) == 7

    second = invoke("cancel", str(leaving), *at(server.api_url))
    assert second.exit_code == 0, second.output
    assert "Resuming:   3 were cancelled by an earlier run." in second.stderr
    assert "Done: 7 cancelled (3 were cancelled already)." in second.stderr
    assert statuses(report) == ["cancelled"] * 10
    assert server.sandbox.registrants() == []
    assert server.sandbox.stats["cancelled"] == 10  # nobody twice
    assert server.sandbox.stats["cancel_missing"] == 0

    for first, last, email in crowd[1:]:
        answer = [{"questionKey": 7001, "answerKey": 9001}]
        fields = {"firstName": first, "lastName": last, "email": email, "responses": answer}
        server.sandbox.add_registrant(fields, WORKSHOP_KEY)
    out = str(tmp_path / "w.csv")
    short = invoke("export", *at(server.api_url, WORKSHOP_KEY), "--out", out, *budget)
    assert short.exit_code == 3
    assert "The answers of 8 registrants are missing: export again later" in short.stderr
    rows = list(csv.reader(Path(out).read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == 11
    assert [row[7] for row in rows[1:]] == ["Developer"] * 2 + [""] * 8


def test_cancel_says_which_addresses_name_nobody_and_marks_them_for_attention(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    add_through_api(server.api_url, people(2)[1:])
    typos = [["First", "Last", f"persn{i}@example.com"] for i in range(5)]
    rows = [*people(2), *typos, ["Again", "Typo", "PERSN0@example.com"]]
    leaving = write_csv(tmp_path / "leaving.csv", rows)
    done = invoke("cancel", str(leaving), *at(server.api_url))
    assert done.exit_code == 1, done.output
    assert (
        "Done: 2 cancelled, 6 not registered (persn0@example.com, persn1@example.com, "
        "persn2@example.com and 2 more)." in done.stderr
    )
    sheet = load_workbook(tmp_path / "leaving-cancelled.xlsx")["Registrants"]
    fills = [row[0].fill.fgColor.rgb[-6:] for row in sheet.iter_rows(min_row=2)]
    assert fills == ["C6EFCE"] * 2 + ["FFC7CE"] * 6  # green, then the colour of attention
    assert server.sandbox.registrants() == []


def test_undo_resumes_only_what_an_unfinished_undo_left(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    guests = write_csv(tmp_path / "guests.csv", people(10))
    assert register(server.api_url, guests).exit_code == 0
    leaving = write_csv(tmp_path / "leaving.csv", people(4))
    cancelled = invoke("cancel", str(leaving), *at(server.api_url))
    assert cancelled.exit_code == 0, cancelled.output
    budget = ["--max-calls", "5", "--concurrency", "1"]  # the webinar, the list, 3 cancellations
    stopped = invoke("undo", *at(server.api_url), *budget)
    assert stopped.exit_code == 3, stopped.output
    # cancel's 4 are not undo's work to resume
    assert "Resuming" not in stopped.stderr
    assert "Cancelled:  4 of g2w-import's registrations are cancelled already" in stopped.stderr
    assert "To cancel:  6 registrations made by g2w-import" in stopped.stderr
    resumed = invoke("undo", *at(server.api_url))
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming:   7 of g2w-import's registrations are cancelled already" in resumed.stderr
    assert server.sandbox.registrants() == []
    after = invoke("undo", *at(server.api_url), "--dry-run")
    assert "Resuming" not in after.stderr  # the undo before finished
    assert "Cancelled:  10 of g2w-import's registrations" in after.stderr


def test_undo_of_the_whole_journal_reports_everyone_its_plan_counts_without_row_numbers(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    add_through_api(server.api_url, people(1)[1:])  # person0 was registered before
    first = write_csv(tmp_path / "first.csv", people(3))
    second = write_csv(tmp_path / "second.csv", people(3, domain="second.example"))
    assert register(server.api_url, first).exit_code == 0
    assert register(server.api_url, second).exit_code == 0
    out = tmp_path / "undone.xlsx"

    undone = invoke("undo", *at(server.api_url), "--out", str(out))

    assert undone.exit_code == 0, undone.output
    assert "Left alone: 1 person g2w-import did not register" in undone.stderr
    assert "Done: 5 cancelled, 1 left alone." in undone.stderr
    assert summary(out)["Left alone"] == 1
    report = sheet_rows(out)
    # the journal's lines come from two files, each with a row 2: they would mean nothing
    assert list(report[0]) == [
        "firstName",
        "lastName",
        "email",
        "status",
        "registrantKey",
        "error",
        "note",
    ]
    assert [(r["email"], r["status"]) for r in report] == [
        ("person0@example.com", "left_alone"),
        ("person0@second.example", "cancelled"),
        ("person1@example.com", "cancelled"),
        ("person1@second.example", "cancelled"),
        ("person2@example.com", "cancelled"),
        ("person2@second.example", "cancelled"),
    ]
    assert report[0]["firstName"] == "First0"  # from the registrant list
    assert report[0]["note"] == (
        "not registered by g2w-import (registered already, or through another channel)"
    )
    assert listed_emails(server) == {"person0@example.com"}


def test_the_done_line_says_what_this_run_cancelled_and_what_was_cancelled_before(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    guests = write_csv(tmp_path / "guests.csv", people(6))
    assert register(server.api_url, guests).exit_code == 0
    leaving = write_csv(tmp_path / "leaving.csv", people(2))
    cancelled = invoke("cancel", str(leaving), *at(server.api_url))
    assert cancelled.exit_code == 0, cancelled.output
    assert "Done: 2 cancelled." in cancelled.stderr
    again = invoke("cancel", str(leaving), *at(server.api_url))
    assert again.exit_code == 0, again.output
    assert "Done: nothing to cancel (2 were cancelled already)." in again.stderr

    out = ["--out", str(tmp_path / "undone.xlsx")]
    undone = invoke("undo", *at(server.api_url), *out)
    assert undone.exit_code == 0, undone.output
    assert "To cancel:  4 registrations made by g2w-import" in undone.stderr
    assert "Done: 4 cancelled (2 were cancelled already)." in undone.stderr
    counts = summary(tmp_path / "undone.xlsx")
    assert (counts["Cancelled"], counts["Cancelled before this run"]) == (6, 2)
    twice = invoke("undo", *at(server.api_url), *out)
    assert twice.exit_code == 0, twice.output
    assert "To cancel:  0 registrations made by g2w-import" in twice.stderr
    assert "Done: nothing to cancel (6 were cancelled already)." in twice.stderr
    one = invoke("cancel", str(write_csv(tmp_path / "one.csv", people(1))), *at(server.api_url))
    assert "Done: nothing to cancel (1 was cancelled already)." in one.stderr


def test_register_says_resuming_only_after_a_run_that_stopped_with_work_open(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    guests = write_csv(tmp_path / "guests.csv", people(10))
    stopped = register(server.api_url, guests, "--max-calls", "8", "--concurrency", "1")
    assert stopped.exit_code == 3, stopped.output
    sent = len(server.sandbox.registrants())
    assert 0 < sent < 10

    resumed = register(server.api_url, guests)
    assert resumed.exit_code == 0, resumed.output
    assert f"Resuming: {sent} of 10 rows were settled by an earlier run." in resumed.stderr

    finished = register(server.api_url, guests)  # the run before finished its work
    assert finished.exit_code == 0, finished.output
    assert "Resuming" not in finished.stderr
    assert (
        "Earlier:  10 of 10 rows were settled by an earlier run of g2w-import; not sent again."
        in finished.stderr
    )
    # a new file that shares one person with the finished runs' file
    other = [*people(1), ["New", "Person", "new1@example.com"], ["New", "Person", "new2@x.org"]]
    shared = register(server.api_url, write_csv(tmp_path / "other.csv", other))
    assert shared.exit_code == 0, shared.output
    assert "Resuming" not in shared.stderr
    assert "Earlier:  1 of 3 rows were settled by an earlier run of g2w-import" in shared.stderr


def test_not_signed_in_says_how_to_sign_in_at_the_command_line(tmp_path: Path) -> None:
    leaving = write_csv(tmp_path / "leaving.csv", people(1))
    nowhere = ["--api-url", "http://127.0.0.1:9/G2W/rest/v2", "--webinar-key", WEBINAR_KEY]
    for args in (["cancel", str(leaving)], ["register", str(leaving)]):
        # the environment holds no token (see own_data_folder), and nothing is stored
        refused = helpers.invoke(*args, *nowhere)
        assert refused.exit_code == 2
        assert refused.stderr.strip().splitlines() == [
            "Error: not signed in: run g2w-import login (or set G2W_ACCESS_TOKEN, or pass "
            "--token-file)"
        ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["undo"], 2, "no journal of webinar 8325357307900339981 at "),
        (["cancel", "missing.csv"], 2, "missing.csv: no such file; check the name"),
        (
            ["export", "--out", "list.pdf"],
            2,
            "--out list.pdf: the report must end in .xlsx or .csv",
        ),
        (["undo", "--out", "no/such/folder/x.xlsx"], 2, "no such folder for the report; create it"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path,
    loopback_sandbox: Callable[..., ThreadedServer],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    message: str,
) -> None:
    server = loopback_sandbox(rate=0)
    monkeypatch.chdir(tmp_path)
    result = invoke(*args, *at(server.api_url))
    assert result.exit_code == code
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert server.sandbox.stats["authorized"] == 0


def test_unknown_webinar_or_refused_token_exits_4_and_never_shows_the_token(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    leaving = write_csv(tmp_path / "leaving.csv", people(2))
    unknown = invoke("cancel", str(leaving), *at(server.api_url, "1111111111111111111"))
    assert unknown.exit_code == 4
    assert "webinar 1111111111111111111 was not found for organizer" in unknown.stderr
    canary = "canary-token-3b9d1f"
    refused = loopback_sandbox(rate=0, token_calls=0, tokens=(canary,))
    result = invoke("export", *at(refused.api_url), "--verbose", env={"G2W_ACCESS_TOKEN": canary})
    assert result.exit_code == 4
    assert "the API refused the access token" in result.stderr
    assert "HTTP Request: GET http://127.0.0.1:" in result.stderr
    assert canary not in result.output


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        ('Q3: "Launch" / EMEA', "Q3 Launch EMEA-registrants.xlsx"),
        ("Product launch (sandbox)", "Product launch (sandbox)-registrants.xlsx"),
        ("..//??", "8325357307900339981-registrants.xlsx"),
    ],
)
def test_a_report_named_after_a_webinar_has_a_file_name_every_system_takes(
    subject: str, name: str
) -> None:
    webinar = Webinar(WEBINAR_KEY, subject, None, None)
    assert named_after(webinar, "registrants.xlsx") == Path(name)


def test_the_sandbox_cancels_once_and_takes_the_same_e_mail_again(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0)
    entry = sandbox.add_registrant({"firstName": "A", "lastName": "B", "email": "a@example.com"})

    async def go() -> tuple[bool, bool, Status]:
        async with sandbox_client(sandbox) as http:
            client = api(http, sandbox)
            first = await client.delete_registrant(entry["registrantKey"])
            again = await client.delete_registrant(entry["registrantKey"])
            person = Registrant(2, "A", "B", "A@example.com")
            return first, again, (await client.create_registrant(person, resend=False)).status

    assert run_virtual(go()) == (True, False, Status.REGISTERED)
    assert (sandbox.stats["cancelled"], sandbox.stats["cancel_missing"]) == (1, 1)
    (again,) = sandbox.registrants()
    assert again["registrantKey"] != entry["registrantKey"]


# --- the DELETE worker pool on virtual time ---------------------------------------------------


class Faulty(SandboxTransport):
    """Loses the answer of some DELETEs after the sandbox carried them out, and answers others
    with a 503 without carrying them out; counts the DELETEs per registrant key."""

    def __init__(self, sandbox: Sandbox, lose: set[str], fail: set[str]) -> None:
        super().__init__(sandbox)
        self.lose, self.fail = set(lose), set(fail)
        self.deletes: collections.Counter[str] = collections.Counter()
        self.lists = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        if request.method == "GET" and request.url.path.endswith("/registrants"):
            self.lists += 1
        if request.method != "DELETE":
            return await super().handle_async_request(request)
        self.deletes[key] += 1
        if key in self.fail:
            self.fail.discard(key)
            return httpx.Response(503, content=b"<html>Service Unavailable</html>")
        response = await super().handle_async_request(request)
        if key in self.lose:
            self.lose.discard(key)
            raise httpx.ReadTimeout("no answer", request=request)
        return response


def seeded(sandbox: Sandbox, count: int) -> list[Target]:
    entries = [
        sandbox.add_registrant({"firstName": "F", "lastName": "L", "email": f"p{i}@example.com"})
        for i in range(count)
    ]
    return [
        Target(i + 2, e["email"], e["registrantKey"], e["joinUrl"], State.REGISTERED)
        for i, e in enumerate(entries)
    ]


async def cancel_all(
    sandbox: Sandbox, transport: SandboxTransport, journal: Journal, targets: list[Target]
) -> dict[int, Settled]:
    results: dict[int, Settled] = {}
    async with sandbox_client(sandbox, transport=transport) as http:
        canceller = Canceller(
            ApiSession(rate=10, rng=random.Random(3)), api(http, sandbox), journal, concurrency=4
        )
        await canceller.run(targets, lambda _, settled: results.__setitem__(settled.line, settled))
    return results


def test_lost_answers_are_settled_from_the_list_never_by_calling_again(
    run_virtual: Run, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=0)
    targets = seeded(sandbox, 30)
    lost = {t.registrant_key for t in targets[::3]}
    failed = {t.registrant_key for t in targets[1::3]}
    transport = Faulty(sandbox, lost, failed)
    with Journal.open(tmp_path / "j.sqlite3", organizer_key="1", webinar_key="2") as journal:
        results = run_virtual(cancel_all(sandbox, transport, journal, targets))
        states = {entry.state for entry in journal.entries().values()}
    assert {r.status for r in results.values()} == {Cancellation.CANCELLED}
    assert len(results) == 30
    assert sandbox.registrants() == []
    assert states == {State.CANCELLED}
    assert transport.lists == 1  # one read of the list settled every unclear answer
    for target in targets:
        expected = 2 if target.registrant_key in failed else 1
        assert transport.deletes[target.registrant_key] == expected, target


def test_a_call_left_without_an_answer_is_told_by_e_mail_not_by_a_line_others_share(
    run_virtual: Run, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=0)
    # an undo of the whole journal: its people come from several files, each with a row 2
    targets = [dataclasses.replace(target, line=2) for target in seeded(sandbox, 3)]
    transport = Faulty(sandbox, {targets[0].registrant_key}, set())

    async def go(journal: Journal) -> set[str]:
        async with sandbox_client(sandbox, transport=transport) as http:
            session = ApiSession(rate=10, max_calls=2, rng=random.Random(3))
            canceller = Canceller(session, api(http, sandbox), journal, concurrency=1)
            await canceller.run(targets, lambda *_: None)  # stops before the list is read
            return canceller.unsettled()

    with Journal.open(tmp_path / "j.sqlite3", organizer_key="1", webinar_key="2") as journal:
        assert run_virtual(go(journal)) == {"p0@example.com"}


def test_a_refused_cancellation_fails_and_leaves_the_person_as_they_were(
    run_virtual: Run, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=0)
    targets = seeded(sandbox, 3)

    class Refusing(SandboxTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "DELETE" and request.url.path.endswith(targets[1].registrant_key):
                return httpx.Response(400, json={"description": "Registrant cannot be removed"})
            return await super().handle_async_request(request)

    with Journal.open(tmp_path / "j.sqlite3", organizer_key="1", webinar_key="2") as journal:
        results = run_virtual(cancel_all(sandbox, Refusing(sandbox), journal, targets))
        entries = journal.entries()
    assert results[3] == Settled(
        3,
        Cancellation.FAILED,
        "GoTo refused to cancel this registration: Registrant cannot be removed",
    )
    assert [e["email"] for e in sandbox.registrants()] == ["p1@example.com"]
    kept = entries["p1@example.com"]
    assert (kept.state, kept.registrant_key, kept.prior) == (
        State.REGISTERED,
        targets[1].registrant_key,
        None,
    )
    assert entries["p0@example.com"].state == State.CANCELLED


# --- the journal ----------------------------------------------------------------------------


def test_the_journal_sends_cancelled_people_again_and_settles_interrupted_cancellations(
    tmp_path: Path,
) -> None:
    folks = [person(i) for i in range(4)]
    with Journal.open(tmp_path / "j.sqlite3", organizer_key="1", webinar_key="2") as journal:
        journal.admit(folks)
        for i, status in enumerate([Status.REGISTERED] * 3 + [Status.ALREADY_REGISTERED]):
            journal.settle(folks[i], RowResult(i + 2, status, f"{i}" * 19, f"https://j/{i}"))
        journal.cancelling("p0@example.com", 2, "0" * 19, None, State.REGISTERED)
        journal.cancelled("p0@example.com")
        journal.cancelling("P1@example.com", 3, "1" * 19, None, State.REGISTERED)  # killed here
        journal.cancelling("p3@example.com", 5, "3" * 19, None, State.ALREADY_REGISTERED)
        journal.cancelling("p9@example.com", 9, "9" * 19, None, State.ALREADY_REGISTERED)
        journal.kept("p9@example.com")  # a refused cancellation of someone it never registered
        assert journal.entries()["p9@example.com"].state == State.ALREADY_REGISTERED
        admission = journal.admit(folks)
        assert [p.line for p in admission.to_send] == [2, 3, 5]
        assert list(admission.settled) == [4]
        # the list shows p1 still registered (the DELETE never arrived), p3 cancelled
        listed = {"p1@example.com": ListedRegistrant("1" * 19, "p1@example.com", "u", None)}
        still, found = journal.reconcile(admission.to_send, listed, ServerClock())
        assert [p.line for p in still] == [2, 5]
        assert found[3].status == Status.REGISTERED
        entries = journal.entries()
        assert [entries[f"p{i}@example.com"].state for i in range(4)] == [
            State.TODO,
            State.REGISTERED,
            State.REGISTERED,
            State.TODO,
        ]
        assert all(entry.prior is None for entry in entries.values())


def test_a_journal_of_an_earlier_version_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE people (email_key TEXT PRIMARY KEY, email TEXT NOT NULL,
            line INTEGER NOT NULL, state TEXT NOT NULL, registrant_key TEXT, join_url TEXT,
            error TEXT, retry INTEGER NOT NULL DEFAULT 0, body_hash TEXT NOT NULL,
            updated TEXT NOT NULL, approval TEXT);
        INSERT INTO meta VALUES ('schema', '2'), ('organizer', '1'), ('webinar', '2');
        INSERT INTO people VALUES ('a@x.org', 'a@x.org', 2, 'registered', '5', 'u', NULL, 0,
            'h', 't', NULL);
        """
    )
    db.close()
    with Journal.open(path, organizer_key="1", webinar_key="2") as journal:
        journal.cancelling("a@x.org", 2, "5", "u", State.REGISTERED)
        assert journal.entries()["a@x.org"].prior == State.REGISTERED


# --- kills at random moments ----------------------------------------------------------------


@posix_only
def test_cancel_killed_at_random_moments_and_run_again_cancels_everyone_once(
    tmp_path: Path, sandbox_process: Callable[..., SandboxProcess]
) -> None:
    server = sandbox_process("--rate", "0", "--latency", "0.02")
    crowd = people(240)
    add_through_api(server.api_url, crowd[1:])
    leaving = write_csv(tmp_path / "leaving.csv", [*crowd[:201], ["X", "Y", "nobody@example.com"]])
    out = tmp_path / "leaving.xlsx"
    argv = command(
        "cancel",
        str(leaving),
        *at(server.api_url),
        "--rate",
        "20",
        "--out",
        str(out),
        "--yes",
        "--journal",
        str(tmp_path / "journal.sqlite3"),
        "--quiet",
    )
    assert kill_repeatedly(argv, seed=20261201) >= 3
    assert 40 < len(server_registrants(server)) < 240  # the kills fell in the middle of the work
    final = subprocess.run(
        argv, env=token_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert final.returncode == 1, final.stderr  # nobody@example.com is not registered
    remaining = {entry["email"] for entry in server_registrants(server)}
    assert remaining == {email for _, _, email in crowd[201:]}
    statuses = status_counts(out)
    assert statuses == {"cancelled": 200, "not_registered": 1}
    with Journal.open(
        tmp_path / "journal.sqlite3", organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY
    ) as journal:
        states = collections.Counter(entry.state for entry in journal.entries().values())
    assert states == {State.CANCELLED: 200}  # nothing left half done


@posix_only
def test_undo_killed_at_random_moments_and_run_again_leaves_others_alone(
    tmp_path: Path, sandbox_process: Callable[..., SandboxProcess]
) -> None:
    server = sandbox_process("--rate", "0", "--latency", "0.02")
    guests = write_csv(tmp_path / "guests.csv", people(150))
    journal = str(tmp_path / "journal.sqlite3")
    env = token_env(ENV["G2W_ACCESS_TOKEN"])
    registered = subprocess.run(
        command(*register_args(guests, server.api_url, "--rate", "200", "--journal", journal)),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert registered.returncode == 0, registered.stderr
    out = tmp_path / "undo.xlsx"
    argv = command(
        "undo",
        *at(server.api_url),
        "--rate",
        "20",
        "--out",
        str(out),
        "--yes",
        "--journal",
        journal,
        "--quiet",
    )
    rng = random.Random(7)
    came_back: list[list[str]] = []
    kills = 0
    for _ in range(4):
        kills += kill_repeatedly(argv, seed=rng.randrange(10**6), runs=1)
        # someone undone comes back through GoTo's own form: a registration to leave alone
        gone = {f"person{i}@example.com" for i in range(150)} - {
            e["email"] for e in server_registrants(server)
        }
        if gone:
            email = sorted(gone - {row[2] for row in came_back})[0]
            came_back.append(["Back", "Again", email])
            add_through_api(server.api_url, [came_back[-1]])
    assert kills >= 3
    assert len(came_back) >= 2
    final = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stderr
    remaining = server_registrants(server)
    assert {entry["email"] for entry in remaining} == {row[2] for row in came_back}
    assert all(entry["firstName"] == "Back" for entry in remaining)
    statuses = status_counts(out)
    assert statuses == {"cancelled": 150}
    with Journal.open(Path(journal), organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as book:
        states = collections.Counter(entry.state for entry in book.entries().values())
    assert states == {State.CANCELLED: 150}


def test_where_the_report_goes_is_checked_before_anything_is_cancelled_or_read(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    add_through_api(server.api_url, people(2)[1:])
    leaving = write_csv(tmp_path / "leaving.csv", people(2))
    kept = leaving.read_bytes()
    runs = [
        ("cancel", str(leaving), "--out", str(leaving)),
        ("undo", "--file", str(leaving), "--out", str(leaving)),
        ("export", "--merge", str(leaving), "--out", str(leaving)),
    ]
    for args in runs:
        refused = invoke(*args, *at(server.api_url))
        assert refused.exit_code == 2, refused.output
        assert "is the input file itself" in refused.stderr
        assert leaving.read_bytes() == kept
    folder = invoke("cancel", str(leaving), *at(server.api_url), "--out", str(tmp_path))
    assert folder.exit_code == 2
    assert "is a directory" in folder.stderr
    assert server.sandbox.stats["cancelled"] == 0
    assert len(server.sandbox.registrants()) == 2

    twice = invoke(
        "undo", *at(server.api_url), "--webinar-key", WORKSHOP_KEY, "--dry-run"
    )  # at() names one webinar already: a second is refused, not dropped
    assert twice.exit_code == 2
    assert "2 webinars named: this command works on one webinar at a time" in twice.stderr


def test_a_report_folder_that_cannot_be_written_stops_the_cancel_before_it_starts(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    add_through_api(server.api_url, people(1)[1:])
    leaving = write_csv(tmp_path / "leaving.csv", people(1))
    inside_a_file = leaving / "r.xlsx"  # a folder that is a file: no report can go there
    refused = invoke("cancel", str(leaving), *at(server.api_url), "--out", str(inside_a_file))
    assert refused.exit_code == 2
    assert "the report cannot be written there (it is not a folder)" in refused.stderr
    assert server.sandbox.stats["cancelled"] == 0
