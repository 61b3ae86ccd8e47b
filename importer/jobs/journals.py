"""Keeping personal data no longer than needed: the journals listed, forgotten on request, and
removed once their webinar has long been over.

Every front door calls these: ``g2w-import journals`` (and ``journals forget``), the page's
list of journals, and the start of every command, which removes the journals of webinars over
for more than :data:`DEFAULT_KEEP_DAYS` days (:func:`expire`).
"""

from __future__ import annotations

import datetime as dt
import html
import os
import shutil
import sqlite3
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from importer import files
from importer.engine import journals
from importer.engine.journal import UNKNOWN, State
from importer.engine.journals import Removed, Summary
from importer.errors import UsageError
from importer.model import email_key
from importer.text import counted

#: the page's own folder in the data folder (the files chosen on it, their reports, exports)
PAGE_FOLDER = "ui"
#: the page's folders of the files chosen on it (each with its reports) and of exported lists
PAGE_COPIES = ("uploads", "exports")
#: days a journal is kept once its webinar is over, unless said otherwise
DEFAULT_KEEP_DAYS = 30
#: the most days that can be asked for: a hundred years (0 keeps them for ever)
MAX_KEEP_DAYS = 36_500
#: the environment variable that says otherwise (``0``: keep journals for ever)
KEEP_DAYS_ENV = "G2W_KEEP_DAYS"


def page_folder() -> Path:
    """The page's folder (``~/.local/share/g2w-import/ui`` on Linux)."""
    return files.data_folder() / PAGE_FOLDER


def folder(sandbox: bool = False) -> Path:
    """The folder of the journals: the user's own, or the built-in sandbox's."""
    return journals.sandbox_folder() if sandbox else journals.default_folder()


def keep_days(text: str | None) -> int:
    """How many days to keep journals, from the environment variable's text (or the default)."""
    if text is None or not text.strip():
        return DEFAULT_KEEP_DAYS
    try:
        days = int(text.strip())
    except ValueError:
        days = -1
    if not 0 <= days <= MAX_KEEP_DAYS:
        raise UsageError(
            f"{KEEP_DAYS_ENV}={text}: must be a whole number of days up to {MAX_KEEP_DAYS:,} "
            "(0: keep journals for ever)"
        )
    return days


def keep_days_from_environment() -> int:
    """:func:`keep_days` as the environment says."""
    return keep_days(os.environ.get(KEEP_DAYS_ENV))


@dataclass(frozen=True)
class Choice:
    """Which journals to forget, and whether whole or one person."""

    #: the journals of these webinars
    webinar_keys: tuple[str, ...] = ()
    #: the journals of webinars over for more than this many days
    ended_days: int | None = None
    #: every journal
    everything: bool = False
    #: only these people (from every chosen journal; from all when none is chosen)
    emails: tuple[str, ...] = ()
    #: remove rows of unknown outcome too
    force: bool = False

    def __post_init__(self) -> None:
        chosen = sum((bool(self.webinar_keys), self.ended_days is not None, self.everything))
        if chosen > 1:
            raise UsageError(
                "choose the journals one way: --webinar-key, --ended or --all, not several"
            )
        if not chosen and not self.emails:
            raise UsageError(
                "say what to forget: --webinar-key KEY, --ended DAYS, --all, or --email ADDRESS "
                "(g2w-import journals lists them)"
            )
        if self.ended_days is not None and self.ended_days < 0:
            raise UsageError("--ended: a number of days, 0 or more")


