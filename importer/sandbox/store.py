"""What the in-process sandbox keeps between runs: its registrants, in an SQLite file.

``--sandbox`` registers into ``<user data>/sandbox/sandbox.sqlite3`` and keeps its journals
beside it, in ``journals/`` (never among GoTo's), so that a run stopped halfway, a rerun of the
needs-attention file, an export, a cancel and an undo find what earlier runs registered. The
file is made by the first registration: a command that only reads (``fields``, ``template``,
``--dry-run``) finds the sandbox empty while there is none, and leaves none behind.

Every registration and cancellation is committed as it is made (write-through), before its
answer leaves: a run killed at any instant loses nothing the sandbox said it did. Several
processes may use the file at once (the page and a command): SQLite's WAL lets them read side
by side, a busy timeout queues their writes, and each one takes in what the others committed
(``PRAGMA data_version`` says when there is any) before it answers a call, inside the write
transaction for a registration, so that a repeated e-mail is refused whichever process made the
first registration. The keys issued are kept for good, through a reset too: a key never names
two people.

``g2w-import sandbox reset`` holds the lock of every journal an import of the sandbox could
take, for as long as it removes anything: a running import makes it refuse, and none can start
meanwhile. It removes the journals, never their lock files (another process may be about to
take one), and removes the sandbox's file as a whole when it cannot be opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from importer.engine.journal import BESIDE, take_lock
from importer.engine.journals import sandbox_folder
from importer.errors import JournalError, UsageError
from importer.files import data_folder, private_folder
from importer.model import email_key
from importer.sandbox.webinars import ORGANIZER_KEY, SandboxWebinar, catalogue


class Sandbox(Protocol):
    """What a store keeps in step (:class:`importer.sandbox.state.Sandbox`): its webinars,
    the registrant keys it issued, and the store it is attached to."""

    webinars: dict[str, SandboxWebinar]
    keys: set[str]
    store: SandboxStore | None


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
    return sandbox_folder()


class OtherVersion(sqlite3.DatabaseError):
    """The file was written by another version of g2w-import (another schema)."""


class Damaged(sqlite3.DatabaseError):
    """The file is an SQLite database, but what it holds is not what the sandbox writes."""


class SandboxStore:
    """The file of the sandbox's registrants, kept in step with one :class:`Sandbox`.

    While there is no file, nothing is read and nothing is made: the first write makes it.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection | None) -> None:
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
        """Open the file at ``path`` if there is one (it is made at the first write
        otherwise); a file that cannot be used is a :class:`UsageError` that says what to do."""
        if not os.path.lexists(path):
            return cls(path, None)
        try:
            return cls(path, _connect(path))
        except (OSError, sqlite3.Error) as exc:
            raise _unusable(path, exc) from exc

    def close(self) -> None:
        if self._db is not None:
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
            if self._db is not None:
                sandbox.keys.update(
                    str(key) for (key,) in self._db.execute("SELECT registrant_key FROM issued")
                )
        except sqlite3.Error as exc:
            raise _unusable(self.path, exc) from exc

    def sync(self, sandbox: Sandbox) -> None:
        """Take in what other connections committed since this one last looked (nothing
        while there is no file)."""
        db = self._db
        if db is None:
            if not os.path.lexists(self.path):
                return
            db = self._connected()
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        removals = self._count("removals")
        self._version = version
        if self._last == 0 or removals != self._removals:
            for each in sandbox.webinars.values():  # someone was removed: read all again
                each.registrants.clear()
                each.by_email.clear()
            self._last = 0
        self._removals = removals
        rows = db.execute(
            "SELECT position, webinar_key, entry FROM registrants WHERE position > ? "
            "ORDER BY position",
            (self._last,),
        )
        for position, webinar_key, text in rows:
            webinar = sandbox.webinars.get(webinar_key)
            if webinar is None:  # a webinar this version of the sandbox does not serve
                self._last = position
                continue
            try:
                entry = _entry(text)
            except Damaged:
                self._version, self._last = None, 0  # read everything again next time
                raise
            self._last = position
            webinar.registrants.append(entry)
            webinar.by_email.setdefault(email_key(entry["email"]), entry)
            sandbox.keys.add(entry["registrantKey"])

    @contextlib.contextmanager
    def writing(self, sandbox: Sandbox) -> Iterator[None]:
        """One write transaction (nested ones join the outermost), begun by taking in what
        others committed; if it fails, this connection reads everything again next time.
        The first one makes the file when there is none."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        db = self._connected()
        db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            self.sync(sandbox)
            yield
        except BaseException:
            self._version, self._last = None, 0
            if db.in_transaction:  # SQLite may have rolled back already (a full disk)
                db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")
        finally:
            self._depth = 0

    def issue(self, key: str) -> bool:
        """Record ``key`` as issued; False when it was issued before (by any process)."""
        db = self._connected()
        return db.execute("INSERT OR IGNORE INTO issued VALUES (?)", (key,)).rowcount == 1

    def added(self, webinar_key: str, entry: dict[str, Any]) -> None:
        """Keep a new registrant (within :meth:`writing`)."""
        db = self._connected()
        cursor = db.execute(
            "INSERT INTO registrants (registrant_key, webinar_key, entry) VALUES (?, ?, ?)",
            (entry["registrantKey"], webinar_key, json.dumps(entry, ensure_ascii=False)),
        )
        db.execute("INSERT OR IGNORE INTO issued VALUES (?)", (entry["registrantKey"],))
        self._last = max(self._last, cursor.lastrowid or 0)

    def removed(self, registrant_key: str) -> None:
        """Forget a cancelled registrant (within :meth:`writing`)."""
        db = self._connected()
        db.execute("DELETE FROM registrants WHERE registrant_key = ?", (registrant_key,))
        self._bump_removals()

    def registrant_count(self) -> int:
        """How many registrants the file holds, over every webinar."""
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT count(*) FROM registrants").fetchone()[0])

    def empty(self) -> int:
        """Remove every registrant (keys once issued stay issued); how many there were."""
        if self._db is None:
            return 0
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            count = self.registrant_count()
            db.execute("DELETE FROM registrants")
            self._bump_removals()
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return count

    def _connected(self) -> sqlite3.Connection:
        """The open file, made now if there is none; a file that cannot be used is an
        :class:`sqlite3.Error`, as any failure of the file during a call is."""
        if self._db is None:
            try:
                self._db = _connect(self.path)
            except OSError as exc:
                raise sqlite3.OperationalError(
                    f"{self.path} cannot be made ({exc.strerror or exc})"
                ) from exc
        return self._db

    def _bump_removals(self) -> None:
        self._connected().execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'removals'"
        )
        self._removals += 1

    def _count(self, name: str) -> int:
        row = self._connected().execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is None:
            return 0
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise Damaged(f"its {name} count is {row[0]!r}, not a number") from None


def _connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the file at ``path``, its tables made if they are missing."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            return _connect_once(path)
        except sqlite3.OperationalError as exc:
            # two processes creating the file at once: SQLite refuses one of them at once
            # (neither could go on while the other waits), so that one tries again
            if not _busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _connect_once(path: Path) -> sqlite3.Connection:
    # made-up people, but a real list may be tried here first: for the user's eyes only
    private_folder(path.parent)
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
        row = connection.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            raise OtherVersion(str(row[0] if row else None))
    except BaseException:
        connection.close()
        raise
    return connection


def _entry(text: object) -> dict[str, Any]:
    """One registrant as the file keeps it, or :class:`Damaged` when it is not one."""
    try:
        entry = json.loads(text) if isinstance(text, str | bytes) else None
    except (ValueError, UnicodeDecodeError):
        entry = None
    if not isinstance(entry, dict):
        raise Damaged(f"a registrant is not a JSON object: {str(text)[:40]!r}")
    wanted = {
        "registrantKey": str,
        "email": str,
        "joinUrl": str,
        "fields": dict,
        "responses": list,
    }
    for name, kind in wanted.items():
        if not isinstance(entry.get(name), kind):
            raise Damaged(f"a registrant's {name} is {entry.get(name)!r}")
    key = entry["registrantKey"]
    if not (key.isascii() and key.isdigit()) or not all(
        isinstance(each, dict) for each in entry["responses"]
    ):
        raise Damaged(f"the registrant {key!r} is malformed")
    return entry


def _busy(exc: sqlite3.Error) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _unusable(path: Path, exc: OSError | sqlite3.Error) -> UsageError:
    """Why the sandbox's file cannot be used, and what to do, in one line."""
    where = f"{path}: the built-in sandbox's registrations"
    if isinstance(exc, OSError):
        return UsageError(
            f"{where} cannot be used ({exc.strerror or exc}); check that {path.parent} is a "
            "folder that can be written to"
        )
    if _busy(exc):
        return UsageError(
            f"{path}: the built-in sandbox is held by another g2w-import that does not let go; "
            "wait for it to finish, or stop it, and run again"
        )
    if isinstance(exc, OtherVersion):
        return UsageError(
            f"{path}: was written by another version of g2w-import (sandbox schema {exc}); "
            f"{RESET_HINT}"
        )
    if isinstance(exc, Damaged):
        return UsageError(f"{where} are damaged ({exc}); {RESET_HINT}")
    if os.path.isdir(path):
        return UsageError(f"{path}: is a folder, not the built-in sandbox's file; {RESET_HINT}")
    if "readonly" in str(exc):
        return UsageError(
            f"{where} cannot be written ({exc}); make the file and its folder writable, or "
            f"{RESET_HINT}"
        )
    return UsageError(f"{where} cannot be used ({exc}); {RESET_HINT}")


