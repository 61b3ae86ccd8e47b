"""The built-in sandbox (``--sandbox``) keeps its registrations, and its runs' journals, between
runs: in the user's data folder, which each test has to itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from importer import sandbox
from importer.engine.journal import webinar_journal
from importer.errors import JournalError
from importer.goto.connection import Connection
from importer.sandbox import (
    KICKOFF_KEY,
    ORGANIZER_KEY,
    PREFIX,
    WEBINAR_KEY,
    WORKSHOP_KEY,
    Sandbox,
    SandboxConfig,
    SandboxTransport,
)
from importer.sandbox.store import SandboxStore, journal_folder, store_path
from importer.serve.exchange import Request
from tests.helpers import TOKEN, command, csv_rows, invoke, people, posix_only, write_csv

WEBINAR = f"/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}"
BASE = f"{PREFIX}{WEBINAR}"


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
    urls = {row["email"]: row["joinUrl"] for row in csv_rows(out)}
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
    rows = csv_rows(out)
    assert {row["status"] for row in rows} == {"already_registered"}
    assert {row["email"]: row["joinUrl"] for row in rows} == urls
    assert sorted(kept()) == sorted(urls)


def test_export_cancel_and_undo_see_what_an_earlier_run_registered(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(4))
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    listed = tmp_path / "list.csv"
    exported = invoke("export", "--sandbox", "--yes", "--out", str(listed))
    assert exported.exit_code == 0, exported.output
    assert len(csv_rows(listed)) == 4
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
    statuses = Counter(row["status"] for row in csv_rows(out))
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
    assert list(journal_folder().glob("*.sqlite3*")) == []
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
    assert done.stderr.startswith("Sandbox reset: removed its file, which could not be used, and")
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


def test_sandbox_reset_lets_no_import_start_while_it_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import that starts while the reset is under way (here: while it empties the file)
    is refused, for a webinar that has a journal and for one that has none yet; the reset
    removes no journal and no lock an import holds."""
    source = write_csv(tmp_path / "guests.csv", people(2))
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    refused: list[str] = []
    empty = SandboxStore.empty

    def meanwhile(store: SandboxStore) -> int:
        for key in (WEBINAR_KEY, WORKSHOP_KEY):
            try:
                with webinar_journal(ORGANIZER_KEY, key, folder=journal_folder()):
                    pass
            except JournalError:
                refused.append(key)
        return empty(store)

    monkeypatch.setattr(SandboxStore, "empty", meanwhile)
    done = invoke("sandbox", "reset")
    assert done.exit_code == 0, done.output
    assert "removed 2 registrants and 1 journal" in done.stderr
    assert refused == [WEBINAR_KEY, WORKSHOP_KEY]
    assert list(journal_folder().glob("*.sqlite3*")) == []


def test_sandbox_reset_leaves_the_lock_files_an_import_may_be_taking(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    lock = journal_folder() / f"{ORGANIZER_KEY}-{WEBINAR_KEY}.lock"
    assert lock.exists()
    assert invoke("sandbox", "reset").exit_code == 0
    assert lock.exists()  # one removed could be held by one import as another takes a new one
    with webinar_journal(ORGANIZER_KEY, WEBINAR_KEY, folder=journal_folder()):
        refused = invoke("sandbox", "reset")
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"Error: a --sandbox import is running (it holds {lock}); stop it, then run "
        "g2w-import sandbox reset again\n"
    )


def test_sandbox_reset_fails_when_its_journals_folder_is_a_file() -> None:
    journal_folder().parent.mkdir(parents=True)
    journal_folder().write_text("not a folder")
    done = invoke("sandbox", "reset")
    assert done.exit_code == 2
    assert done.stderr == (
        f"Error: {journal_folder()}: is not a folder, but the sandbox keeps its journals there; "
        "move it away, then run g2w-import sandbox reset again\n"
    )
    journal_folder().unlink()
    assert invoke("sandbox", "reset").exit_code == 0


