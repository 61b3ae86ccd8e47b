"""What the in-process sandbox keeps between runs: its registrants, in an SQLite file.

``--sandbox`` registers into ``<user data>/sandbox/sandbox.sqlite3`` and keeps its journals
beside it, in ``journals/`` (never among GoTo's), so that a run stopped halfway, a rerun of the
needs-attention file, an export, a cancel and an undo find what earlier runs registered.

Every registration and cancellation is committed as it is made (write-through), before its
answer leaves: a run killed at any instant loses nothing the sandbox said it did. Several
processes may use the file at once (the page and a command): SQLite's WAL lets them read side
by side, a busy timeout queues their writes, and each one takes in what the others committed
(``PRAGMA data_version`` says when there is any) before it answers a call, inside the write
transaction for a registration, so that a repeated e-mail is refused whichever process made the
first registration. The keys issued are kept for good, through a reset too: a key never names
two people.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import JournalError, UsageError
from ..journal import _take_lock, data_folder
from ..models import email_key

if TYPE_CHECKING:
    from .state import Sandbox

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registrants (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    registrant_key  TEXT NOT NULL UNIQUE,
    webinar_key     TEXT NOT NULL,
    entry           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS issued (registrant_key TEXT PRIMARY KEY);
"""
#: seconds a write waits for another process's to finish
BUSY_SECONDS = 30.0
RESET_HINT = "run g2w-import sandbox reset to start the sandbox afresh"


def folder() -> Path:
    """The sandbox's folder in the user's data folder."""
    return data_folder() / "sandbox"


def store_path() -> Path:
    """The file that holds the in-process sandbox's registrants."""
    return folder() / "sandbox.sqlite3"


def journal_folder() -> Path:
    """Where the journals (and their locks) of ``--sandbox`` runs live."""
    return folder() / "journals"