@dataclass(frozen=True)
class Plan:
    """What forgetting will do, before it does it."""

    folder: Path
    choice: Choice
    #: how to remove a journal kept for rows of unknown outcome all the same
    force_hint: str = journals.FORCE_HINT
    #: journals to remove whole
    whole: list[Summary] = field(default_factory=list)
    #: journals to remove people from, with their e-mail keys
    people: list[tuple[Summary, list[str]]] = field(default_factory=list)
    #: what is asked for but not found: webinar keys without a journal, addresses in none
    missing: list[str] = field(default_factory=list)
    #: journals (or people) kept, and why
    kept: list[tuple[Summary, str]] = field(default_factory=list)
    #: journals holding none of the people in a row but still in their bytes (a removal
    #: whose file could not be rebuilt): rebuilt
    rebuild: list[Summary] = field(default_factory=list)
    #: the page's copies that hold the people to forget: a file chosen on it (its folder, with
    #: its reports) or a list exported
    copies: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether nothing would be removed."""
        return not (self.whole or self.people or self.rebuild or self.copies)


def plan(
    choice: Choice,
    where: Path,
    now: dt.datetime | None = None,
    *,
    force_hint: str = journals.FORCE_HINT,
) -> Plan:
    """What forgetting ``choice`` in the journals of ``where`` would do; nothing is changed.
    ``force_hint`` says how to remove a journal kept for rows of unknown outcome all the
    same, where this is asked from."""
    now = now or dt.datetime.now(dt.UTC)
    found = journals.survey(where)
    missing: list[str] = []
    if choice.webinar_keys:
        chosen = [j for j in found if j.webinar in choice.webinar_keys]
        held = {j.webinar for j in chosen}
        missing += [f"webinar {key}" for key in choice.webinar_keys if key not in held]
    elif choice.ended_days is not None:
        limit = choice.ended_days
        chosen = [j for j in found if (over := j.days_over(now)) is not None and over > limit]
    else:
        chosen = found
    result = Plan(where, choice, force_hint, missing=missing)
    if choice.emails:
        keys = {email_key(address.strip()): address.strip() for address in choice.emails}
        seen: set[str] = set()
        for journal in chosen:
            try:
                if journal.problem:
                    raise sqlite3.DatabaseError(journal.problem)
                states = journal.states_of(keys)
            except sqlite3.Error as exc:  # it may hold them: say so, never "no journal holds"
                result.kept.append((journal, f"cannot be read ({exc}); nothing removed from it"))
                seen.update(keys)
                continue
            present = [key for key in keys if key in states]
            seen.update(present)
            traced = journal.traces(keys) if not present else set()
            if traced:
                result.rebuild.append(journal)  # no row, but bytes left in its free space
                seen.update(traced)
                continue
            unsure = [key for key in present if states[key] in UNKNOWN]
            if present and journals.in_use(journal):
                result.kept.append((journal, journals.IN_USE))
                continue
            if unsure and not choice.force:
                who = ", ".join(keys[key] for key in unsure)
                result.kept.append(
                    (journal, f"{who}: {journals.unknown_reason(len(unsure), force_hint)}")
                )
            taken = [key for key in present if choice.force or key not in unsure]
            if taken:
                result.people.append((journal, taken))
        result.copies.extend(page_copies(keys))
        held = {key for key in keys if key in seen} | ({*keys} if result.copies else set())
        result.missing.extend(address for key, address in keys.items() if key not in held)
        return result
    for journal in chosen:
        if journal.unknown and journals.in_use(journal):  # sending now: not stopped
            result.kept.append((journal, journals.IN_USE))
        elif journal.unknown and not choice.force:
            result.kept.append((journal, journals.unknown_reason(journal.unknown, force_hint)))
        else:
            result.whole.append(journal)
    return result


def carry_out(planned: Plan) -> list[Removed]:
    """Forget what ``planned`` says, journal by journal; what could not be is said in each
    result's ``kept``."""
    for copy in planned.copies:  # first: one that cannot be removed stops before the rest
        try:
            shutil.rmtree(copy) if copy.is_dir() else copy.unlink(missing_ok=True)
        except OSError as exc:  # open in another program
            why = exc.strerror or str(exc)
            raise UsageError(
                f"{copy}: cannot be removed ({why}); close it, then try again"
            ) from exc
    force, hint = planned.choice.force, planned.force_hint
    done = [journals.remove(j, force=force, force_hint=hint) for j in planned.whole]
    done += [journals.forget(j, keys, force=force, force_hint=hint) for j, keys in planned.people]
    done += [journals.forget(j, (), traces=True) for j in planned.rebuild]
    return done


