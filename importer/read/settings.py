"""Which webinars, for which organizer, at which address: keys, URLs and Settings-sheet flags.

Every front door (the command line, the Python API, the web page) resolves these the same way:
an explicit value first, then the input file's Settings sheet, then the connection's default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from importer.errors import InputError, NoWebinar, UsageError
from importer.model import Table
from importer.read.columns import fold
from importer.text import normalise

API_URL = "https://api.getgo.com/G2W/rest/v2"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_YES = frozenset({"true", "yes", "1", "y", "ja", "wahr", "oui", "si", "sí"})
_EXCEL_NUMBER = re.compile(r"\d+(?:[.,]\d*)?[eE][+-]?\d+")
_EXCEL_DIGITS = 15


def api_url(url: str | None) -> str:
    """The API's base URL: https, or plain http to this machine only (the token travels in it)."""
    url = (url or API_URL).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"--api-url '{url}' is not a web address; it starts with https://")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise UsageError(
            f"--api-url '{url}' is not encrypted; use https:// so that the "
            "access token is not sent in the clear"
        )
    return url


def check_key(what: str, value: str) -> str:
    """A webinar or organizer key as its exact digits; refuse one that Excel has mangled.

    Keys have up to 19 digits and Excel keeps 15 of a number: ``8.32536E+18`` or a key ending
    in zeros past the 15th digit has lost digits that nothing can bring back.
    """
    text = normalise(value)
    fix = "format the cell as Text (or type an apostrophe first), paste the key again and rerun"
    if _EXCEL_NUMBER.fullmatch(text):
        raise UsageError(f"{what} '{text}' is a number rounded by Excel, not a key; {fix}")
    if not text.isdigit() or not text.isascii():
        raise UsageError(
            f"{what} '{text}' is not a key: a key is a number of up to 19 digits with nothing else"
        )
    if len(text) > 19 or int(text) >= 2**63:
        raise UsageError(f"{what} '{text}' is too long for a key (at most 19 digits)")
    if len(text) > _EXCEL_DIGITS and not text[_EXCEL_DIGITS:].strip("0"):
        raise UsageError(
            f"{what} '{text}' ends in zeros after digit {_EXCEL_DIGITS}, the sign of a key "
            f"that Excel rounded; {fix}"
        )
    return text


def webinar_keys(
    given: Sequence[str], table: Table | None = None, default: str | None = None
) -> tuple[str, ...]:
    """The webinars to register for: given ones, else the Settings sheet's, else the default."""
    if given:
        return tuple(dict.fromkeys(check_key("--webinar-key", key) for key in given))
    found = table.settings.get("webinarKey", "").strip() if table is not None else ""
    if found:
        try:
            origin = table.settings_origin if table is not None else "on the Settings sheet"
            return (check_key(f"webinarKey {origin}", found),)
        except UsageError as exc:
            raise InputError(str(exc)) from None
    return (default,) if default else ()


def organizer_key(given: str | None, table: Table | None = None) -> str | None:
    """The organizer key given, or the one written in the file (the old curl workbook's)."""
    if given:
        return check_key("--organizer-key", given)
    found = table.settings.get("organizerKey", "").strip() if table is not None else ""
    if not found or table is None:
        return None
    try:
        return check_key(f"organizerKey {table.settings_origin}", found)
    except UsageError as exc:
        raise InputError(str(exc)) from None


def resend_confirmation(given: bool | None, settings: Mapping[str, str]) -> bool:
    """Whether GoTo re-sends the confirmation e-mail: as given, else the Settings sheet says."""
    if given is not None:
        return given
    return settings.get("resendConfirmation", "").strip().casefold() in _YES


def split_by_webinar(table: Table, default_keys: tuple[str, ...]) -> dict[str, Table]:
    """Each webinar's rows: every row for every default key, or each row's own webinarKey cell.

    A cell in a ``webinarKey`` column overrides the defaults for its row; a row with neither is
    refused, as is a key that Excel has mangled, before anything is sent.
    """
    column = next((i for i, h in enumerate(table.headers) if fold(h) == "webinarkey"), None)
    if column is None:
        if not default_keys:
            raise NoWebinar(
                f"{table.describe()}: no webinar named; pass --webinar-key, fill webinarKey on "
                "the Settings sheet, or add a webinarKey column"
            )
        return {key: table for key in default_keys}
    rows: dict[str, list[int]] = {key: [] for key in default_keys}
    for position, row in enumerate(table.rows):
        cell = normalise(row.cells[column])
        try:
            keys = (check_key(f"row {row.line}, webinarKey", cell),) if cell else default_keys
        except UsageError as exc:
            raise InputError(f"{table.describe()}: {exc}") from None
        if not keys:
            raise InputError(
                f"{table.describe()}: row {row.line}, webinarKey: is empty; fill in the "
                "webinar's key, or pass --webinar-key for rows without one"
            )
        for key in keys:
            rows.setdefault(key, []).append(position)
    return {
        key: replace(table, rows=tuple(table.rows[i] for i in positions))
        for key, positions in rows.items()
        if positions
    }
