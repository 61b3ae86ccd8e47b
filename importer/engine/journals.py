"""The journals kept in a folder: what each holds, read without changing a byte, and removing
them, whole or one person at a time.

A journal is what keeps a second run from registering anyone twice and lets ``undo`` prove
which registrations are this tool's. It also holds personal data (e-mail addresses, registrant
keys, join URLs), kept no longer than needed: a journal can be listed, removed, or cleared of
one person. A journal with rows of unknown outcome (a run stopped while sending or cancelling)
is removed only when forced: only it knows those people may be registered already.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from importer import files
from importer.engine.journal import BESIDE, UNKNOWN, Forgotten, Journal
from importer.errors import JournalError, JournalFull
from importer.files import data_folder

SUFFIX = ".sqlite3"
#: how to remove a journal kept for rows of unknown outcome all the same, on the command line
FORCE_HINT = "or add --force"


def default_folder() -> Path:
    """Where journals live unless ``--journal`` names another file."""
    return data_folder() / "journals"


def sandbox_folder() -> Path:
    """Where the journals (and their locks) of ``--sandbox`` runs live, beside the sandbox's
    registrants."""
    return data_folder() / "sandbox" / "journals"


def locks_of(folder: Path) -> Path:
    """Where the locks of the journals in ``folder`` are: the data folder's ``locks`` for the
    default folder, else beside the journals (as :func:`.journal.webinar_journal` takes them)."""
    return data_folder() / "locks" if folder == default_folder() else folder


@dataclass(frozen=True)
class Summary:
    """One journal, as the list of journals shows it."""

    path: Path
    organizer: str
    webinar: str
    #: the webinar's subject and the end of its last session, as the last run saw them (None
    #: for a journal of an earlier version that no run has opened since)
    subject: str | None
    ends: dt.datetime | None
    #: how many people are in each state
    states: dict[str, int] = field(default_factory=dict)
    #: bytes on disk, with the write-ahead log beside the file
    size: int = 0
    #: when a run last wrote to it
    used: dt.datetime | None = None
    #: why it cannot be read, when it cannot
    problem: str | None = None

    @property
    def people(self) -> int:
        """How many people it holds."""
        return sum(self.states.values())

    @property
    def unknown(self) -> int:
        """How many of them may be registered (or cancelled) without the journal knowing."""
        return sum(self.states.get(state, 0) for state in UNKNOWN)

    def ended(self, now: dt.datetime) -> bool | None:
        """Whether the webinar is over; None when the journal does not know its times."""
        return None if self.ends is None else self.ends < now

    def days_over(self, now: dt.datetime) -> float | None:
        """How many days ago the webinar ended; None if it has not, or is not known to have."""
        if self.ends is None or self.ends >= now:
            return None
        return (now - self.ends).total_seconds() / 86400

    def states_of(self, email_keys: Iterable[str]) -> dict[str, str]:
        """Where each of these people stands in the journal, for those it holds (read without
        writing); raises ``sqlite3.Error`` for a journal that cannot be read."""
        keys = list(email_keys)
        with _reading(self.path) as db:
            query = "SELECT email_key, state FROM people WHERE email_key = ?"
            rows = [db.execute(query, (key,)).fetchone() for key in keys]
        return {row[0]: str(row[1]) for row in rows if row is not None}

    def traces(self, email_keys: Iterable[str]) -> set[str]:
        """Those of these addresses that the bytes of the file (or of its write-ahead log)
        still hold, though no row may: left by a removal whose file could not be rebuilt."""
        held = []
        for path in (self.path, Path(f"{self.path}-wal")):
            with contextlib.suppress(OSError):
                held.append(path.read_bytes().lower())
        return {key for key in email_keys if any(key.encode() in data for data in held)}


#: how the tool names a journal: ``<organizer key>-<webinar key>.sqlite3``
_NAMED = re.compile(r"([0-9A-Za-z]{1,64})-([0-9A-Za-z]{1,64})" + re.escape(SUFFIX))


def survey(folder: Path) -> list[Summary]:
    """Every journal in ``folder``, by webinar subject; none when the folder does not exist.
    Nothing is written: a journal in use by a run is read as it stands. Only files named as
    the tool names its journals are taken, and no link: removing a link would leave what it
    points to."""
    try:
        paths = sorted(
            path
            for path in folder.iterdir()
            if _NAMED.fullmatch(path.name) and path.is_file() and not path.is_symlink()
        )
    except OSError:
        return []
    found = [summary(path) for path in paths]
    return sorted(found, key=lambda s: ((s.subject or "").casefold(), s.webinar, str(s.path)))


def summary(path: Path) -> Summary:
    """What the journal at ``path`` holds."""
    beside = [path, Path(f"{path}-wal")]  # the shared-memory index holds no rows
    stats = [each.stat() for each in beside if each.exists()]
    size = sum(stat.st_size for stat in stats)
    used = max((stat.st_mtime for stat in stats), default=None)
    when = dt.datetime.fromtimestamp(used, dt.UTC) if used is not None else None
    named = _NAMED.fullmatch(path.name)
    # the keys its name gives, which its lock is named after: never what is written inside
    organizer, webinar = named.groups() if named else ("", path.stem)
    try:
        with _reading(path) as db:
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            states = dict(db.execute("SELECT state, count(*) FROM people GROUP BY state"))
        subject, ends = meta.get("subject"), _moment(meta.get("ends"))
        counts = {str(state): int(count) for state, count in states.items()}
        if (meta.get("organizer"), meta.get("webinar")) != (organizer, webinar):
            raise ValueError("it says it is the journal of another webinar than its name")
    except (sqlite3.Error, ValueError, TypeError) as exc:
        return Summary(path, organizer, webinar, None, None, {}, size, when, str(exc))
    return Summary(
        path,
        organizer,
        webinar,
        subject if isinstance(subject, str) and subject else None,
        ends,
        counts,
        size,
        when,
    )


def _moment(text: object) -> dt.datetime | None:
    """The time a journal keeps as text; None when there is none, or none that reads."""
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    """The journal opened for reading only: not a byte of it is changed, and no file is made
    beside it unless a write-ahead log is there already (left by a run that was killed, or in
    use by one now), which must be read with it."""
    with_log = Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if with_log else "&immutable=1")
    db = sqlite3.connect(uri, uri=True)
    try:
        yield db
    finally:
        db.close()


@dataclass(frozen=True)
class Removed:
    """What forgetting did to one journal."""

    journal: Summary
    #: the whole journal was removed
    whole: bool = False
    #: the e-mail keys of people removed from it
    people: list[str] = field(default_factory=list)
    #: why it (or some of its people) was kept, when it was
    kept: str | None = None


def remove(journal: Summary, *, force: bool = False, force_hint: str = FORCE_HINT) -> Removed:
    """Delete the journal (see :meth:`Journal.remove`); kept, saying why, while a run uses it
    or when it holds rows of unknown outcome and not ``force``."""
    try:
        opened = _open(journal)
    except (JournalError, JournalFull) as exc:
        return Removed(journal, kept=str(exc))
    try:
        if opened.remove(force=force):
            return Removed(journal, whole=True)
    except (sqlite3.Error, OSError) as exc:
        opened.close()
        return Removed(journal, kept=f"{journal.path}: cannot be removed ({exc})")
    opened.close()
    return Removed(journal, kept=unknown_reason(journal.unknown, force_hint))


def forget(
    journal: Summary,
    email_keys: Iterable[str],
    *,
    force: bool = False,
    force_hint: str = FORCE_HINT,
    traces: bool = False,
) -> Removed:
    """Remove these people from the journal (see :meth:`Journal.forget`)."""
    try:
        opened = _open(journal)
    except (JournalError, JournalFull) as exc:
        return Removed(journal, kept=str(exc))
    try:
        with opened:
            done: Forgotten = opened.forget(email_keys, force=force, traces=traces)
    except (JournalError, JournalFull) as exc:
        return Removed(journal, kept=str(exc))
    except (sqlite3.Error, OSError) as exc:
        return Removed(journal, kept=f"{journal.path}: cannot be changed ({exc})")
    kept = unknown_reason(len(done.kept), force_hint) if done.kept else None
    return Removed(journal, people=done.removed, kept=kept)


def unknown_reason(count: int, force_hint: str = FORCE_HINT) -> str:
    """Why a journal (or a person in it) holding rows of unknown outcome is kept."""
    rows = "1 person" if count == 1 else f"{count} people"
    return (
        f"{rows} of unknown outcome (a run stopped while sending): the journal is what keeps "
        f"them from being registered twice; run the same import again to settle them, {force_hint}"
    )


def in_use(journal: Summary) -> bool:
    """Whether a run holds the journal now (its lock is taken for an instant to know: only
    when about to change it, never to list it)."""
    path = locks_of(journal.path.parent) / f"{journal.organizer}-{journal.webinar}.lock"
    if not path.exists():
        return False
    try:
        held = files.lock(path)
    except OSError:
        return False
    if held is None:
        return True
    held.close()
    return False


IN_USE = "an import is using it now; wait until it is over, then try again"


def _open(journal: Summary) -> Journal:
    """The journal, opened and locked: :class:`JournalError` when a run holds it."""
    folder = journal.path.parent
    return Journal.open(
        journal.path,
        organizer_key=journal.organizer,
        webinar_key=journal.webinar,
        locks=locks_of(folder),
        create=False,
    )


def leftovers(folder: Path) -> int:
    """Remove what SQLite keeps beside a journal that is gone (a removal cut short after the
    journal itself was deleted); how many files."""
    removed = 0
    for ending in BESIDE:
        with contextlib.suppress(OSError):
            for path in folder.glob(f"*{SUFFIX}{ending}"):
                if not Path(str(path)[: -len(ending)]).exists():
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed
