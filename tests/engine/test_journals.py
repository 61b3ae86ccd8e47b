"""The journals of a folder: listed without a byte changed, removed whole or one person at a
time, nothing of a forgotten person left in the file, and a crash never leaving half."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from importer.engine import journals
from importer.engine.journal import Journal
from importer.model import Result, Status, Webinar
from tests.helpers import person

ORG = "111"
NOW = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)


def make(
    folder: Path,
    webinar: str = "222",
    *,
    people: int = 3,
    sending: int = 0,
    ends: str | None = "2027-01-15T17:00:00Z",
    subject: str = "Product launch",
) -> Path:
    """A journal in ``folder`` as a run leaves it: ``people`` registered, then ``sending`` more
    whose outcome is unknown; its webinar's last session ends at ``ends``."""
    path = folder / f"{ORG}-{webinar}.sqlite3"
    everyone = [person(i) for i in range(people + sending)]
    with Journal.open(path, organizer_key=ORG, webinar_key=webinar, locks=folder) as journal:
        journal.admit(everyone)
        for i, each in enumerate(everyone[:people]):
            url = f"https://global.gotowebinar.com/join/{webinar}/{i}secret"
            journal.settle(each, Result(each.line, Status.REGISTERED, f"{i}" * 19, url))
        for each in everyone[people:]:
            journal.sending(each, 0.0)
        times = ((ends, ends),) if ends else ()
        journal.remember(Webinar(webinar, subject, ends, "Europe/Berlin", times))
    return path


def everything_in(path: Path) -> bytes:
    """The bytes of the journal and of whatever SQLite keeps beside it."""
    found = [Path(f"{path}{ending}") for ending in ("", "-wal", "-shm", "-journal")]
    return b"".join(each.read_bytes() for each in found if each.exists())


def test_the_list_says_what_each_journal_holds_without_changing_a_byte(tmp_path: Path) -> None:
    path = make(tmp_path, people=3, sending=1)
    make(tmp_path, "333", people=1, ends=None, subject="Autumn")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    found = journals.survey(tmp_path)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before
    assert [(j.webinar, j.subject, j.people, j.unknown) for j in found] == [
        ("333", "Autumn", 1, 0),
        ("222", "Product launch", 4, 1),
    ]
    launch = found[1]
    assert launch.path == path
    assert launch.organizer == ORG
    assert launch.states == {"registered": 3, "sending": 1}
    assert launch.ends == dt.datetime(2027, 1, 15, 17, tzinfo=dt.UTC)
    assert launch.ended(NOW)
    assert launch.days_over(NOW) == pytest.approx(44.79, abs=0.01)
    assert found[0].ended(NOW) is None  # no run has recorded its times
    assert launch.size == path.stat().st_size
    assert launch.used is not None


def test_a_damaged_journal_is_listed_with_its_problem(tmp_path: Path) -> None:
    (tmp_path / f"{ORG}-444.sqlite3").write_bytes(b"not a database at all" * 100)
    [damaged] = journals.survey(tmp_path)
    assert damaged.webinar == "444"
    assert damaged.problem
    assert damaged.people == 0
    assert journals.survey(tmp_path / "no such folder") == []


def test_forgetting_a_person_leaves_nothing_of_them_in_the_file(tmp_path: Path) -> None:
    path = make(tmp_path, people=3)
    assert b"p1@example.com" in everything_in(path)
    [journal] = journals.survey(tmp_path)
    done = journals.forget(journal, ["p1@example.com"])
    assert done.people == ["p1@example.com"]
    assert done.kept is None
    left = everything_in(path)
    # the address, its registrant key and its join URL are gone from every byte on disk
    for trace in (b"p1@example.com", b"1111111111111111111", b"/1secret"):
        assert trace not in left
    assert b"p0@example.com" in left
    assert b"p2@example.com" in left
    [after] = journals.survey(tmp_path)
    assert after.states == {"registered": 2}