@dataclass(frozen=True)
class Reset:
    """What ``g2w-import sandbox reset`` removed."""

    #: None: the file could not be used, and was removed as a whole
    registrants: int | None
    journals: int
    folder: Path


def reset() -> Reset:
    """Empty the in-process sandbox: its registrants and the journals of its runs.

    Refused while a ``--sandbox`` import holds its journal's lock: it would go on registering
    into a sandbox that no longer knows its journal. Every lock an import of the sandbox could
    take is held until the end, so none starts meanwhile. A file that cannot be opened is
    removed as a whole; one that cannot be removed either is left to the user, named.
    """
    journals = journal_folder()
    locks: list[IO[bytes]] = []
    try:
        try:
            names = _journal_names(journals)
        except OSError as exc:
            raise _unreachable(journals, exc) from exc
        for name in names:
            lock = journals / f"{name}.lock"
            try:
                locks.append(take_lock(lock))
            except JournalError:
                raise UsageError(
                    f"a --sandbox import is running (it holds {lock}); stop it, then run "
                    "g2w-import sandbox reset again"
                ) from None
            except OSError as exc:
                raise UsageError(
                    f"{lock}: cannot be locked ({exc.strerror or exc}); remove it by hand, then "
                    "run g2w-import sandbox reset again"
                ) from exc
        # no import of the sandbox can run now: the registrants first, then the journals
        count = _empty_store(store_path())
        found = 0
        for name in names:
            journal = journals / f"{name}.sqlite3"
            try:
                found += _remove(journal)
                for suffix in BESIDE:
                    _remove(journal.with_name(journal.name + suffix))
            except OSError as exc:
                raise UsageError(
                    f"{journal}: the journal cannot be removed ({exc.strerror or exc}); remove "
                    "it by hand, then run g2w-import sandbox reset again"
                ) from exc
    finally:
        for handle in locks:
            handle.close()
    return Reset(count, found, folder())


