"""The Python API: DataFrames and records in, the same outcome and report as the command."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

import importer
from importer.errors import (
    EXIT_API,
    EXIT_CODES,
    EXIT_ROWS,
    EXIT_STOPPED,
    InputError,
    ReportError,
)
from importer.goto.connection import Access
from importer.goto.oauth import Tokens
from importer.read.frames import text
from importer.sandbox import ORGANIZER_KEY, WEBINAR_KEY, WORKSHOP_KEY
from tests.helpers import TOKEN, ThreadedServer, people, write_csv


def frame() -> pd.DataFrame:
    """A DataFrame as a CRM export gives one: ints, gaps, phone numbers, a 19-digit key."""
    return pd.DataFrame(
        {
            "First Name": ["Ann", "Bo", "Cy", None],
            "Last Name": ["Lee", "Kim", "Orr", "Ng"],
            "E-Mail": ["ann@example.com", "bo@example.com", "cy@example.com", "di@example.com"],
            "Phone": ["0049 30 1234", "01234", None, "+44 20 7946"],
            "Headcount": [12, None, 300, 7],  # a float column: 12.0, NaN, 300.0, 7.0
            "Score": pd.array([1, pd.NA, 3, 4], dtype="Int64"),
            "Member id": pd.Series(
                [8325357307900339981, 1234567890123456789, None, 42],
                dtype=object,
                index=list("abcd"),
            ),
        },
        index=["a", "b", "c", "d"],
    )


def test_dataframe_values_become_the_text_a_person_typed() -> None:
    values = [text(v) for v in (12.0, math.nan, None, pd.NA, pd.NaT, True, 2**63 - 1, 0.5)]
    assert values == ["12", "", "", "", "", "TRUE", "9223372036854775807", "0.5"]
    outcome = importer.check(frame())
    assert outcome.exit_code == EXIT_ROWS  # row 5 has no first name
    problem = outcome.problems[0]
    assert (problem.line, problem.column) == (5, "First Name")
    report = outcome.to_pandas()
    assert list(report.index) == ["a", "b", "c", "d"]
    row = report.loc["a"]
    assert (row["Phone"], row["Headcount"], row["Score"]) == ("0049 30 1234", "12", "1")
    assert row["Member id"] == "8325357307900339981"
    assert report.loc["b"]["Phone"] == "01234"
    assert report.loc["b"]["Headcount"] == ""
    assert report.loc["b"]["Score"] == ""
    assert report.loc["c"]["Phone"] == ""
    assert "nan" not in report.to_string().lower()


def test_register_a_dataframe_on_the_sandbox_and_write_the_report(tmp_path: Path) -> None:
    seen: list[importer.ProgressReport] = []
    result = importer.register(frame().iloc[:3], sandbox=True, progress=seen.append)
    assert result.exit_code == 0
    assert result.counts == Counter({importer.Status.REGISTERED: 3})
    assert [row.line for row in result.rows] == [2, 3, 4]
    assert all(len(row.registrant_key or "") == 19 for row in result.rows)
    assert seen[-1].done == seen[-1].total == 3
    report = result.to_pandas()
    assert list(report.columns[:4]) == ["row", "firstName", "lastName", "email"]
    assert list(report["status"]) == ["registered"] * 3
    assert list(report["joinUrl"]) == [row.join_url for row in result.rows]
    written = result.write(tmp_path / "report.xlsx")
    sheet = load_workbook(written)["Registrants"]
    rows = list(sheet.iter_rows(values_only=True))
    assert [r[rows[0].index("joinUrl")] for r in rows[1:]] == list(report["joinUrl"])
    assert rows[1][rows[0].index("Member id")] == "8325357307900339981"
    csv_written = result.write(tmp_path / "report.csv")
    assert csv_written.read_bytes().startswith(b"\xef\xbb\xbf")


def test_rows_needing_attention_go_to_csv_or_xlsx_as_named(tmp_path: Path) -> None:
    outcome = importer.check(frame())
    as_csv = outcome.write_attention(tmp_path / "fix.csv")
    assert as_csv == tmp_path / "fix.csv"
    lines = as_csv.read_text(encoding="utf-8-sig").splitlines()
    # each row's line in the report first: the results of the fixed rows go back there
    assert lines[0].startswith("row,First Name,Last Name,E-Mail,")
    assert lines[0].endswith(",error")
    assert len(lines) == 2
    assert "di@example.com" in lines[1]
    again = importer.check(as_csv)
    assert [(p.line, p.column) for p in again.problems] == [(2, "First Name")]
    as_xlsx = outcome.write_attention(tmp_path / "fix.xlsx")
    assert as_xlsx is not None
    assert load_workbook(as_xlsx).sheetnames == ["Needs attention"]
    with pytest.raises(ReportError, match=r"fix\.txt: the rows needing attention go to an"):
        outcome.write_attention(tmp_path / "fix.txt")


def test_records_and_several_webinars() -> None:
    records = [
        {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.com", "Your role?": "Other"},
        {"firstName": "Bo", "lastName": "Kim", "email": "bo@example.com", "Your role?": "x"},
    ]
    result = importer.register(records, [WEBINAR_KEY, WORKSHOP_KEY], sandbox=True)
    statuses = [(row.line, row.webinar_key, row.status.value) for row in result.rows]
    assert statuses == [
        (2, WEBINAR_KEY, "registered"),
        (2, WORKSHOP_KEY, "registered"),
        (3, WEBINAR_KEY, "registered"),
        (3, WORKSHOP_KEY, "invalid"),
    ]
    assert result.exit_code == EXIT_ROWS


def test_register_works_inside_a_running_event_loop() -> None:
    async def in_a_notebook() -> importer.Outcome:
        return importer.register(frame().iloc[:2], sandbox=True)

    outcome = asyncio.run(in_a_notebook())
    assert outcome.counts[importer.Status.REGISTERED] == 2

    async def awaited() -> importer.Outcome:
        return await importer.register_async(frame().iloc[:2], sandbox=True)

    assert asyncio.run(awaited()).exit_code == 0


def test_two_calls_do_not_share_state(
    loopback_sandbox: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(3))
    first = importer.register(
        source,
        WEBINAR_KEY,
        token=TOKEN,
        organizer_key=ORGANIZER_KEY,
        api_url=server.api_url,
    )
    refused = loopback_sandbox(rate=0, token_calls=0)
    second = importer.register(
        source,
        WEBINAR_KEY,
        token=TOKEN,
        organizer_key=ORGANIZER_KEY,
        api_url=refused.api_url,
        journal=tmp_path / "other.sqlite3",
    )
    assert first.exit_code == 0
    assert second.exit_code == EXIT_API
    assert second.counts == Counter({importer.Status.PENDING: 3})
    again = importer.register(
        source,
        WEBINAR_KEY,
        token=TOKEN,
        organizer_key=ORGANIZER_KEY,
        api_url=server.api_url,
    )
    assert again.counts == Counter({importer.Status.REGISTERED: 3})  # from its own journal
    assert len(server.sandbox.registrants()) == 3


def test_unusable_input_raises_with_the_exit_code() -> None:
    with pytest.raises(InputError, match="no e-mail column") as caught:
        importer.check(pd.DataFrame({"name": ["Ann"]}))
    assert caught.value.exit_code == 2
    with pytest.raises(InputError, match="give a file path, a pandas DataFrame"):
        importer.check(42)


def test_every_exit_code_is_documented_in_help_and_readme() -> None:
    from click.testing import CliRunner

    from importer.cli import cli

    shown = CliRunner().invoke(cli, ["register", "--help"]).output
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for code, meaning in EXIT_CODES:
        assert f"  {code:<4} {meaning}" in shown
        assert f"| {code} |" in readme
    assert EXIT_STOPPED == 3


def test_not_signed_in_says_what_to_do_in_python(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    with pytest.raises(importer.NotSignedIn) as refused:
        importer.register(source, webinar_key=WEBINAR_KEY)
    message = str(refused.value)
    assert "pass token=" in message
    assert "--token-file" not in message  # a flag of the command line, not of Python
    assert refused.value.exit_code == 2


def guests(count: int, start: int = 0) -> pd.DataFrame:
    """People the sandbox has never seen, indexed by a CRM's own ids."""
    return pd.DataFrame(
        {
            "firstName": [f"Guest{i}" for i in range(start, start + count)],
            "lastName": ["Api"] * count,
            "email": [f"guest{i}@api.example.com" for i in range(start, start + count)],
        },
        index=[f"crm-{i}" for i in range(start, start + count)],
    )


