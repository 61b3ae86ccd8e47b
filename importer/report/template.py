"""The Excel template people fill in, generated here so that it can be rebuilt and checked.

Three sheets: ``Registrants`` (one column per field and custom question of the webinar's form
when a webinar is named, else per standard field), ``Settings`` (the webinar key in a text
cell, so that Excel cannot round it) and ``Instructions``. There is deliberately no place for
an access token.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from importer.checks import validate
from importer.files import write_atomically
from importer.model import Form, Question, Webinar
from importer.read.columns import OPTIONAL, REQUIRED

#: rows prepared with formats and drop-downs
ROWS = 1000
REQUIRED_MARK = " *"
_FIXED_DATE = dt.datetime(2026, 1, 1)  # the same file properties every time it is built
_HEADER_FILL = "DDEBF7"
_LIST_LIMIT = 255  # Excel's limit on a drop-down written inline


def instructions(
    name: str, webinar: Webinar | None = None, *, sandbox: bool = False, form: Form | None = None
) -> tuple[str, ...]:
    """The Instructions sheet of the workbook called ``name``, for ``webinar`` and its ``form``
    if they are known (and for the built-in sandbox's, with ``sandbox``)."""
    stem = Path(name).stem
    notes = [
        line
        for note in left_out(form or Form())
        for line in textwrap.wrap(
            note[:1].upper() + note[1:] + ".",
            width=90,
            initial_indent="   ",
            subsequent_indent="   ",
        )
    ]
    settings: tuple[str, ...]
    if webinar is None:
        settings = (
            "2. On the Settings sheet, paste the webinar key (the long number in the webinar's",
            "   settings) into the cell next to webinarKey. The cell is formatted as text on",
            "   purpose: Excel would round a 19-digit number.",
        )
    else:
        settings = (
            f"2. The Settings sheet already names the webinar '{webinar.subject}' ({webinar.key});",
            "   to register for another one, paste its key there instead (keep the cell as text).",
        )
    command = (f'"{name}"' if " " in name else name) + (" --sandbox" if sandbox else "")
    return (
        "How to register people for a GoTo Webinar with this workbook",
        "",
        "1. Fill the Registrants sheet: one person per row. Columns marked * are required.",
        "   Leave a column empty if you have nothing for it; do not rename or reorder the headers.",
        *notes,
        *settings,
        "3. Save the workbook (keep the .xlsx format) and run:",
        f"       g2w-import register {command}",
        "   Nothing is sent before every row has been checked; rows with problems are listed.",
        f"4. Open the report next to the workbook ({stem}-joinurls.xlsx). Its Summary sheet",
        "   says how it went; the Registrants sheet has every person's status and join URL.",
        f"   Rows that need attention are also in {stem}-needs-attention.xlsx: fix them there",
        "   and run g2w-import register on that file.",
        "",
        "Interrupted, or out of quota? Run the same command again: nobody is registered twice.",
        "Never type an access token into this workbook: files get mailed around.",
    )


def build(
    path: Path,
    *,
    webinar: Webinar | None = None,
    form: Form | None = None,
    sandbox: bool = False,
) -> None:
    """Write the template to ``path``; with a webinar's form, the columns are that form's
    (:func:`headers`). ``sandbox``: the webinar is the built-in sandbox's, and the instructions
    say so."""
    steps = instructions(path.name, webinar, sandbox=sandbox, form=form)
    write_atomically(path, lambda temp: _build(temp, steps, webinar, form or Form()))


def headers(form: Form) -> list[tuple[str, str]]:
    """(header, field name or question key) for each column of the template.

    A webinar's form gives exactly its own fields, in the order GoTo lists them (first and last
    name and e-mail first when it leaves them out: every registrant has them), then the
    questions that can be answered (see :func:`unanswerable`). Without a form (or one that
    lists no fields), every standard field.
    """
    if form.fields:
        listed = [spec.name for spec in form.fields]
        names = [*(name for name in REQUIRED if name not in listed), *listed]
    else:
        names = [*REQUIRED, *OPTIONAL]
    columns: list[tuple[str, str]] = []
    for name in dict.fromkeys(names):
        spec = form.field(name)
        required = name in REQUIRED or (spec is not None and spec.required)
        if name == "source" and not required:
            continue  # where the registration came from: the tool's business, not the person's
        columns.append((name + (REQUIRED_MARK if required else ""), name))
    for question in form.questions:
        if not validate.unanswerable(question):
            mark = REQUIRED_MARK if question.required else ""
            columns.append((question.text + mark, question.key))
    return columns


def left_out(form: Form) -> tuple[str, ...]:
    """What the template leaves out of the webinar's form, and why, one clause each."""
    notes = []
    for question in unanswerable(form):
        if question.required:
            notes.append(
                f"the webinar requires an answer to '{question.text}', a multiple-choice question "
                "that lists no answers to choose from, so the template has no column for it and "
                "nobody can be registered until it has them: add its answers in GoTo Webinar (or "
                "make it optional), then get a new template"
            )
        else:
            notes.append(
                f"the webinar's question '{question.text}' has no column: it is multiple choice "
                "and lists no answers to choose from (add them in GoTo Webinar, then get a new "
                "template to ask it)"
            )
    return tuple(notes)


def unanswerable(form: Form) -> tuple[Question, ...]:
    """The form's multiple-choice questions that list no answers to choose from: nothing typed
    into a column for them could be sent, so the template has none."""
    return tuple(q for q in form.questions if validate.unanswerable(q))


def _build(path: Path, steps: tuple[str, ...], webinar: Webinar | None, form: Form) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    book.properties.creator = "g2w-import"
    book.properties.created = book.properties.modified = _FIXED_DATE
    sheet = book.active
    sheet.title = "Registrants"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor=_HEADER_FILL)
    lists = None
    choices = {name: spec.answers for spec in form.fields if (name := spec.name) and spec.answers}
    # a short answer that lists answers takes any text: they are suggestions, not a list
    choices.update(
        {
            q.key: tuple(a.text for a in q.answers)
            for q in form.questions
            if q.multiple_choice and q.answers
        }
    )
    for column, (title, name) in enumerate(headers(form), start=1):
        letter = get_column_letter(column)
        cell = sheet.cell(row=1, column=column, value=title)
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(vertical="top", wrap_text=True)
        sheet.column_dimensions[letter].width = max(14, min(40, len(title) + 4))
        area = f"{letter}2:{letter}{ROWS + 1}"
        # every cell is text, so that what is typed stays as typed: the leading zero of a
        # postcode, the + of a phone number, an answer such as "1-20" that Excel takes for a date
        for row in range(2, ROWS + 2):
            sheet.cell(row=row, column=column).number_format = "@"
        if name == "email":
            check = DataValidation(
                type="custom",
                formula1=f'ISNUMBER(FIND("@",{letter}2))',
                allow_blank=True,
                showInputMessage=True,
                promptTitle="E-mail address",
                prompt="The person's e-mail address, e.g. ann@example.com. Each address once.",
                showErrorMessage=True,
                errorStyle="warning",
                errorTitle="E-mail address",
                error="This does not look like an e-mail address.",
            )
            sheet.add_data_validation(check)
            check.add(area)
        if name in choices:
            inline = '"' + ",".join(choices[name]) + '"'
            if len(inline) > _LIST_LIMIT or any("," in answer for answer in choices[name]):
                if lists is None:
                    lists = book.create_sheet("Lists")
                    lists.sheet_state = "hidden"
                for row, answer in enumerate(choices[name], start=1):
                    lists.cell(row=row, column=column, value=answer)
                inline = f"Lists!${letter}$1:${letter}${len(choices[name])}"
            drop_down = DataValidation(
                type="list",
                formula1=inline,
                allow_blank=True,
                showErrorMessage=True,
                errorTitle=title,
                error="Choose one of the answers in the list.",
            )
            sheet.add_data_validation(drop_down)
            drop_down.add(area)
    sheet.freeze_panes = "A2"

    settings = book.create_sheet("Settings")
    rows = [
        ("Setting", "Value", "What it is"),
        (
            "webinarKey",
            webinar.key if webinar else "",
            "The webinar's key: the long number in its settings. Paste it; keep this cell as text.",
        ),
        (
            "resendConfirmation",
            "FALSE",
            "TRUE: GoTo e-mails the confirmation again to people already registered.",
        ),
    ]
    if webinar is not None:
        rows.append(("webinar", webinar.subject, "For your reference; not read by the importer."))
    for entry in rows:
        settings.append(entry)
    for cell in settings[1]:
        cell.font, cell.fill = bold, fill
    settings["B2"].number_format = "@"
    yes_no = DataValidation(type="list", formula1='"TRUE,FALSE"', allow_blank=True)
    settings.add_data_validation(yes_no)
    yes_no.add("B3")
    for letter, width in (("A", 22), ("B", 24), ("C", 80)):
        settings.column_dimensions[letter].width = width

    sheet_of_instructions = book.create_sheet("Instructions")
    for line in steps:
        sheet_of_instructions.append([line])
    sheet_of_instructions["A1"].font = Font(bold=True, size=14)
    sheet_of_instructions.column_dimensions["A"].width = 100
    book.save(path)