def page_copies(email_keys: Iterable[str]) -> list[Path]:
    """The page's copies that hold any of these addresses (compared as GoTo compares them):
    the folder of a file chosen on the page (the file and its reports), or an exported list.
    Read as bytes, and inside an Excel file as the text it keeps: UTF-8, and UTF-16 as Excel
    saves "Unicode text"."""
    needles = [key.encode() for key in email_keys if key]
    needles += [key.encode("utf-16-le") for key in email_keys if key]
    needles += [html.escape(key, quote=False).encode() for key in email_keys if key]
    found = []
    for kind in PAGE_COPIES:
        try:
            entries = sorted((page_folder() / kind).iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            inside = sorted(entry.iterdir()) if entry.is_dir() else [entry]
            if any(_holds(path, needles) for path in inside if path.is_file()):
                found.append(entry)
    return found


def _holds(path: Path, needles: list[bytes]) -> bool:
    """Whether the file at ``path`` holds one of ``needles`` (in lower case)."""
    try:
        if zipfile.is_zipfile(path):  # XLSX: the text is in its XML parts
            with zipfile.ZipFile(path) as book:
                parts = [book.read(name) for name in book.namelist() if name.endswith(".xml")]
        else:
            parts = [path.read_bytes()]
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return False
    return any(needle in part.lower() for part in parts for needle in needles)


@dataclass(frozen=True)
class Expired:
    """What :func:`expire` did."""

    days: int
    removed: list[Summary] = field(default_factory=list)
    #: journals over for longer, kept (rows of unknown outcome, or in use), and why
    kept: list[tuple[Summary, str]] = field(default_factory=list)


def expire(days: int, now: dt.datetime | None = None, *, spare: Iterable[str] = ()) -> Expired:
    """Remove the journals of webinars over for more than ``days`` days (0: none), in the
    user's folder and the sandbox's, but those of the webinars ``spare`` (the command about to
    run names them); and what a removal cut short, or a killed run's temporary files, left
    behind. Never raises for a journal: what cannot be removed is kept, with why."""
    files.sweep()
    result = Expired(days)
    now = now or dt.datetime.now(dt.UTC)
    for where in (folder(), folder(sandbox=True)):
        journals.leftovers(where)
        if days == 0:
            continue
        for journal in journals.survey(where):
            over = journal.days_over(now)
            if over is None or over <= days or journal.webinar in spare:
                continue
            done = journals.remove(journal)
            if done.whole:
                result.removed.append(journal)
            elif done.kept is not None:
                result.kept.append((journal, done.kept))
    return result


#: how each state is said in the list, in this order; rows of unknown outcome last
_STATES = (
    (State.REGISTERED, "registered"),
    (State.ALREADY_REGISTERED, "already registered"),
    (State.DENIED, "denied"),
    (State.FAILED, "failed"),
    (State.TODO, "not sent"),
    (State.CANCELLED, "cancelled"),
)


def people_text(journal: Summary) -> str:
    """``40 registered, 2 failed, 1 of unknown outcome``; ``nobody`` for an empty journal."""
    parts = [f"{journal.states[s]:,} {words}" for s, words in _STATES if journal.states.get(s)]
    if journal.unknown:
        parts.append(f"{journal.unknown:,} of unknown outcome")
    return ", ".join(parts) or "nobody"


def size_text(size: int) -> str:
    """``24 KB``, ``1.2 MB``."""
    if size < 1_000_000:
        return f"{max(1, round(size / 1000)):,} KB"
    return f"{size / 1e6:,.1f} MB"


def ended_text(journal: Summary, now: dt.datetime, keep_days: int = 0) -> str:
    """``yes, 3 days ago (removed in 27 days)`` / ``no`` / ``not known yet`` (no run has
    recorded its times); when it will be removed, if journals are kept ``keep_days``."""
    if journal.ends is None:
        return "not known yet"
    over = journal.days_over(now)
    if over is None:
        return "no"
    days = int(over)
    said = "yes, today" if days == 0 else f"yes, {counted(days, 'day')} ago"
    if keep_days:
        left = keep_days - days
        said += f" (removed in {counted(left, 'day')})" if left > 0 else " (removed next start)"
    return said


def as_json(journal: Summary, now: dt.datetime) -> dict[str, object]:
    """A journal as ``journals --json`` prints it and the page shows it."""
    return {
        "webinarKey": journal.webinar,
        "organizerKey": journal.organizer,
        "subject": journal.subject,
        "ends": journal.ends.isoformat() if journal.ends else None,
        "ended": journal.ended(now),
        "people": journal.people,
        "states": journal.states,
        "unknownOutcome": journal.unknown,
        "bytes": journal.size,
        "lastUsed": journal.used.isoformat() if journal.used else None,
        "path": str(journal.path),
        "problem": journal.problem,
    }


def named(journal: Summary) -> str:
    """``Product launch (8325357307900339981)``."""
    return f"{journal.subject} ({journal.webinar})" if journal.subject else journal.webinar


def used_text(journal: Summary) -> str:
    """When a run last wrote to it, on this computer's clock."""
    return journal.used.astimezone().strftime("%Y-%m-%d %H:%M") if journal.used else ""
