"""The template, the webinar's own fields and questions, several webinars, the review report."""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from importer.report import template
from importer.sandbox import KICKOFF_KEY, ORGANIZER_KEY, SUMMIT_KEY, WEBINAR_KEY, WORKSHOP_KEY
from tests import helpers
from tests.helpers import TOKEN, ThreadedServer, people, sheet_rows, write_csv

ROOT = Path(__file__).parents[2]
ENV = {"G2W_ACCESS_TOKEN": TOKEN, "G2W_ORGANIZER_KEY": ORGANIZER_KEY}
invoke = functools.partial(helpers.invoke, env=ENV)


def describe_workbook(path: Path) -> dict[str, Any]:
    """Everything about a workbook that a person filling it in would see or feel."""
    book = load_workbook(path)
    described: dict[str, Any] = {"sheets": book.sheetnames}
    for sheet in book.worksheets:
        described[sheet.title] = {
            "state": sheet.sheet_state,
            "freeze": sheet.freeze_panes,
            "cells": [
                (c.coordinate, c.value, c.number_format, bool(c.font.b))
                for row in sheet.iter_rows()
                for c in row
                if c.value is not None or c.number_format != "General"
            ],
            "validations": sorted(
                (v.type, v.formula1, str(v.sqref)) for v in sheet.data_validations.dataValidation
            ),
            "widths": {k: d.width for k, d in sheet.column_dimensions.items()},
        }
    return described


def test_committed_template_is_what_the_code_builds(tmp_path: Path) -> None:
    template.build(tmp_path / "registrants.xlsx")
    assert describe_workbook(tmp_path / "registrants.xlsx") == describe_workbook(
        ROOT / "templates" / "registrants.xlsx"
    )


def test_template_layout_and_no_place_for_a_token() -> None:
    book = load_workbook(ROOT / "templates" / "registrants.xlsx")
    assert book.sheetnames == ["Registrants", "Settings", "Instructions"]
    headers = [cell.value for cell in book["Registrants"][1]]
    assert headers[:3] == ["firstName *", "lastName *", "email *"]
    assert "phone" in headers
    assert "zipCode" in headers
    phone = headers.index("phone") + 1
    assert book["Registrants"].cell(row=2, column=phone).number_format == "@"
    assert book["Registrants"].freeze_panes == "A2"
    settings = {row[0]: row[1] for row in book["Settings"].iter_rows(values_only=True)}
    assert not settings["webinarKey"]
    assert book["Settings"]["B2"].number_format == "@"
    assert not any("token" in str(name).lower() for name in settings)
    email = book["Registrants"].data_validations.dataValidation
    assert any(v.type == "custom" and 'FIND("@"' in v.formula1 for v in email)


def test_template_command_writes_and_will_not_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "mine.xlsx"
    assert invoke("template", str(path)).exit_code == 0
    again = invoke("template", str(path))
    assert again.exit_code == 2
    assert "already exists; choose another name, or add --force" in again.stderr
    assert invoke("template", str(path), "--force").exit_code == 0


def test_webinar_aware_template_has_question_columns_and_drop_downs(tmp_path: Path) -> None:
    path = tmp_path / "workshop.xlsx"
    result = invoke("template", str(path), "--sandbox", "--webinar-key", WORKSHOP_KEY)
    assert result.exit_code == 0, result.output
    assert (
        "Template for 'Customer workshop (sandbox)' (4617712963571298411): 16 fields and 2 "
        "custom questions." in result.stderr
    )
    book = load_workbook(path)
    headers = [cell.value for cell in book["Registrants"][1]]
    assert headers[-2:] == ["Your role? *", "What do you hope to learn?"]
    lists = {
        v.formula1 for v in book["Registrants"].data_validations.dataValidation if v.type == "list"
    }
    assert '"Developer,Marketing,Management,Other"' in lists
    assert any("1-20" in formula for formula in lists)  # numberOfEmployees has fixed answers
    assert book["Settings"]["B2"].value == WORKSHOP_KEY
    steps = "\n".join(str(row[0]) for row in book["Instructions"].iter_rows(values_only=True))
    assert "already names the webinar 'Customer workshop (sandbox)' (4617712963571298411)" in steps
    assert "paste the webinar key" not in steps
    assert "g2w-import register workshop.xlsx --sandbox" in steps  # made with --sandbox
    assert "workshop-needs-attention.xlsx" in steps

    plain = tmp_path / "my guests.xlsx"
    assert invoke("template", str(plain)).exit_code == 0
    sheet = load_workbook(plain)["Instructions"]
    steps = "\n".join(str(row[0]) for row in sheet.iter_rows(values_only=True))
    assert "paste the webinar key" in steps
    assert 'g2w-import register "my guests.xlsx"' in steps
    assert "(my guests-joinurls.xlsx)" in steps


