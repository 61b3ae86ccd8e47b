"""The template made for a webinar is that webinar's form, and a filled copy registers as it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from importer.goto.connection import Access
from importer.model import Answer, Form, FormField, Question, Webinar
from importer.report import template
from importer.sandbox import SUMMIT_KEY, WORKSHOP_KEY
from tests.helpers import invoke, write_csv
from tests.web.test_web import Page


def form_of(key: str) -> dict[str, Any]:
    """The webinar's form as ``fields --json`` prints it: GoTo's fields and questions."""
    shown = invoke("fields", "--sandbox", "--webinar-key", key, "--json")
    assert shown.exit_code == 0, shown.output
    form: dict[str, Any] = json.loads(shown.stdout)
    return form


def answerable(question: dict[str, Any]) -> bool:
    return question["type"] != "multipleChoice" or bool(question["answers"])


def marked(name: str, required: bool) -> str:
    return name + (" *" if required else "")


def value_for(header: str, form: dict[str, Any], row: int) -> str:
    """A value GoTo takes for the column ``header`` (marks and all) of the webinar's template."""
    name = header.removesuffix(" *")
    if name == "email":
        return f"person{row}@example.com"
    for item in form["fields"]:
        if item["field"] == name and item["answers"]:
            return str(item["answers"][0])
    for question in form["questions"]:
        if question["question"] == name and question["type"] == "multipleChoice":
            return str(question["answers"][0]["answer"])
    return f"{name[:20]} {row}"


@pytest.mark.parametrize(
    ("key", "status"), [(SUMMIT_KEY, "waiting_approval"), (WORKSHOP_KEY, "registered")]
)
def test_a_webinars_template_is_its_form_and_registers_filled_in(
    tmp_path: Path, key: str, status: str
) -> None:
    form = form_of(key)
    path = tmp_path / "guests.xlsx"
    made = invoke("template", str(path), "--sandbox", "--webinar-key", key)
    assert made.exit_code == 0, made.output

    book = load_workbook(path)
    sheet = book["Registrants"]
    headers = [cell.value for cell in sheet[1]]
    assert headers == [
        *(marked(item["field"], item["required"]) for item in form["fields"]),
        *(marked(q["question"], q["required"]) for q in form["questions"] if answerable(q)),
    ]
    # row 2: every column filled in; row 3: only the columns marked required
    for column, header in enumerate(headers, start=1):
        sheet.cell(row=2, column=column, value=value_for(header, form, 2))
        if header.endswith(" *"):
            sheet.cell(row=3, column=column, value=value_for(header, form, 3))
    book.save(path)

    result = invoke("register", str(path), "--sandbox")  # the key from the Settings sheet
    assert result.exit_code == 0, result.output
    report = load_workbook(tmp_path / "guests-joinurls.xlsx")["Registrants"]
    rows = list(report.iter_rows(values_only=True))
    status_at = rows[0].index("status")
    assert [row[status_at] for row in rows[1:]] == [status, status]
    # the report names the columns as the person reads them, without the template's marks
    assert not any(str(title).endswith("*") for title in rows[0])


def test_the_summit_template_leaves_out_what_its_form_does_not_ask(tmp_path: Path) -> None:
    path = tmp_path / "summit.xlsx"
    made = invoke("template", str(path), "--sandbox", "--webinar-key", SUMMIT_KEY)
    assert made.exit_code == 0, made.output
    assert (
        "Template for 'Partner summit (sandbox)' (7219004418839305214): 15 fields and 2 custom "
        "questions." in made.stderr
    )
    assert (
        "Warning: the webinar's question 'Track' has no column: it is multiple choice and lists "
        "no answers to choose from" in made.stderr
    )
    book = load_workbook(path)
    headers = [cell.value for cell in book["Registrants"][1]]
    assert {"department *", "Company *", "Title"} <= set(headers)
    assert not {"organization", "jobTitle", "Track"} & set(headers)
    # "Title" is a short answer that lists suggestions: any text, so no drop-down list
    title = headers.index("Title") + 1
    lists = [v for v in book["Registrants"].data_validations.dataValidation if v.type == "list"]
    assert not [v for v in lists if any(r.min_col == title for r in v.sqref.ranges)]
    steps = "\n".join(str(row[0]) for row in book["Instructions"].iter_rows(values_only=True))
    assert "The webinar's question 'Track' has no column" in steps


