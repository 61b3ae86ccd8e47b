"""A grid of text cells → a :class:`~importer.model.Table`: header, rows with line numbers,
settings above the header, and what the reader had to say about them. Shared by every reader.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from importer.errors import InputError
from importer.model import FORMULA_STARTS, RawRow, Sheet, Table
from importer.read.columns import fold, looks_like_header, near_field, unmarked

HEADER_SEARCH_ROWS = 10
#: Excel's widest sheet: a report must fit in one
MAX_COLUMNS = 16_384


def header_index(rows: Sequence[Sequence[str]]) -> int | None:
    """The index of the header row among the first rows, if one names an e-mail column."""
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if looks_like_header(row):
            return index
    return None


def build_table(
    name: str,
    source: Path | None,
    grid: list[list[str]],
    header_at: int,
    *,
    sheet: str | None,
    notes: tuple[str, ...] = (),
    settings: Mapping[str, str] | None = None,
    unmark: bool = False,
    hidden: Collection[int] = (),
    formulas: Mapping[int, Mapping[int, str]] | None = None,
    other_sheets: tuple[Sheet, ...] = (),
) -> Table:
    """The table below the header row ``header_at`` of ``grid``, with its settings and notes.

    ``unmark`` drops the apostrophe that a CSV report puts before a cell that starts like a
    formula, so that a report fed back in reads as it was written. ``hidden`` are the lines
    Excel hides, ``formulas`` the formulas Excel has not calculated, by line and column index
    (of ``grid``).
    """
    from_sheet = bool(settings)
    settings, notes = read_settings(name, grid[:header_at], settings, notes)
    origin = "on the Settings sheet" if from_sheet else f"above the header of {name}"
    header = [unmarked(cell.strip()) for cell in grid[header_at]]  # "email *" is "email"
    body = grid[header_at + 1 :]
    dropped = [i for i, cell in enumerate(header) if fold(cell).startswith("curl")]
    formulas = formulas or {}
    if dropped:
        # The old curl workbook builds commands that contain the access token: never keep them.
        keep = [i for i in range(len(header)) if i not in dropped]
        header = [header[i] for i in keep]
        body = [[row[i] for i in keep if i < len(row)] for row in body]
        moved = {old: new for new, old in enumerate(keep)}
        formulas = {
            line: {moved[i]: text for i, text in cells.items() if i in moved}
            for line, cells in formulas.items()
        }
    # Rows are as wide as the header, except where cells stand beyond it; those columns count
    # only as far as something is written in them.
    longest = max(map(len, body), default=0)
    width = _used_width(header)
    if longest > width:
        width = max([width, *(_used_width(row) for row in body if len(row) > width)])
    if width > MAX_COLUMNS:
        raise InputError(
            f"{name}: has {width:,} columns, more than the {MAX_COLUMNS:,} of an Excel sheet; "
            "keep the list's own columns and save it again"
        )
    headers = tuple(
        header[i] if i < len(header) and header[i] else f"column {column_letter(i)}"
        for i in range(width)
    )
    rows: list[RawRow] = []
    blank = 0
    for line, cells in enumerate(body, start=header_at + 2):
        joined = "".join(cells)
        uncalculated = _uncalculated(formulas.get(line), width) if formulas else ()
        if not joined.strip() and not uncalculated:
            blank += 1
            continue
        if unmark and "'" in joined:
            cells = [unquote(cell) for cell in cells]
        if len(cells) != width:
            cells = cells[:width] + [""] * (width - len(cells))
        rows.append(RawRow(line, tuple(cells), bool(hidden) and line in hidden, uncalculated))
    if not rows:
        where = f" of sheet '{sheet}'" if sheet is not None else ""
        raise InputError(
            f"{name}: has a header in line {header_at + 1}{where} but no rows below it; "
            "add the people to register and run again"
        )
    return Table(
        source=source,
        headers=headers,
        header_line=header_at + 1,
        rows=tuple(rows),
        sheet=sheet,
        notes=notes,
        blank_rows=blank,
        settings=settings,
        name=name,
        settings_origin=origin,
        other_sheets=other_sheets,
    )


SETTINGS = {
    "webinarkey": "webinarKey",
    "organizerkey": "organizerKey",
    "resendconfirmation": "resendConfirmation",
}
_TOKEN_NAMES = frozenset({"accesstoken", "token", "bearertoken", "authorization"})


def read_settings(
    name: str,
    rows: Sequence[Sequence[str]],
    found: Mapping[str, str] | None,
    notes: tuple[str, ...],
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Name/value pairs from ``rows`` (a Settings sheet, or rows above the header).

    A row naming an access token is noted, and its value is dropped unread: the importer never
    takes a token from a spreadsheet, which gets mailed around.
    """
    settings = dict(found or {})
    for row in rows:
        cells = [cell.strip() for cell in row if cell.strip()]
        if len(cells) < 2:
            continue
        key = fold(cells[0])
        if key in _TOKEN_NAMES:
            notes = (
                *notes,
                (
                    f"{name}: holds an access token near the top; it is not used. Delete it "
                    "from the file, and revoke it in GoTo if the file has been shared"
                ),
            )
        elif key in SETTINGS:
            settings.setdefault(SETTINGS[key], cells[1])
    return settings, notes


def _uncalculated(cells: Mapping[int, str] | None, width: int) -> tuple[tuple[int, str], ...]:
    return tuple(sorted((i, text) for i, text in (cells or {}).items() if i < width))


def unquote(cell: str) -> str:
    """Drop the apostrophe that keeps a CSV cell from being a formula (as reports write them)."""
    return cell[1:] if cell[:1] == "'" and cell[1:2].startswith(FORMULA_STARTS) else cell


def _used_width(row: Sequence[str]) -> int:
    for index in range(len(row) - 1, -1, -1):
        if row[index].strip():
            return index + 1
    return 0


def column_letter(index: int) -> str:
    """Excel's name for the column at ``index`` (0-based): 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def no_email_column(name: str, first_row: Iterable[str], *, sheet: str | None = None) -> InputError:
    """The error for a sheet in which no header row names an e-mail column."""
    cells = [cell.strip() for cell in first_row if cell.strip()]
    found = cells[:8]
    seen = f" (first row: {', '.join(repr(cell) for cell in found)})" if found else ""
    place = f" of sheet '{sheet}'" if sheet is not None else ""
    misspelt = next((cell for cell in cells if near_field(cell) == "email"), None)
    advice = (
        f"rename the column '{misspelt}' to email (or E-Mail)"
        if misspelt is not None
        else "add a header row with columns named firstName, lastName and email"
    )
    return InputError(
        f"{name}: no e-mail column found in the first {HEADER_SEARCH_ROWS} rows{place}{seen}; "
        + advice
    )