DAMAGE = {
    "not JSON": "UPDATE registrants SET entry = '{not json'",
    "no e-mail": "UPDATE registrants SET entry = json_remove(entry, '$.email')",
    "a list": "UPDATE registrants SET entry = '[1,2]'",
    "e-mail null": "UPDATE registrants SET entry = json_set(entry, '$.email', json('null'))",
    "removals not a number": "UPDATE meta SET value = 'abc' WHERE name = 'removals'",
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_registrations_are_one_line_and_a_reset_clears_them(
    tmp_path: Path, damage: str
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    with contextlib.closing(sqlite3.connect(store_path())) as db:
        db.execute(damage)
        db.commit()
    for args in (["fields", "--sandbox"], ["register", str(source), "--sandbox", "--yes"]):
        failed = invoke(*args)
        assert failed.exit_code == 2
        line = failed.stderr.strip()
        assert "\n" not in line
        assert line.startswith(f"Error: {store_path()}: the built-in sandbox's registrations ")
        assert line.endswith("; run g2w-import sandbox reset to start the sandbox afresh")
    done = invoke("sandbox", "reset")
    assert done.exit_code == 0, done.output
    assert invoke("fields", "--sandbox").exit_code == 0
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    assert len(kept()) == 2


def test_a_folder_where_the_sandbox_file_belongs_is_removed_by_reset_when_empty() -> None:
    store_path().mkdir(parents=True)
    failed = invoke("fields", "--sandbox")
    assert failed.exit_code == 2
    assert failed.stderr == (
        f"Error: {store_path()}: is a folder, not the built-in sandbox's file; run g2w-import "
        "sandbox reset to start the sandbox afresh\n"
    )
    done = invoke("sandbox", "reset")
    assert done.exit_code == 0, done.output
    assert done.stderr.startswith("Sandbox reset: removed its file, which could not be used, and")
    assert invoke("fields", "--sandbox").exit_code == 0

    (store_path() / "something").mkdir(parents=True)  # a folder that holds files: never removed
    kept_back = invoke("sandbox", "reset")
    assert kept_back.exit_code == 2
    assert kept_back.stderr.startswith(f"Error: {store_path()}: the built-in sandbox's file ")
    assert kept_back.stderr.endswith(
        "; it is a folder that holds files: move it away, then run g2w-import sandbox reset again\n"
    )
    assert (store_path() / "something").is_dir()
    store_path().rename(store_path().with_name("moved away"))
    assert invoke("sandbox", "reset").exit_code == 0
    assert invoke("fields", "--sandbox").exit_code == 0


def _read_only(path: Path) -> Callable[[bool], None] | None:
    """A switch that makes ``path`` unwritable and undeletable (True) and undoes it (False),
    as the user could; None where this system cannot."""
    if os.name != "posix":
        return None
    if os.geteuid() != 0:  # file modes bind everyone but root

        def modes(on: bool) -> None:
            path.chmod(0o444 if on else 0o644)
            path.parent.chmod(0o555 if on else 0o755)

        return modes
    chattr = shutil.which("chattr")
    if chattr is None:
        return None

    def immutable(on: bool) -> None:
        subprocess.run([chattr, "+i" if on else "-i", str(path)], check=True, capture_output=True)

    try:
        immutable(True)
    except subprocess.CalledProcessError:  # a file system without the attribute
        return None
    immutable(False)
    return immutable


@posix_only
def test_a_read_only_sandbox_file_gets_advice_that_leads_somewhere(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    assert invoke("register", str(source), "--sandbox", "--yes").exit_code == 0
    switch = _read_only(store_path())
    if switch is None:
        pytest.skip("this system cannot make a file read-only for the tests' user")
    switch(True)
    try:
        failed = invoke("fields", "--sandbox")
        assert failed.exit_code == 2
        assert failed.stderr.startswith(f"Error: {store_path()}: the built-in sandbox's ")
        assert "sandbox reset" in failed.stderr
        refused = invoke("sandbox", "reset")
        assert refused.exit_code == 2
        assert refused.stderr != failed.stderr
        assert refused.stderr.startswith(f"Error: {store_path()}: the built-in sandbox's file ")
        assert refused.stderr.endswith(
            "; make it and its folder writable, or remove it by hand, then run g2w-import "
            "sandbox reset again\n"
        )
        assert len(refused.stderr.splitlines()) == 1
    finally:
        switch(False)
    done = invoke("sandbox", "reset")
    assert done.exit_code == 0, done.output
    assert "removed 2 registrants and 1 journal" in done.stderr
    assert invoke("fields", "--sandbox").exit_code == 0


def test_commands_that_only_read_make_no_sandbox_file(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    for args in (
        ["fields", "--sandbox"],
        ["webinars", "--sandbox"],
        ["template", str(tmp_path / "form.xlsx"), "--sandbox"],
        ["register", str(source), "--sandbox", "--dry-run"],
    ):
        done = invoke(*args)
        assert done.exit_code == 0, (args, done.output)
    assert not store_path().exists()
    assert kept() == []
    assert not store_path().exists()


def test_commands_that_only_read_work_where_the_data_folder_cannot_be_made(
    tmp_path: Path, own_data_folder: Path
) -> None:
    own_data_folder.write_text("a file where the user data folder belongs")
    assert invoke("fields", "--sandbox").exit_code == 0
    made = invoke("template", str(tmp_path / "form.xlsx"), "--sandbox")
    assert made.exit_code == 0, made.output
    assert (tmp_path / "form.xlsx").is_file()


def test_a_store_opened_before_the_file_was_made_sees_what_another_registers() -> None:
    with SandboxStore.open(store_path()) as early:
        waiting = Sandbox(SandboxConfig(rate=0, tokens=(TOKEN,)))
        early.attach(waiting)
        assert not store_path().exists()
        with SandboxStore.open(store_path()) as other:
            first = Sandbox(SandboxConfig(rate=0, tokens=(TOKEN,)))
            other.attach(first)
            assert create(first, "ann@example.com") == 201
        assert store_path().is_file()
        assert create(waiting, "ann@example.com") == 409
        assert create(waiting, "bob@example.com") == 201
        assert [entry["email"] for entry in waiting.registrants()] == [
            "ann@example.com",
            "bob@example.com",
        ]
    assert sorted(kept()) == ["ann@example.com", "bob@example.com"]