def test_fields_command_as_a_table_and_as_json() -> None:
    table = invoke("fields", "--sandbox", "--webinar-key", WORKSHOP_KEY)
    assert table.exit_code == 0
    assert "Customer workshop (sandbox) (webinar 4617712963571298411)" in table.stdout
    assert "Your role?" in table.stdout
    assert "Developer, Marketing, Management, Other" in table.stdout
    data = json.loads(invoke("fields", "--sandbox", "--webinar-key", WORKSHOP_KEY, "--json").stdout)
    role = data["questions"][0]
    assert (role["question"], role["required"], role["type"]) == (
        "Your role?",
        True,
        "multipleChoice",
    )
    assert role["answers"][1] == {"answerKey": "9002", "answer": "Marketing"}


def filled_workshop(tmp_path: Path) -> Path:
    path = tmp_path / "workshop.xlsx"
    shutil.copy(ROOT / "samples" / "workshop.xlsx", path)
    return path


def test_filled_template_round_trips_with_custom_answers(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    path = filled_workshop(tmp_path)
    result = invoke("register", str(path), "--api-url", server.api_url)  # key from Settings
    assert result.exit_code == 0, result.output
    sent = {entry["email"]: entry for entry in server.sandbox.registrants(WORKSHOP_KEY)}
    rows = [row for row in sheet_rows(path) if row["email *"]]
    assert len(sent) == len(rows) == 12
    answer_keys = {"developer": 9001, "marketing": 9002, "management": 9003, "other": 9004}
    for row in rows:
        responses = {r["questionKey"]: r for r in sent[row["email *"]]["responses"]}
        role = responses[7001]
        assert role == {"questionKey": 7001, "answerKey": answer_keys[row["Your role? *"].lower()]}
        hope = row["What do you hope to learn?"]
        if hope:
            assert responses[7002] == {"questionKey": 7002, "responseText": hope}
        else:
            assert 7002 not in responses


def test_a_wrong_answer_is_refused_before_any_call(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    path = filled_workshop(tmp_path)
    book = load_workbook(path)
    headers = [cell.value for cell in book["Registrants"][1]]
    book["Registrants"].cell(row=3, column=headers.index("Your role? *") + 1, value="Astronaut")
    book.save(path)
    result = invoke("register", str(path), "--api-url", server.api_url)
    assert result.exit_code == 1
    assert (
        "row 3, Your role?: 'Astronaut' is not one of the answers; choose Developer, "
        "Marketing, Management, Other"
    ) in result.stderr
    assert server.sandbox.stats["created"] == 11


def test_a_missing_required_question_column_is_refused(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(2))
    result = invoke(
        "register", str(source), "--api-url", server.api_url, "--webinar-key", WORKSHOP_KEY
    )
    assert result.exit_code == 2
    assert "no 'Your role?' column" in result.stderr
    assert server.sandbox.stats["created"] == 0


def test_the_old_curl_workbook_is_read_and_its_token_never_used(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    canary = "LEGACY-CANARY-7c1d2e"
    book = Workbook()
    sheet = book.active
    sheet.append(["access_token", canary])
    sheet.append(["organizer_key", ORGANIZER_KEY])
    sheet.append(["webinarKey", WEBINAR_KEY])
    sheet.append([])
    sheet.append(["firstName", "lastName", "email", "Curl commands"])
    for first, last, email in people(3)[1:]:
        curl = f'curl -H "Authorization: {canary}" -d "{email}" https://api.getgo.com/...'
        sheet.append([first, last, email, curl])
    path = tmp_path / "old.xlsx"
    book.save(path)
    result = invoke(
        "register",
        str(path),
        "--api-url",
        server.api_url,
        env={"G2W_ACCESS_TOKEN": TOKEN},
    )
    assert result.exit_code == 0, result.output
    assert "holds an access token near the top; it is not used" in result.stderr
    assert len(server.sandbox.registrants()) == 3
    assert canary not in result.output
    for written in tmp_path.rglob("*"):
        if written.is_file() and written != path:
            assert canary.encode() not in written.read_bytes(), written
    assert "Curl commands" not in sheet_rows(tmp_path / "old-joinurls.xlsx")[0]


def test_review_report_has_a_summary_colours_links_and_a_file_to_fix(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = [*people(3), ["Bo", "", "bo@example.com"], ["Cy", "Orr", "PERSON0@example.com"]]
    source = write_csv(tmp_path / "guests.csv", rows)
    result = invoke(
        "register", str(source), "--api-url", server.api_url, "--webinar-key", WEBINAR_KEY
    )
    assert result.exit_code == 1
    report = tmp_path / "guests-joinurls.xlsx"
    book = load_workbook(report)
    assert book.sheetnames == ["Summary", "Registrants"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=3, values_only=True)}
    assert summary["Webinar"].startswith(f"Product launch (sandbox) ({WEBINAR_KEY}, starts ")
    assert summary["Registered"] == 3  # numbers, not text
    assert summary["Invalid"] == 1
    assert summary["Input file"] == str(source)
    assert "guests-needs-attention.xlsx" in summary["Needs attention"]
    sheet = book["Registrants"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref
    fills = [row[0].fill.fgColor.rgb[-6:] for row in sheet.iter_rows(min_row=2)]
    assert fills == ["C6EFCE"] * 3 + ["FFC7CE"] * 2
    link = [cell.value for cell in sheet[1]].index("joinUrl")
    assert sheet.cell(row=2, column=link + 1).hyperlink is not None
    assert all(c.data_type != "f" for s in book.worksheets for r in s.iter_rows() for c in r)
    fix = load_workbook(tmp_path / "guests-needs-attention.xlsx")["Needs attention"]
    cells = [[cell.value or "" for cell in row] for row in fix.iter_rows()]
    assert cells[0] == ["row", "firstName", "lastName", "email", "webinarKey", "error"]
    assert cells[1][1:5] == ["Bo", "", "bo@example.com", WEBINAR_KEY]
    assert cells[1][5].startswith("lastName: is empty")
    assert len(cells) == 2  # the repeated e-mail has nothing to fix: not sent again from here
    # the key is text: Excel keeps all 19 digits when the file is corrected and saved
    assert all(row[4].data_type == "s" for row in fix.iter_rows(min_row=2))


@pytest.mark.parametrize("how", ["options", "column"])
def test_several_webinars_in_one_run(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer], how: str
) -> None:
    server = loopback_sandbox(rate=0)
    rows = [["firstName", "lastName", "email", "Your role?", "webinarKey"]]
    rows += [[f"F{i}", f"L{i}", f"p{i}@example.com", "Other", ""] for i in range(4)]
    if how == "column":
        rows[1][4] = rows[2][4] = WORKSHOP_KEY
        rows[3][4] = rows[4][4] = WEBINAR_KEY
        extra: list[str] = []
    else:
        extra = ["--webinar-key", WEBINAR_KEY, "--webinar-key", WORKSHOP_KEY]
    source = write_csv(tmp_path / "guests.csv", rows)
    result = invoke("register", str(source), "--api-url", server.api_url, *extra)
    assert result.exit_code == 0, result.output
    report = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    per_webinar = Counter(row["webinarKey"] for row in report)
    if how == "column":
        assert "webinarKey" not in report[0] or len(per_webinar) == 2
        assert len(server.sandbox.registrants(WORKSHOP_KEY)) == 2
        assert len(server.sandbox.registrants(WEBINAR_KEY)) == 2
    else:
        assert per_webinar == {WEBINAR_KEY: 4, WORKSHOP_KEY: 4}
        assert [row["row"] for row in report] == [2, 2, 3, 3, 4, 4, 5, 5]
        assert len(server.sandbox.registrants(WORKSHOP_KEY)) == 4
        assert len(server.sandbox.registrants(WEBINAR_KEY)) == 4


def test_webinars_lists_keys_subjects_and_starts() -> None:
    table = invoke("webinars", "--sandbox")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["key", "starts", "type", "places", "approval", "subject"]
    summit = next(line for line in lines if line.startswith(SUMMIT_KEY))
    assert " by hand " in summit  # the organizer approves each registrant
    assert lines[2].startswith(WEBINAR_KEY)
    assert lines[2].endswith("Product launch (sandbox)")
    assert lines[3].startswith(WORKSHOP_KEY)
    data = json.loads(invoke("webinars", "--sandbox", "--json").stdout)
    assert [w["webinarKey"] for w in data] == [WEBINAR_KEY, WORKSHOP_KEY, SUMMIT_KEY]
    assert data[1]["times"][0]["startTime"] > data[0]["times"][0]["startTime"]
    since = (dt.date.today() - dt.timedelta(days=60)).isoformat()
    past = json.loads(invoke("webinars", "--sandbox", "--json", "--from", since).stdout)
    assert past[0]["webinarKey"] == KICKOFF_KEY  # over, and listed when asked for
    later = invoke("webinars", "--sandbox", "--from", "2099-01-01")
    assert "No webinars between 2099-01-01 and 2100-01-01." in later.stderr
    wrong = invoke("webinars", "--sandbox", "--from", "2099-01-01", "--to", "2098-01-01")
    assert wrong.exit_code == 2
    nobody = invoke("webinars", "--sandbox", "--organizer-key", "1234567890123456789")
    assert nobody.exit_code == 4
    assert "organizer 1234567890123456789 was not found" in nobody.stderr
    assert "--webinar-key" not in nobody.stderr
