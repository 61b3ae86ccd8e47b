"""Forgetting on request and expiry: which journals a choice takes, the virtual clock of
expiry, and journals kept for rows of unknown outcome."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from importer.engine.journals import survey
from importer.errors import UsageError
from importer.jobs import journals as keeping
from tests.engine.test_journals import NOW, make

DAY = dt.timedelta(days=1)


def at(days_after: float) -> dt.datetime:
    """The clock ``days_after`` days after the webinar of :func:`make` ended."""
    return dt.datetime(2027, 1, 15, 17, tzinfo=dt.UTC) + days_after * DAY


def test_a_choice_is_made_one_way(journals_folder: Path) -> None:
    with pytest.raises(UsageError, match="say what to forget"):
        keeping.Choice()
    with pytest.raises(UsageError, match="one way"):
        keeping.Choice(webinar_keys=("1",), everything=True)
    keeping.Choice(emails=("a@b.c",))  # from every journal
    keeping.Choice(webinar_keys=("1",), emails=("a@b.c",))  # from that one


def test_journals_are_chosen_by_webinar_by_end_or_all(journals_folder: Path) -> None:
    make(journals_folder, "201", ends="2027-01-15T17:00:00Z")
    make(journals_folder, "202", ends="2027-02-20T17:00:00Z")
    make(journals_folder, "203", ends=None)  # its times not known yet: never "over"

    def whole(choice: keeping.Choice, now: dt.datetime = NOW) -> list[str]:
        planned = keeping.plan(choice, journals_folder, now)
        assert not planned.people
        assert not planned.kept
        return sorted(j.webinar for j in planned.whole)

    assert whole(keeping.Choice(webinar_keys=("202",))) == ["202"]
    assert whole(keeping.Choice(ended_days=30)) == ["201"]  # 44.8 and 8.8 days over
    assert whole(keeping.Choice(ended_days=0)) == ["201", "202"]
    assert whole(keeping.Choice(ended_days=0), at(-1)) == []
    assert whole(keeping.Choice(everything=True)) == ["201", "202", "203"]
    missing = keeping.plan(keeping.Choice(webinar_keys=("202", "999")), journals_folder, NOW)
    assert missing.missing == ["webinar 999"]


def test_one_person_is_forgotten_from_every_journal_that_holds_them(journals_folder: Path) -> None:
    make(journals_folder, "201", people=3)
    make(journals_folder, "202", people=1)
    make(journals_folder, "203", people=2, sending=1)  # p2 of unknown outcome there
    planned = keeping.plan(
        keeping.Choice(emails=("P2@Example.com", "P0@example.com", "nobody@example.com")),
        journals_folder,
    )
    assert [(j.webinar, keys) for j, keys in planned.people] == [
        ("201", ["p2@example.com", "p0@example.com"]),
        ("202", ["p0@example.com"]),
        ("203", ["p0@example.com"]),
    ]
    [(kept, why)] = planned.kept
    assert kept.webinar == "203"
    assert why.startswith("P2@Example.com: 1 person of unknown")
    assert planned.missing == ["nobody@example.com"]
    done = keeping.carry_out(planned)
    assert [d.people for d in done] == [
        ["p0@example.com", "p2@example.com"],
        ["p0@example.com"],
        ["p0@example.com"],
    ]
    assert {j.webinar: j.people for j in survey(journals_folder)} == {"201": 1, "202": 0, "203": 2}


def test_a_whole_journal_of_unknown_outcome_is_kept_unless_forced(journals_folder: Path) -> None:
    make(journals_folder, "201", sending=1)
    planned = keeping.plan(keeping.Choice(everything=True), journals_folder)
    assert planned.empty
    assert "1 person of unknown outcome" in planned.kept[0][1]
    forced = keeping.plan(keeping.Choice(everything=True, force=True), journals_folder)
    assert [d.whole for d in keeping.carry_out(forced)] == [True]
    assert survey(journals_folder) == []


def test_expiry_removes_journals_over_for_longer_than_the_days_kept(journals_folder: Path) -> None:
    make(journals_folder, "201", ends="2027-01-15T17:00:00Z")
    make(journals_folder, "202", ends="2027-01-15T17:00:00Z", sending=1)
    make(journals_folder, "203", ends="2027-02-10T17:00:00Z")
    make(journals_folder, "204", ends=None)
    sandbox = keeping.folder(sandbox=True)
    sandbox.mkdir(parents=True)
    make(sandbox, "205", ends="2027-01-15T17:00:00Z")

    assert keeping.expire(30, at(29.9)).removed == []  # not yet
    assert keeping.expire(0, at(400)).removed == []  # 0: kept for ever
    done = keeping.expire(30, at(30.1))
    assert sorted(j.webinar for j in done.removed) == ["201", "205"]
    assert [(j.webinar, "unknown outcome" in why) for j, why in done.kept] == [("202", True)]
    assert sorted(j.webinar for j in survey(journals_folder)) == ["202", "203", "204"]
    again = keeping.expire(30, at(400))
    assert [j.webinar for j in again.removed] == ["203"]  # 204's end is not known


def test_days_kept_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert keeping.keep_days(None) == keeping.keep_days(" ") == 30
    assert keeping.keep_days("0") == 0
    assert keeping.keep_days(" 90 ") == 90
    assert keeping.keep_days("36500") == 36_500
    for wrong in ("-1", "thirty", "1.5", "36501", "1" + "0" * 305):
        with pytest.raises(UsageError, match="G2W_KEEP_DAYS"):
            keeping.keep_days(wrong)
    monkeypatch.setenv("G2W_KEEP_DAYS", "7")
    assert keeping.keep_days_from_environment() == 7


def test_the_pages_copies_holding_a_person_are_forgotten_with_them(journals_folder: Path) -> None:
    from openpyxl import Workbook

    uploads = keeping.page_folder() / "uploads"
    holding, other = uploads / "20270101-a", uploads / "20270102-b"
    for each in (holding, other):
        each.mkdir(parents=True)
    (holding / "guests.csv").write_text("First,Last,Email\nAda,L,Ada@Example.com\n")
    (holding / "guests-joinurls.xlsx").write_bytes(b"")
    (other / "guests.csv").write_text("First,Last,Email\nBob,M,bob@example.com\n", "utf-16")
    exported = keeping.page_folder() / "exports" / "Launch-registrants.xlsx"
    exported.parent.mkdir()
    book = Workbook()
    book.active.append(["email"])
    book.active.append(["ada@example.com"])
    book.save(exported)
    planned = keeping.plan(keeping.Choice(emails=("ADA@example.com",)), journals_folder)
    assert planned.copies == [holding, exported]
    assert planned.missing == []  # no journal holds her, but the page's copies did
    keeping.carry_out(planned)
    assert not holding.exists()
    assert not exported.exists()
    assert (other / "guests.csv").exists()
    utf16 = keeping.plan(keeping.Choice(emails=("bob@example.com",)), journals_folder)
    assert utf16.copies == [other]  # a CSV saved by Excel as "Unicode text"


def test_a_journal_that_cannot_be_read_is_never_said_not_to_hold_someone(
    journals_folder: Path,
) -> None:
    make(journals_folder, "201")
    (journals_folder / "111-202.sqlite3").write_bytes(b"damaged" * 1000)
    planned = keeping.plan(
        keeping.Choice(emails=("p0@example.com", "x@example.com")), journals_folder
    )
    assert [j.webinar for j, _ in planned.people] == ["201"]
    [(damaged, why)] = planned.kept
    assert damaged.webinar == "202"
    assert why.startswith("cannot be read (")
    assert why.endswith("nothing removed from it")
    assert planned.missing == []  # the damaged one may hold x@example.com


def test_expiry_spares_the_webinar_a_command_names(journals_folder: Path) -> None:
    make(journals_folder, "201", ends="2027-01-15T17:00:00Z")
    make(journals_folder, "202", ends="2027-01-15T17:00:00Z")
    done = keeping.expire(30, at(31), spare=("202",))
    assert [j.webinar for j in done.removed] == ["201"]
    assert [j.webinar for j in survey(journals_folder)] == ["202"]
