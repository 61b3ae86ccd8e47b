"""What ``export``, ``cancel`` and ``undo`` share: one webinar, reached as ``register`` reaches it.

:func:`connected` opens the connection, the webinar's journal when asked for, one
:class:`~importer.goto.session.ApiSession` (pace, retries, call budget, stop) and reads the webinar,
whose subject every plan shows first. A run that stops before its plan was shown has changed
nothing and ends in its error; after the plan, a run always ends in an outcome and a report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from importer import report
from importer.cli.console import Console
from importer.engine.directory import Directory
from importer.engine.journal import Journal, default_path, webinar_journal
from importer.errors import UsageError
from importer.events import StopSignal
from importer.goto import lookup
from importer.goto.client import G2WClient
from importer.goto.connection import Access, Connection, default_webinar, open_connection, paced
from importer.goto.session import DEFAULT_RATE, ApiSession
from importer.model import Table, Webinar, email_key
from importer.progress import Progress
from importer.read import settings
from importer.read.columns import ColumnMap
from importer.text import normalise

#: characters no file name may hold on Windows, macOS or Linux, and the other controls
_NOT_IN_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f-\x9f]+')
#: Unicode categories dropped from a file name: format characters (bidirectional controls,
#: zero-width ones) and surrogates
_HIDDEN = frozenset({"Cf", "Cs"})


@dataclass(frozen=True)
class ManageOptions:
    """How to run ``export``, ``cancel`` or ``undo``, as the front door was told."""

    webinar_key: str | None = None
    #: the report (default: named after the input file or the webinar)
    out: Path | None = None
    journal: Path | None = None
    sheet: str | None = None
    rate: float = DEFAULT_RATE
    concurrency: int | None = None
    timeout: float = 30.0
    max_calls: int | None = None
    give_up_after: float = 60.0
    #: show the plan, change nothing, write nothing
    dry_run: bool = False
    #: how to carry on after a stop, in the front door's words (for the report's Summary)
    resume_hint: str = "run the same command again"


class Done(Protocol):
    """What a front door shows of an export, a cancel or an undo."""

    @property
    def dry_run(self) -> bool: ...

    @property
    def report(self) -> Path | None: ...

    @property
    def exit_code(self) -> int: ...

    def summary(self) -> str:
        """The counts, for ``Done: ….``"""

    def ending(self) -> str | None:
        """Why the run stopped early, if it did, and how to carry on."""


@dataclass(frozen=True)
class Run:
    """One command's way to one webinar: its client, the shared session, its journal."""

    connection: Connection
    session: ApiSession
    client: G2WClient
    webinar: Webinar
    workers: int
    journal: Journal | None

    def directory(self) -> Directory:
        """The webinar's registrant list, read through the session."""
        return Directory(self.session, self.client, self.webinar.registrant_count or 0)


@contextlib.asynccontextmanager
async def connected(
    access: Access,
    options: ManageOptions,
    stop: StopSignal | None,
    table: Table | None = None,
    *,
    journal: bool = False,
    existing: bool = False,
) -> AsyncIterator[Run]:
    """The webinar of ``options`` (or of ``table``'s Settings sheet), read, with its journal
    when ``journal`` is set: opened and locked, unless a dry run would have to create it.
    ``existing`` refuses to go on without one (there is nothing to undo)."""
    given = (options.webinar_key,) if options.webinar_key else ()
    keys = settings.webinar_keys(given, table, default_webinar(access))
    if not keys:
        raise UsageError(
            "--webinar-key is required: the long number in the webinar's settings "
            "(g2w-import webinars lists them)"
        )
    key = keys[0]
    async with contextlib.AsyncExitStack() as stack:
        connection = await stack.enter_async_context(open_connection(access, table))
        http, session, workers = await paced(stack, connection, options, stop)
        organizer, _ = await lookup.organizer(connection, http, session)
        opened = None
        if journal:
            path = options.journal or default_path(organizer, key, connection.journal_folder)
            if existing and not path.exists():
                raise UsageError(
                    f"no journal of webinar {key} at {path}: g2w-import has registered nobody "
                    "for it from this computer; name the journal with --journal if it is elsewhere"
                )
            if path.exists() or not options.dry_run:
                opened = stack.enter_context(
                    webinar_journal(organizer, key, folder=connection.journal_folder, path=path)
                )
        client = G2WClient(http, organizer, key)
        webinar = await session.call(client.get_webinar, what=f"reading webinar {key}")
        yield Run(connection, session, client, webinar, workers, opened)


def show(console: Console, run: Run, lines: Iterable[tuple[str, str]]) -> None:
    """The plan: the webinar first, then a line per label."""
    label = f" [{run.connection.label}]" if run.connection.label else ""
    for name, text in [("Webinar", f"{run.webinar.describe()}{label}"), *lines]:
        console.say(f"{name + ':' if name else '':<12}{text}")


def progress(console: Console, total: int) -> Progress:
    """A progress line on the console's stream (a bar on a terminal), silent when quiet."""
    stream = console.stream
    terminal = bool(getattr(stream, "isatty", None) and stream.isatty())
    return Progress(total, stream, terminal=terminal, enabled=not console.quiet)


def webinar_line(webinar: Webinar) -> str:
    """The webinar as a report's Summary names it: subject, key, start and time zone."""
    return webinar.describe()


def stamp(moment: dt.datetime) -> str:
    """A moment as a report's Summary shows it."""
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def check_out(path: Path | None) -> None:
    """Refuse a report path that cannot be written, before anything is done."""
    if path is None:
        return
    if path.suffix.lower() not in report.SUFFIXES:
        raise UsageError(f"--out {path.name}: the report must end in .xlsx or .csv")
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: no such folder; create it or choose another --out")


def named_after(webinar: Webinar, ending: str) -> Path:
    """``<subject>-<ending>`` in the current folder, the subject made safe for a file name (the
    webinar key when nothing is left of it). Invisible format characters go too: after a
    right-to-left override (U+202E) the rest of the name reads backwards, so that a subject
    could pass the file off as a ``.jpg`` or ``.exe``; and lone surrogates, which no file
    system takes."""
    visible = "".join(ch for ch in webinar.subject if unicodedata.category(ch) not in _HIDDEN)
    stem = " ".join(_NOT_IN_NAMES.sub(" ", visible).split())[:80].strip(" .")
    return Path(f"{stem or webinar.key}-{ending}")


def beside(source: Path, ending: str) -> Path:
    """``people.csv`` → ``people-<ending>``, in the same folder."""
    return source.with_name(f"{source.stem}-{ending}")


@dataclass(frozen=True)
class Person:
    """One row of an input file as the commands that match by e-mail read it."""

    line: int
    first_name: str
    last_name: str
    email: str


def people(table: Table) -> list[Person]:
    """Every data row's names and e-mail (trimmed; empty where the file has no such column)."""
    positions = ColumnMap.from_headers(table.headers).positions

    def cell(cells: tuple[str, ...], name: str) -> str:
        index = positions.get(name)
        return normalise(cells[index]) if index is not None else ""

    return [
        Person(
            row.line,
            cell(row.cells, "firstName"),
            cell(row.cells, "lastName"),
            cell(row.cells, "email"),
        )
        for row in table.rows
    ]


def first_lines(persons: Iterable[Person]) -> dict[str, int]:
    """The line each e-mail (ignoring case) first appears in, in the order of the lines."""
    found: dict[str, int] = {}
    for person in persons:
        if person.email:
            found.setdefault(email_key(person.email), person.line)
    return found