class SandboxStore:
    """The open file of the sandbox's registrants, kept in step with one :class:`Sandbox`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        #: ``PRAGMA data_version`` when this connection last took in the file; None: never
        self._version: int | None = None
        #: the last position taken in, and how many removals had been made then
        self._last = 0
        self._removals = 0
        #: how deeply write transactions are nested (only the outermost begins and commits)
        self._depth = 0

    @classmethod
    def open(cls, path: Path) -> SandboxStore:
        """Open (or create) the file at ``path``; a file that cannot be used is a
        :class:`UsageError` that says what to do."""
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                return cls._open(path)
            except sqlite3.OperationalError as exc:
                # two processes creating the file at once: SQLite refuses one of them at once
                # (neither could go on while the other waits), so that one tries again
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise _unusable(path, exc) from exc
                time.sleep(0.02)
            except (OSError, sqlite3.Error) as exc:
                raise _unusable(path, exc) from exc

    @classmethod
    def _open(cls, path: Path) -> SandboxStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # a killed process loses nothing committed in WAL mode; only a power cut could
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            connection.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('removals', '0')",
                (SCHEMA_VERSION,),
            )
            (schema,) = connection.execute(
                "SELECT value FROM meta WHERE name = 'schema'"
            ).fetchone()
        except BaseException:
            connection.close()
            raise
        if schema != SCHEMA_VERSION:
            connection.close()
            raise UsageError(
                f"{path}: was written by another version of g2w-import (sandbox schema "
                f"{schema}); {RESET_HINT}"
            )
        return cls(path, connection)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SandboxStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def attach(self, sandbox: Sandbox) -> None:
        """Give ``sandbox`` the registrants kept here, and keep everything it registers or
        cancels from now on; anyone it held already is kept too, after them."""
        held = [(key, list(webinar.registrants)) for key, webinar in sandbox.webinars.items()]
        for webinar in sandbox.webinars.values():
            webinar.registrants.clear()
            webinar.by_email.clear()
        sandbox.store = self
        self._version = None
        try:
            self.sync(sandbox)
            if any(entries for _, entries in held):
                with self.writing(sandbox):
                    for key, entries in held:
                        for entry in entries:
                            self.added(key, entry)
                            held_by = sandbox.webinars[key]
                            held_by.registrants.append(entry)
                            held_by.by_email.setdefault(email_key(entry["email"]), entry)
            sandbox.keys.update(key for (key,) in self._db.execute("SELECT * FROM issued"))
        except sqlite3.Error as exc:
            raise UsageError(
                f"{self.path}: the built-in sandbox's registrations cannot be read ({exc}); "
                f"{RESET_HINT}"
            ) from exc

    def sync(self, sandbox: Sandbox) -> None:
        """Take in what other connections committed since this one last looked."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        self._version = version
        removals = self._count("removals")
        if self._last == 0 or removals != self._removals:
            for each in sandbox.webinars.values():  # someone was removed: read all again
                each.registrants.clear()
                each.by_email.clear()
            self._last = 0
        self._removals = removals
        rows = self._db.execute(
            "SELECT position, webinar_key, entry FROM registrants WHERE position > ? "
            "ORDER BY position",
            (self._last,),
        )
        for position, webinar_key, text in rows:
            self._last = position
            webinar = sandbox.webinars.get(webinar_key)
            if webinar is None:  # a webinar this version of the sandbox does not serve
                continue
            entry: dict[str, Any] = json.loads(text)
            webinar.registrants.append(entry)
            webinar.by_email.setdefault(email_key(entry["email"]), entry)
            sandbox.keys.add(entry["registrantKey"])

    @contextlib.contextmanager
    def writing(self, sandbox: Sandbox) -> Iterator[None]:
        """One write transaction (nested ones join the outermost), begun by taking in what
        others committed; if it fails, this connection reads everything again next time."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            self.sync(sandbox)
            yield
        except BaseException:
            self._version, self._last = None, 0
            if self._db.in_transaction:  # SQLite may have rolled back already (a full disk)
                self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def issue(self, key: str) -> bool:
        """Record ``key`` as issued; False when it was issued before (by any process)."""
        return self._db.execute("INSERT OR IGNORE INTO issued VALUES (?)", (key,)).rowcount == 1

    def added(self, webinar_key: str, entry: dict[str, Any]) -> None:
        """Keep a new registrant (within :meth:`writing`)."""
        cursor = self._db.execute(
            "INSERT INTO registrants (registrant_key, webinar_key, entry) VALUES (?, ?, ?)",
            (entry["registrantKey"], webinar_key, json.dumps(entry, ensure_ascii=False)),
        )
        self._db.execute("INSERT OR IGNORE INTO issued VALUES (?)", (entry["registrantKey"],))
        self._last = max(self._last, cursor.lastrowid or 0)

    def removed(self, registrant_key: str) -> None:
        """Forget a cancelled registrant (within :meth:`writing`)."""
        self._db.execute("DELETE FROM registrants WHERE registrant_key = ?", (registrant_key,))
        self._bump_removals()

    def registrant_count(self) -> int:
        """How many registrants the file holds, over every webinar."""
        return int(self._db.execute("SELECT count(*) FROM registrants").fetchone()[0])

    def empty(self) -> int:
        """Remove every registrant (keys once issued stay issued); how many there were."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            count = self.registrant_count()
            self._db.execute("DELETE FROM registrants")
            self._bump_removals()
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return count

    def _bump_removals(self) -> None:
        self._db.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'removals'"
        )
        self._removals += 1

    def _count(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0


def _unusable(path: Path, exc: OSError | sqlite3.Error) -> UsageError:
    """Why the sandbox's file cannot be opened, and what to do, in one line."""
    if isinstance(exc, OSError):
        return UsageError(
            f"{path}: the built-in sandbox's registrations cannot be used ({exc.strerror}); "
            "check that the folder can be written to"
        )
    if "locked" in str(exc):
        return UsageError(
            f"{path}: the built-in sandbox is held by another g2w-import that does not let go; "
            "wait for it to finish, or stop it, and run again"
        )
    return UsageError(
        f"{path}: the built-in sandbox's registrations cannot be used ({exc}); {RESET_HINT}"
    )


@dataclass(frozen=True)
class Reset:
    """What ``g2w-import sandbox reset`` removed."""

    #: None: the file could not be read, and was removed as a whole
    registrants: int | None
    journals: int
    folder: Path


def reset() -> Reset:
    """Empty the in-process sandbox: its registrants and the journals of its runs.

    Refused while a ``--sandbox`` import holds its journal: it would go on registering into a
    sandbox that no longer knows its journal. A file that cannot be read is removed as a whole.
    """
    journals = journal_folder()
    locks: list[Any] = []
    try:
        for lock in sorted(journals.glob("*.lock")):
            try:
                locks.append(_take_lock(lock))
            except JournalError:
                raise UsageError(
                    f"a --sandbox import is running (it holds {lock}); stop it, then run "
                    "g2w-import sandbox reset again"
                ) from None
        count: int | None = 0
        path = store_path()
        if path.exists():
            try:
                with SandboxStore.open(path) as store:
                    count = store.empty()
            except (UsageError, sqlite3.DatabaseError) as exc:
                cause = exc.__cause__ if isinstance(exc, UsageError) else exc
                if isinstance(cause, OSError | sqlite3.OperationalError):
                    raise  # in use, or out of reach: not damaged, so not to be thrown away
                count = None  # damaged, or of another version: nothing in it can be kept
                for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
                    (path.parent / name).unlink(missing_ok=True)
        found = len(list(journals.glob("*.sqlite3")))
        shutil.rmtree(journals, ignore_errors=True)
    except OSError as exc:
        raise UsageError(
            f"{folder()}: the sandbox cannot be reset ({exc.strerror}); remove the folder by hand"
        ) from exc
    finally:
        for handle in locks:
            handle.close()
    return Reset(count, found, folder())