def test_a_required_question_that_cannot_be_answered_is_said_on_the_instructions_sheet(
    tmp_path: Path,
) -> None:
    form = Form(
        fields=(FormField("firstName", True), FormField("lastName", True)),  # e-mail unsaid
        questions=(
            Question("1", "Track", True, "multipleChoice"),
            Question("2", "Level", False, "multipleChoice", answers=(Answer("9", "Expert"),)),
        ),
    )
    path = tmp_path / "broken.xlsx"
    template.build(path, webinar=Webinar("1234567890", "Broken", None, None), form=form)
    book = load_workbook(path)
    headers = [cell.value for cell in book["Registrants"][1]]
    assert headers == ["email *", "firstName *", "lastName *", "Level"]
    steps = " ".join(
        str(row[0]).strip() for row in book["Instructions"].iter_rows(values_only=True)
    )
    assert (
        "The webinar requires an answer to 'Track', a multiple-choice question that lists no "
        "answers to choose from, so the template has no column for it and nobody can be "
        "registered until it has them" in steps
    )


def test_a_filled_template_is_named_without_its_marks_in_messages_and_reports(
    tmp_path: Path,
) -> None:
    path = tmp_path / "workshop.xlsx"
    assert invoke("template", str(path), "--sandbox", "--webinar-key", WORKSHOP_KEY).exit_code == 0
    book = load_workbook(path)
    sheet = book["Registrants"]
    headers = [cell.value for cell in sheet[1]]
    row = {"firstName *": "Ann", "lastName *": "Lee", "email *": "ann@", "Your role? *": "Nurse"}
    for column, header in enumerate(headers, start=1):
        sheet.cell(row=2, column=column, value=row.get(header))
    book.save(path)

    result = invoke("register", str(path), "--sandbox")
    assert result.exit_code == 1, result.output
    assert "row 2, email: 'ann@' is not a valid e-mail address" in result.stderr
    assert "row 2, Your role?: 'Nurse' is not one of the answers" in result.stderr
    assert " *" not in result.stderr
    report = load_workbook(tmp_path / "workshop-joinurls.xlsx")["Registrants"]
    assert "Your role?" in [cell.value for cell in report[1]]
    fix = load_workbook(tmp_path / "workshop-needs-attention.xlsx").active
    assert fix is not None
    titles = [cell.value for cell in fix[1]]
    assert {"firstName", "lastName", "email", "Your role?"} <= set(titles)
    assert not any(str(title).endswith("*") for title in titles)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    opened = Page(Access(sandbox=True), tmp_path / "ui")
    yield opened
    opened.close()


def test_the_command_line_and_the_page_say_the_same_of_a_column_not_sent(
    tmp_path: Path, page: Page
) -> None:
    header = ["firstName", "lastName", "email", "department", "Company", "organization"]
    rows = [
        [*header, "Titel", "Organisaton"],
        ["Ann", "Lee", "ann@example.com", "Sales", "Acme", "Acme Inc", "Dr.", "Acme AG"],
    ]
    source = write_csv(tmp_path / "guests.csv", rows)
    checked = invoke("register", str(source), "--sandbox", "--webinar-key", SUMMIT_KEY, "--dry-run")
    assert checked.exit_code == 0, checked.output
    assert (
        "Not sent: column 'organization': not a field of this webinar (kept in the report)"
        in checked.stderr
    )
    assert (
        "Not sent: columns 'Titel' (did you mean 'Title'?), 'Organisaton' match no field or "
        "question of the webinar (kept in the report)" in checked.stderr
    )

    page.upload(source)
    page.settle()
    page.post("/api/check", json={"webinar": SUMMIT_KEY})
    plan = page.settle()["check"]["plans"][0]
    assert plan["unused"] == [
        "organization (not a field of this webinar)",
        "Titel (did you mean 'Title'?)",
        # close to organization, which this webinar does not ask for
        "Organisaton (matches no field or question of this webinar)",
    ]


def test_every_cell_of_a_template_is_text_so_excel_keeps_what_is_typed(tmp_path: Path) -> None:
    path = tmp_path / "summit.xlsx"
    assert invoke("template", str(path), "--sandbox", "--webinar-key", SUMMIT_KEY).exit_code == 0
    sheet = load_workbook(path)["Registrants"]
    headers = [cell.value for cell in sheet[1]]
    assert "numberOfEmployees" in headers  # an answer such as "1-20" Excel takes for a date
    formats = {cell.number_format for row in sheet.iter_rows(min_row=2) for cell in row}
    assert formats == {"@"}