def test_export_undo_and_cancel_take_and_give_dataframes(tmp_path: Path) -> None:
    registered = importer.register(guests(5), sandbox=True)
    assert registered.exit_code == 0
    urls = {f"guest{row.line - 2}@api.example.com": row.join_url for row in registered.rows}

    listed = importer.export(sandbox=True, answers=False)
    assert listed.exit_code == 0
    frame_out = listed.to_pandas()
    mine = frame_out[frame_out["email"].isin(list(urls))]
    assert dict(zip(mine["email"], mine["joinUrl"], strict=True)) == urls

    merged = importer.export(sandbox=True, merge=guests(6)).to_pandas()  # one not registered
    assert list(merged.index) == [f"crm-{i}" for i in range(6)]
    assert list(merged["joinUrl"])[:5] == [urls[f"guest{i}@api.example.com"] for i in range(5)]
    assert merged.loc["crm-5", "status"] == "not_registered"

    seen: list[importer.ProgressReport] = []
    undone = importer.undo(source=guests(2), sandbox=True, progress=seen.append)
    assert undone.exit_code == 0
    assert undone.counts == Counter({importer.Cancellation.CANCELLED: 2})
    assert seen[-1].counts == Counter({"cancelled": 2})
    report = undone.to_pandas()
    assert list(report.index) == ["crm-0", "crm-1"]
    assert list(report["status"]) == ["cancelled", "cancelled"]
    written = undone.write(tmp_path / "undone.xlsx")
    assert written == tmp_path / "undone.xlsx"
    rows = list(load_workbook(written)["Registrants"].iter_rows(values_only=True))
    assert [row[rows[0].index("status")] for row in rows[1:]] == ["cancelled", "cancelled"]

    # cancel matches by e-mail: the two undone are known to the journal as cancelled already
    cancelled = importer.cancel(guests(4), sandbox=True)
    assert cancelled.exit_code == 0
    assert cancelled.counts == Counter({importer.Cancellation.CANCELLED: 4})
    assert [row.before for row in cancelled.rows] == [True, True, False, False]
    assert cancelled.summary() == "2 cancelled (2 were cancelled already)"
    nobody = importer.cancel(pd.DataFrame({"email": ["nobody@api.example.com"]}), sandbox=True)
    assert nobody.exit_code == EXIT_ROWS
    assert nobody.summary() == "1 not registered (nobody@api.example.com)"
    left = importer.export(sandbox=True, answers=False).to_pandas()
    assert set(left["email"]) & set(urls) == {"guest4@api.example.com"}