def test_a_person_of_unknown_outcome_is_kept_unless_forced(tmp_path: Path) -> None:
    make(tmp_path, people=1, sending=1)
    [journal] = journals.survey(tmp_path)
    kept = journals.forget(journal, ["p1@example.com"])
    assert kept.people == []
    assert kept.kept
    assert "registered twice" in kept.kept
    assert "--force" in kept.kept
    forced = journals.forget(journal, ["p1@example.com"], force=True)
    assert forced.people == ["p1@example.com"]
    assert forced.kept is None
    assert b"p1@example.com" not in everything_in(journal.path)


def test_removing_a_journal_removes_what_sqlite_keeps_beside_it(tmp_path: Path) -> None:
    path = make(tmp_path)
    Path(f"{path}-shm").write_bytes(b"\0" * 32)  # as a killed run leaves them
    Path(f"{path}-wal").write_bytes(b"")
    [journal] = journals.survey(tmp_path)
    assert journals.remove(journal).whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{ORG}-222.lock"]


def test_a_journal_of_unknown_outcome_or_in_use_is_kept(tmp_path: Path) -> None:
    make(tmp_path, people=1, sending=2)
    [journal] = journals.survey(tmp_path)
    kept = journals.remove(journal)
    assert not kept.whole
    assert kept.kept
    assert "2 people of unknown outcome" in kept.kept
    assert journal.path.exists()
    with Journal.open(journal.path, organizer_key=ORG, webinar_key="222", locks=tmp_path):
        busy = journals.remove(journal, force=True)
    assert not busy.whole
    assert busy.kept
    assert "another import" in busy.kept
    assert journals.remove(journal, force=True).whole
    assert not journal.path.exists()


def test_what_a_cut_short_removal_leaves_beside_a_journal_is_removed(tmp_path: Path) -> None:
    path = make(tmp_path, "555")
    orphan = tmp_path / f"{ORG}-222.sqlite3-wal"
    orphan.write_bytes(b"")
    Path(f"{path}-shm").write_bytes(b"")
    assert journals.leftovers(tmp_path) == 1
    assert not orphan.exists()
    assert Path(f"{path}-shm").exists()


#: run in a separate process: forget (or remove) with the process killed outright at the
#: n-th step, where a step is any SQL statement or file removal the journal makes
CRASH = textwrap.dedent(
    """
    import os, sqlite3, sys
    from pathlib import Path
    from importer.engine import journal as module, journals

    limit, mode, folder = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    steps = 0

    def step():
        global steps
        steps += 1
        if steps == limit:
            os._exit(9)

    class Connection:
        def __init__(self, real):
            self.real = real
        def execute(self, *args):
            step()
            return self.real.execute(*args)
        def executemany(self, *args):
            step()
            return self.real.executemany(*args)
        def __getattr__(self, name):
            return getattr(self.real, name)

    connect = sqlite3.connect
    module.sqlite3 = type(sys)("sqlite3")
    module.sqlite3.__dict__.update(sqlite3.__dict__)
    module.sqlite3.connect = lambda *a, **k: Connection(connect(*a, **k))
    unlink = Path.unlink
    def counted_unlink(self, *a, **k):
        step()
        return unlink(self, *a, **k)
    Path.unlink = counted_unlink

    [journal] = journals.survey(folder)
    if mode == "person":
        done = journals.forget(journal, ["p1@example.com"])
        assert done.people == ["p1@example.com"], done
    else:
        assert journals.remove(journal).whole
    print("finished", steps)
    """
)


