"""The built-in sandbox (``--sandbox``) keeps its registrations, and its runs' journals, between
runs: in the user's data folder, which each test has to itself."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from importer import sandbox
from importer.cli import cli
from importer.connection import Connection
from importer.httpserver import Request
from importer.journal import webinar_journal
from importer.sandbox import (
    KICKOFF_KEY,
    ORGANIZER_KEY,
    PREFIX,
    WEBINAR_KEY,
    Sandbox,
    SandboxConfig,
    SandboxTransport,
)
from importer.sandbox.store import SandboxStore, journal_folder, store_path

from .conftest import TOKEN, command, people, posix_only, write_csv

WEBINAR = f"/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}"
BASE = f"{PREFIX}{WEBINAR}"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def kept() -> list[str]:
    """The e-mail of everyone the built-in sandbox holds, over every webinar."""
    with SandboxStore.open(store_path()) as store:
        held = Sandbox()
        store.attach(held)
        return [entry["email"] for w in held.webinars.values() for entry in w.registrants]


def test_registrations_survive_between_two_sandbox_runs(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(5))
    out = tmp_path / "report.csv"
    first = invoke("register", str(source), "--sandbox", "--yes", "--out", str(out))
    assert first.exit_code == 0, first.output
    urls = {row["email"]: row["joinUrl"] for row in report(out)}
    assert len(set(urls.values())) == 5
    journal = journal_folder() / f"{ORGANIZER_KEY}-{WEBINAR_KEY}.sqlite3"
    assert f"Journal:  {journal}\n" in first.stderr  # kept, apart from GoTo's journals

    again = invoke("register", str(source), "--sandbox", "--yes", "--out", str(out))
    assert again.exit_code == 0, again.output
    assert "Earlier:  5 of 5 rows were settled by an earlier run of g2w-import" in again.stderr
    assert "To send:  0 registrants" in again.stderr

    # a journal of its own: the sandbox itself knows them, with the keys it gave them
    elsewhere = ["--journal", str(tmp_path / "other.sqlite3")]
    fresh = invoke("register", str(source), "--sandbox", "--yes", "--out", str(out), *elsewhere)
    assert fresh.exit_code == 0, fresh.output
    rows = report(out)
    assert {row["status"] for row in rows} == {"already_registered"}
    assert {row["email"]: row["joinUrl"] for row in rows} == urls
    assert sorted(kept()) == sorted(urls)


def test_export_cancel_and_undo_see_what_an_earlier_run_registered(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(4))
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    listed = tmp_path / "list.csv"
    exported = invoke("export", "--sandbox", "--yes", "--out", str(listed))
    assert exported.exit_code == 0, exported.output
    assert len(report(listed)) == 4
    leaving = write_csv(tmp_path / "leaving.csv", people(2))
    cancelled = invoke("cancel", str(leaving), "--sandbox", "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    assert "Done: 2 cancelled." in cancelled.stderr
    undone = invoke("undo", "--sandbox", "--yes", "--out", str(tmp_path / "undone.xlsx"))
    assert undone.exit_code == 0, undone.output
    assert "To cancel:  2 registrations made by g2w-import" in undone.stderr
    assert kept() == []


@posix_only
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_sandbox_run_stopped_halfway_continues_where_it_stopped(
    tmp_path: Path, stop: signal.Signals
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(40))
    out = tmp_path / "report.csv"
    argv = command("register", str(source), "--sandbox", "--yes", "--out", str(out))
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(kept()) < 5 and time.monotonic() < deadline:  # under way: 10 a second
        time.sleep(0.05)
    run.send_signal(stop)
    _, err = run.communicate(timeout=60)
    assert run.returncode == (130 if stop == signal.SIGINT else -signal.SIGKILL), err
    before = len(kept())
    assert 0 < before < 40

    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    # only those the sandbox does not hold yet are sent: it knows everyone registered before
    assert f"To send:  {40 - before} registrants" in rerun.stderr
    statuses = Counter(row["status"] for row in report(out))
    if stop == signal.SIGINT:  # the calls under way finished and were recorded
        assert f"Resuming: {before} of 40 rows were settled" in rerun.stderr
        assert statuses == {"registered": 40}
    else:  # a registration whose answer was lost is the tool's only where it can prove it
        assert statuses.keys() <= {"registered", "already_registered"}
    held = kept()
    assert len(held) == len(set(held)) == 40


def test_sandbox_reset_empties_it(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(3))
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    done = invoke("sandbox", "reset")
    assert done.exit_code == 0, done.output
    assert done.stderr == (
        f"Sandbox reset: removed 3 registrants and 1 journal ({store_path().parent}).\n"
    )
    assert kept() == []
    assert not journal_folder().exists()
    again = invoke("register", str(source), "--sandbox", "--yes")
    assert "Resuming" not in again.stderr
    assert "Done: 3 registered." in again.stderr
    assert invoke("sandbox", "reset").exit_code == 0
    assert "removed 0 registrants and 0 journals" in invoke("sandbox", "reset").stderr


def test_sandbox_reset_waits_for_a_sandbox_import_that_runs(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    with webinar_journal(ORGANIZER_KEY, WEBINAR_KEY, folder=journal_folder()):
        refused = invoke("sandbox", "reset")
    assert refused.exit_code == 2
    assert refused.stderr.startswith("Error: a --sandbox import is running (it holds ")
    assert "stop it, then run g2w-import sandbox reset again" in refused.stderr
    assert len(kept()) == 2


def test_sandbox_help_lists_reset_and_serving_still_takes_its_options() -> None:
    shown = invoke("sandbox", "--help")
    assert shown.exit_code == 0
    assert "--registration-limit N" in shown.stdout
    assert "reset  Empty the built-in sandbox that --sandbox uses." in shown.stdout
    wrong = invoke("sandbox", "--rate", "-1")
    assert wrong.exit_code == 2


def test_a_damaged_sandbox_file_is_one_line_that_says_how_to_start_afresh(tmp_path: Path) -> None:
    store_path().parent.mkdir(parents=True)
    store_path().write_bytes(b"this is not a database" * 100)
    source = write_csv(tmp_path / "guests.csv", people(2))
    failed = invoke("register", str(source), "--sandbox", "--yes")
    assert failed.exit_code == 2
    line = failed.stderr.strip()
    assert "\n" not in line
    assert line.startswith(f"Error: {store_path()}: the built-in sandbox's registrations")
    assert line.endswith("run g2w-import sandbox reset to start the sandbox afresh")
    done = invoke("sandbox", "reset")
    assert done.exit_code == 0
    assert done.stderr.startswith("Sandbox reset: removed its file, which could not be read, and")
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    assert len(kept()) == 2


def test_a_kept_sandbox_still_refuses_tokens_it_did_not_issue() -> None:
    async def listed(connection: Connection, token: str | None = None) -> httpx.Response:
        if token is None:  # the connection's own
            async with connection.http_client(1, 5.0) as http:
                return await http.get(f"{WEBINAR}/registrants")
        async with httpx.AsyncClient(transport=connection.transport, base_url=sandbox.URL) as http:
            return await http.get(f"{WEBINAR}/registrants", headers={"Authorization": token})

    with sandbox.connect() as first:
        earlier = first.auth.credentials.access_token
        assert isinstance(first.transport, SandboxTransport)
        first.transport.sandbox.add_registrant(
            {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.com"}
        )
        assert asyncio.run(listed(first)).status_code == 200
        assert asyncio.run(listed(first, f"Bearer {earlier}")).status_code == 200
    with sandbox.connect() as second:
        for token in (f"Bearer {earlier}", f"Bearer {TOKEN}", "Bearer "):
            refused = asyncio.run(listed(second, token))
            assert refused.status_code == 403
            assert refused.json()["int_err_code"] == "InvalidToken"
        own = asyncio.run(listed(second))
        assert own.status_code == 200
        assert [entry["email"] for entry in own.json()] == ["ann@example.com"]


def test_a_sandbox_built_directly_keeps_nothing(own_data_folder: Path) -> None:
    served = Sandbox()
    served.add_registrant({"firstName": "A", "lastName": "B", "email": "a@example.com"})
    assert served.store is None
    assert not own_data_folder.exists()


def test_webinars_from_a_past_day_lists_the_past_webinar_marked_over() -> None:
    listed = invoke("webinars", "--sandbox", "--from", "2020-01-01")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[2].startswith(KICKOFF_KEY)
    assert " UTC (over)  single session " in lines[2]
    assert lines[3].startswith(WEBINAR_KEY)
    assert "(over)" not in "\n".join(lines[3:])
    assert len(lines) == 6  # and the upcoming ones: to a year from today


def create(held: Sandbox, email: str) -> int:
    body = {"firstName": "F", "lastName": "L", "email": email}
    request = Request(
        "POST",
        f"{BASE}/registrants",
        {"authorization": f"Bearer {TOKEN}"},
        json.dumps(body).encode(),
    )
    return asyncio.run(held.handle(request)).status


def delete(held: Sandbox, key: str) -> int:
    request = Request(
        "DELETE", f"{BASE}/registrants/{key}", {"authorization": f"Bearer {TOKEN}"}, b""
    )
    return asyncio.run(held.handle(request)).status


def test_two_connections_at_once_register_each_person_once() -> None:
    """Two sandboxes on one file, as the page and a command are, each in its own thread,
    registering the same people at the same time: each person once, every key once."""
    emails = [f"p{i}@example.com" for i in range(150)]
    answers: dict[int, Counter[int]] = {}
    together = threading.Barrier(2, timeout=30)

    def register(number: int) -> None:
        with SandboxStore.open(store_path()) as store:
            held = Sandbox(SandboxConfig(rate=0, tokens=(TOKEN,)))
            store.attach(held)
            order = emails if number == 0 else list(reversed(emails))
            together.wait()
            answers[number] = Counter(create(held, email) for email in order)

    threads = [threading.Thread(target=register, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert answers[0] + answers[1] == {201: 150, 409: 150}
    assert sorted(kept()) == sorted(emails)

    # what one cancels, the other no longer lists, and may register again
    with SandboxStore.open(store_path()) as one, SandboxStore.open(store_path()) as other:
        first = Sandbox(SandboxConfig(rate=0, tokens=(TOKEN,)))
        second = Sandbox(SandboxConfig(rate=0, tokens=(TOKEN,)))
        one.attach(first)
        other.attach(second)
        gone = first.registrants()[0]
        assert delete(first, gone["registrantKey"]) == 204
        assert delete(second, gone["registrantKey"]) == 404
        assert gone["email"] not in [entry["email"] for entry in second.registrants()]
        assert create(second, gone["email"]) == 201
        assert create(first, gone["email"]) == 409
        keys = [entry["registrantKey"] for entry in first.registrants()]
        assert len(keys) == len(set(keys)) == 150
        assert gone["registrantKey"] not in keys