def test_a_dry_run_of_undo_changes_nothing_and_an_unknown_argument_is_refused() -> None:
    importer.register(guests(2, start=10), sandbox=True)
    planned = importer.undo(sandbox=True, dry_run=True)
    assert planned.exit_code == 0
    assert planned.dry_run
    assert planned.counts[importer.Cancellation.PENDING] >= 2  # what would be cancelled
    still = importer.export(sandbox=True, answers=False).to_pandas()
    assert {"guest10@api.example.com", "guest11@api.example.com"} <= set(still["email"])
    with pytest.raises(TypeError, match="sandbx"):
        importer.export(sandbx=True)  # type: ignore[call-arg]


def test_undo_without_a_journal_says_so() -> None:
    with pytest.raises(importer.UsageError, match="no journal of webinar"):
        importer.undo(WORKSHOP_KEY, sandbox=True)


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda: importer.export(8325357307900339981, sandbox=True), "webinar_key must be"),
        (lambda: importer.undo(guests(1), sandbox=True), "the people go in source="),
        (lambda: importer.cancel(guests(1), sandbox=True, stop=True), "stop= is an"),
        (lambda: importer.cancel(guests(1), sandbox=True, progress="yes"), "progress= is"),
    ],
)
def test_arguments_of_the_wrong_kind_are_refused_before_anything_is_done(
    call: Callable[[], object], said: str
) -> None:
    with pytest.raises(TypeError, match=said):
        call()


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"rate": 0}, "the rate \\(calls a second\\) must be a number from 0.1 to 1000, not 0"),
        ({"rate": math.nan}, "the rate"),
        ({"timeout": 0}, "the timeout \\(seconds\\) must be a number of 1 or more"),
        ({"max_calls": -1}, "max_calls must be a whole number of 1 or more, not -1"),
        ({"concurrency": 2.5}, "the concurrency must be a whole number"),
    ],
)
def test_a_pace_that_cannot_be_kept_is_a_usage_error(given: dict[str, float], said: str) -> None:
    with pytest.raises(importer.UsageError, match=said) as caught:
        importer.cancel(guests(1), sandbox=True, **given)  # type: ignore[arg-type]
    assert caught.value.exit_code == 2


def test_a_token_is_never_in_a_repr() -> None:
    secret = "sekrit-token-value"
    assert secret not in repr(Access(token=secret))
    assert secret not in repr(Tokens(secret, secret, 3600.0, None, None))
