"""The journal: states, resume decisions, reconciliation, the lock."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import stat
from pathlib import Path

import pytest

from importer.engine.journal import SCHEMA_VERSION, Journal, State
from importer.errors import JournalError
from importer.goto.provenance import ServerClock
from importer.model import ListedRegistrant, Result, Status
from tests.helpers import person, posix_only

ORG, WEB = "111", "222"


def open_journal(path: Path) -> Journal:
    return Journal.open(path, organizer_key=ORG, webinar_key=WEB)


def test_settled_rows_are_not_sent_again_and_keep_their_answer(tmp_path: Path) -> None:
    people = [person(i) for i in range(4)]
    with open_journal(tmp_path / "j.sqlite3") as journal:
        assert [p.line for p in journal.admit(people).to_send] == [2, 3, 4, 5]
        journal.sending(people[0])
        journal.settle(people[0], Result(2, Status.REGISTERED, "9" * 19, "https://j/0"))
        journal.sending(people[1])  # killed here: outcome unknown
        journal.settle(people[2], Result(4, Status.FAILED, error="Invalid phone"))
        journal.settle(people[3], Result(5, Status.FAILED, error="gave up", retryable=True))
    with open_journal(tmp_path / "j.sqlite3") as journal:
        admission = journal.admit(people)
    assert admission.settled == {
        2: Result(2, Status.REGISTERED, "9" * 19, "https://j/0"),
        4: Result(4, Status.FAILED, error="Invalid phone"),
    }
    assert [p.line for p in admission.to_send] == [3, 5]


def test_a_refused_row_is_sent_again_once_it_changed(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j.sqlite3") as journal:
        journal.admit([person(0, "Acme")])
        journal.settle(person(0, "Acme"), Result(2, Status.FAILED, error="Invalid company"))
        assert journal.admit([person(0, "Acme")]).to_send == []
        assert journal.admit([person(0, "Acme GmbH")]).to_send == [person(0, "Acme GmbH")]


def test_reconciliation_settles_from_the_registrant_list(tmp_path: Path) -> None:
    people = [person(i) for i in range(4)]
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).isoformat()
    with open_journal(tmp_path / "j.sqlite3") as journal:
        journal.admit(people)
        journal.sending(people[0], 0.0)  # sent, answer lost, found in the list: registered after
        journal.sending(people[1], 0.0)  # sent, never arrived
        journal.sending(people[3], 0.0)  # sent, but registered long before the call: not ours
        listed = {
            "p0@example.com": ListedRegistrant(
                "1" * 19, "p0@example.com", "https://j/0", None, registered_at=later
            ),
            "p2@example.com": ListedRegistrant("2" * 19, "p2@example.com", "https://j/2", None),
            "p3@example.com": ListedRegistrant(
                "3" * 19, "p3@example.com", "https://j/3", None, registered_at="2020-01-01T10:00Z"
            ),
        }  # registered elsewhere
        clock = ServerClock()
        clock.low, clock.high = 0.0, 1.0  # GoTo's clock and this computer's agree
        still, found = journal.reconcile(people, listed, clock)
        assert still == [people[1]]
        assert found == {
            2: Result(2, Status.REGISTERED, "1" * 19, "https://j/0"),
            4: Result(4, Status.ALREADY_REGISTERED, "2" * 19, "https://j/2"),
            5: Result(5, Status.ALREADY_REGISTERED, "3" * 19, "https://j/3"),
        }
        assert [p.line for p in journal.admit(people).to_send] == [3]
        assert journal.entries()["p3@example.com"].state == State.ALREADY_REGISTERED


@posix_only
def test_one_run_at_a_time_and_private_files(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with (
        open_journal(path),
        pytest.raises(JournalError, match="another import for this webinar is running"),
    ):
        open_journal(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with open_journal(path):
        pass


def test_a_journal_of_another_webinar_or_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with open_journal(path):
        pass
    with pytest.raises(JournalError, match="belongs to webinar 222 of organizer 111"):
        Journal.open(path, organizer_key=ORG, webinar_key="333")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="is not a usable journal"):
        open_journal(junk)


def states_on_disk(path: Path) -> dict[str, str]:
    """The states another process would read: only what is committed."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        return dict(other.execute("SELECT email_key, state FROM people").fetchall())


def test_staged_writes_reach_the_disk_together_when_committed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    people = [person(i) for i in range(3)]
    with open_journal(path) as journal:
        journal.admit(people)
        first = journal.stage_sending(people[0])
        second = journal.stage_sending(people[1])
        assert first == second  # one batch
        assert set(states_on_disk(path).values()) == {"todo"}
        journal.commit(first)
        assert states_on_disk(path) == {
            "p0@example.com": "sending",
            "p1@example.com": "sending",
            "p2@example.com": "todo",
        }
        journal.stage_settled(people[0], Result(2, Status.REGISTERED, "9" * 19, "https://j/0"))
        journal.commit(first)  # that batch is on disk already: nothing to do
        assert states_on_disk(path)["p0@example.com"] == "sending"
        later = journal.stage_sending(people[2])
        assert later == first + 1
        journal.commit(later)
        assert states_on_disk(path) == {
            "p0@example.com": "registered",
            "p1@example.com": "sending",
            "p2@example.com": "sending",
        }
        journal.stage_settled(people[1], Result(3, Status.FAILED, error="Invalid phone"))
    assert states_on_disk(path)["p1@example.com"] == "failed"  # closing commits what is staged


def test_a_journal_missing_columns_of_its_own_version_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with sqlite3.connect(path) as db:  # as an earlier build of the same version wrote it
        db.executescript(
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE people (email_key TEXT PRIMARY KEY, email TEXT NOT NULL, line "
            "INTEGER NOT NULL, state TEXT NOT NULL, registrant_key TEXT, join_url TEXT, error "
            "TEXT, retry INTEGER NOT NULL DEFAULT 0, body_hash TEXT NOT NULL, updated TEXT NOT "
            "NULL, approval TEXT, prior TEXT, sent_at REAL);"
        )
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema", SCHEMA_VERSION), ("organizer", ORG), ("webinar", WEB)],
        )
    db.close()
    with open_journal(path) as journal:
        journal.admit([person(0)])
        journal.sending(person(0), 1.5)
        assert journal.entries()["p0@example.com"].clock_low == 1.5