@pytest.mark.parametrize("mode", ["person", "whole"])
def test_a_crash_at_any_step_of_forgetting_leaves_the_journal_whole_or_gone(
    tmp_path: Path, mode: str
) -> None:
    # each step needs a process killed at it: a real process per step, 20-30 in all
    limit = 1
    while True:
        folder = tmp_path / f"{mode}-{limit}"
        folder.mkdir()
        path = make(folder, people=3)
        run = subprocess.run(
            [sys.executable, "-c", CRASH, str(limit), mode, str(folder)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            timeout=60,
        )
        assert run.returncode in (0, 9), run.stderr
        found = journals.survey(folder)
        if mode == "whole" and not path.exists():
            assert found == []
        else:
            [journal] = found
            assert journal.problem is None
            emails = {"p0@example.com", "p2@example.com"}
            if journal.people == 3:  # whole: everyone, nothing half-removed
                emails.add("p1@example.com")
            else:
                assert journal.people == 2
                assert mode == "person"
                assert b"p1@example.com" not in everything_in(path) or run.returncode == 9
            assert set(journal.states_of(emails)) == emails
        if run.returncode == 0:
            break
        limit += 1
    assert limit > 3  # the run was really cut at several steps


def test_a_person_is_not_forgotten_while_another_program_reads_the_journal(
    tmp_path: Path,
) -> None:
    path = make(tmp_path, people=3)
    [journal] = journals.survey(tmp_path)
    reader = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM people").fetchone()  # holds a snapshot
        with Journal.open(path, organizer_key=ORG, webinar_key="222", locks=tmp_path) as opened:
            opened.admit([person(5)])  # a change since, in the write-ahead log
        kept = journals.forget(journal, ["p1@example.com"])
        assert kept.people == []
        assert kept.kept is not None
        assert "another program has the journal open" in kept.kept
        assert journal.states_of(["p1@example.com"]) == {"p1@example.com": "registered"}
    finally:
        reader.close()
    assert journals.forget(journal, ["p1@example.com"]).people == ["p1@example.com"]
    assert b"p1@example.com" not in everything_in(path)


def test_bytes_left_by_a_removal_that_could_not_rebuild_the_file_are_found_and_erased(
    tmp_path: Path,
) -> None:
    path = make(tmp_path, people=40)
    with contextlib.closing(sqlite3.connect(path)) as raw:  # no secure_delete, no rebuild
        raw.execute("PRAGMA secure_delete=OFF")
        raw.execute("DELETE FROM people WHERE email_key = 'p1@example.com'")
        raw.commit()
    [journal] = journals.survey(tmp_path)
    assert journal.states_of(["p1@example.com"]) == {}
    assert journal.traces(["p1@example.com", "p2@example.com"]) == {
        "p1@example.com",
        "p2@example.com",
    }
    assert b"p1@example.com" in everything_in(path)
    assert journals.forget(journal, (), traces=True).kept is None
    assert b"p1@example.com" not in everything_in(path)
    assert journal.traces(["p1@example.com", "p2@example.com"]) == {"p2@example.com"}


def test_only_the_tools_own_journals_are_listed_and_their_keys_come_from_their_names(
    tmp_path: Path,
) -> None:
    make(tmp_path, "555")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"{ORG}-666.sqlite3").symlink_to(make(elsewhere, "666"))
    (tmp_path / "notes.sqlite3").write_bytes(b"")
    (tmp_path / f"{ORG}-777.sqlite3").mkdir()
    lying = make(elsewhere, "888")
    with contextlib.closing(sqlite3.connect(lying)) as raw:
        raw.execute("UPDATE meta SET value = '../../../tmp/x' WHERE name = 'organizer'")
        raw.execute("UPDATE meta SET value = x'00ff' WHERE name = 'ends'")
        raw.commit()
    lying.rename(tmp_path / lying.name)
    found = {j.webinar: j for j in journals.survey(tmp_path)}
    assert sorted(found) == ["555", "888"]
    assert found["888"].organizer == ORG
    assert found["888"].problem is not None
    assert "another webinar" in found["888"].problem
    assert journals.remove(found["888"]).kept  # opened under the keys of its name: refused
    assert not (tmp_path.parent / "tmp").exists()


def test_a_journal_gone_before_it_is_forgotten_is_not_made_again(tmp_path: Path) -> None:
    path = make(tmp_path)
    [journal] = journals.survey(tmp_path)
    path.unlink()
    gone = journals.forget(journal, ["p1@example.com"])
    assert gone.kept is not None
    assert "gone already" in gone.kept
    assert not path.exists()