def _unreachable(journals: Path, exc: OSError) -> UsageError:
    """Why the journals' folder cannot be used, naming what is in the way, in one line."""
    again = "then run g2w-import sandbox reset again"
    for each in (journals, *journals.parents):
        if os.path.lexists(each) and not os.path.isdir(each):
            where = "there" if each == journals else f"within it ({journals})"
            return UsageError(
                f"{each}: is not a folder, but the sandbox keeps its journals {where}; move it "
                f"away, {again}"
            )
    return UsageError(
        f"{journals}: the sandbox's journals cannot be reached ({exc.strerror or exc}); make "
        f"the folder writable, {again}"
    )


def _journal_names(journals: Path) -> list[str]:
    """The name (``<organizer>-<webinar>``) of every journal an import of the sandbox could
    hold, or holds, in ``journals`` (made if missing, to hold their locks in)."""
    private_folder(journals)
    names = {f"{ORGANIZER_KEY}-{key}" for key in catalogue(dt.datetime.now(dt.UTC))}
    for each in journals.iterdir():
        for ending in (".lock", ".sqlite3", *(f".sqlite3{suffix}" for suffix in BESIDE)):
            if each.name.endswith(ending) and len(each.name) > len(ending):
                names.add(each.name[: -len(ending)])
    return sorted(names)


def _empty_store(path: Path) -> int | None:
    """Empty the sandbox's file: how many registrants it held, or None when it could not be
    used and was removed as a whole."""
    try:
        with SandboxStore.open(path) as store:
            return store.empty()
    except (UsageError, sqlite3.Error) as exc:
        cause = exc.__cause__ if isinstance(exc, UsageError) else exc
        if isinstance(cause, OSError) or (isinstance(cause, sqlite3.Error) and _busy(cause)):
            # out of reach, or in use: removing it would not help, or would harm
            if isinstance(exc, UsageError):
                raise
            raise _unusable(path, exc) from exc
        why = cause or exc
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            path.rmdir()  # a folder in its place: removed when empty, never with what it holds
        else:
            path.unlink(missing_ok=True)
        for suffix in BESIDE:
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            todo = "it is a folder that holds files: move it away"
        else:
            todo = "make it and its folder writable, or remove it by hand"
        raise UsageError(
            f"{path}: the built-in sandbox's file cannot be used ({why}) nor removed "
            f"({exc.strerror or exc}); {todo}, then run g2w-import sandbox reset again"
        ) from exc
    return None


def _remove(path: Path) -> int:
    """Remove a file (or a folder in its place); 1 when there was one."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
        return 1
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
