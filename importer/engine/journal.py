"""The journal: an SQLite record of every person's state for one webinar, the run's truth.

A row moves ``todo → sending → registered | already_registered | failed``. ``sending`` is
committed *before* the create call and the answer after it, so a kill at any instant leaves an
exact record: a ``sending`` row is one whose outcome is unknown, to be settled from the webinar's
registrant list before it is ever sent again. SQLite runs in WAL mode with ``synchronous=FULL``:
a committed state survives a power cut.

A run sending many rows stages these writes and commits them together (group commit): the
worker whose create is next commits every write staged so far, its own ``sending`` among them,
before its call leaves; the workers whose marks that commit carried send without one. A staged
answer is lost only with the process, and leaves its row ``sending``, which the next run looks
up in the registrant list as it does any row of unknown outcome.

Cancelling works the same way: ``cancelling`` is committed before the DELETE call and
``cancelled`` after it, and ``prior`` keeps the state the cancellation started from (whether this
tool registered the person), for a cancellation that does not happen and for ``undo``. A
``cancelled`` person counts as not sent: registering them again sends them again.

One journal per organizer and webinar, whatever the input file is called, so that running the
same import again finds it. A lock file beside it keeps a second process out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO

from importer import files
from importer.errors import JournalError, JournalFull
from importer.files import NO_SPACE, data_folder
from importer.goto import provenance
from importer.goto.provenance import ServerClock
from importer.model import ListedRegistrant, Registrant, Result, Status, Webinar, email_key

SCHEMA_VERSION = "5"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    email_key       TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    line            INTEGER NOT NULL,
    state           TEXT NOT NULL,
    registrant_key  TEXT,
    join_url        TEXT,
    error           TEXT,
    retry           INTEGER NOT NULL DEFAULT 0,
    body_hash       TEXT NOT NULL,
    updated         TEXT NOT NULL,
    approval        TEXT,
    prior           TEXT,
    sent_at         REAL,
    clock_low       REAL,
    names           TEXT
);
"""
#: columns added since schema 1, added to an older journal when it is opened
_ADDED = {
    "approval": "TEXT",
    "prior": "TEXT",
    "sent_at": "REAL",
    "clock_low": "REAL",
    "names": "TEXT",
}


class State(enum.StrEnum):
    """Where one person stands in the journal."""

    TODO = "todo"
    SENDING = "sending"
    REGISTERED = "registered"
    ALREADY_REGISTERED = "already_registered"
    FAILED = "failed"
    DENIED = "denied"
    #: a cancellation committed before its DELETE call, and one that went through
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


_SETTLED = {
    State.REGISTERED: Status.REGISTERED,
    State.ALREADY_REGISTERED: Status.ALREADY_REGISTERED,
    State.FAILED: Status.FAILED,
    State.DENIED: Status.DENIED,
}

_STATE_OF = {status: state for state, status in _SETTLED.items()}
#: the states of a person who may be registered (or cancelled) without the journal knowing
UNKNOWN = (State.SENDING, State.CANCELLING)
#: what SQLite keeps beside a database file: its write-ahead log, shared memory, rollback
BESIDE = ("-wal", "-shm", "-journal")


def _state_of(result: Result) -> State:
    """The journal state of a settled row: whose registration it is, kept apart from whether
    the organizer has approved it yet (``approval``)."""
    if result.status is Status.WAITING_APPROVAL:
        return State.REGISTERED if result.ours else State.ALREADY_REGISTERED
    return _STATE_OF[result.status]


@dataclass(frozen=True)
class Entry:
    """One person as the journal holds them, for cancellations."""

    email_key: str
    email: str
    line: int
    state: State
    registrant_key: str | None
    join_url: str | None
    #: while ``cancelling`` or once ``cancelled``: the state the cancellation started from
    prior: State | None = None
    #: when the create call for this person last left (this computer's clock, seconds since
    #: the epoch): a ``sending`` row is this tool's registration only if GoTo's
    #: ``registrationDate`` is not earlier (see :mod:`importer.goto.provenance`)
    sent_at: float | None = None
    #: GoTo's clock minus this computer's (its lower bound) when that call left, if known
    clock_low: float | None = None
    #: a fingerprint of the names that call sent (:func:`~importer.goto.provenance.names_of`)
    names: str | None = None


@dataclass(frozen=True)
class Forgotten:
    """What :meth:`Journal.forget` did."""

    #: the e-mail keys of the people removed
    removed: list[str]
    #: those kept: their outcome is unknown (see :meth:`Journal.holds_unknown`)
    kept: list[str]


@dataclass(frozen=True)
class Admission:
    """What the journal already knows of a plan's registrants."""

    #: rows to send: never sent, of unknown outcome, or worth another try
    to_send: list[Registrant]
    #: rows settled by an earlier run, by input line
    settled: dict[int, Result]
    #: how many of the rows to send may have been registered by an earlier run (``sending``)
    unknown: int = 0


def default_path(organizer_key: str, webinar_key: str, folder: Path | None = None) -> Path:
    """Where the journal of a webinar lives unless ``--journal`` says otherwise: in ``folder``,
    or in the user's data folder."""
    return (folder or data_folder() / "journals") / f"{organizer_key}-{webinar_key}.sqlite3"


def webinar_journal(
    organizer_key: str, webinar_key: str, *, folder: Path | None, path: Path | None = None
) -> Journal:
    """Open the journal of a webinar: at ``path``, or its default place in ``folder`` (the
    user's data folder when None), locked for this organizer and webinar."""
    where = path or default_path(organizer_key, webinar_key, folder)
    locks = folder or data_folder() / "locks"
    if path is None:  # the tool's own folders: their file names say which webinars it knows
        with contextlib.suppress(OSError):  # Journal.open says why, if it cannot go on
            files.private_folder(where.parent)
            files.private_folder(locks)
    return Journal.open(where, organizer_key=organizer_key, webinar_key=webinar_key, locks=locks)


def body_hash(registrant: Registrant) -> str:
    """A fingerprint of what would be sent for this person."""
    text = json.dumps(registrant.body(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Journal:
    """The open, locked journal of one webinar."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock: IO[bytes]) -> None:
        self.path = path
        self._db = connection
        self._lock = lock
        #: writes staged for the next commit: the parameters of ``_UPDATE``
        self._staged: list[tuple[object, ...]] = []
        #: how many batches of staged writes were committed: a write staged as batch n is on
        #: disk once this exceeds n
        self.batches = 0
        self._closed = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        organizer_key: str,
        webinar_key: str,
        locks: Path | None = None,
        create: bool = True,
    ) -> Journal:
        """Open (or create) the journal at ``path`` and take the webinar's lock.

        The lock is one per organizer and webinar, in ``locks`` (default: the user's data
        folder), whatever the journal is called: two imports of one webinar never run at once,
        even with two ``--journal`` paths. A file that is not a journal is left as it was.
        Without ``create``, only a journal that is there is opened (forgetting makes none).
        """
        lock_file = (locks or path.parent) / f"{organizer_key}-{webinar_key}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            lock = take_lock(lock_file)
            if not path.exists():
                if not create:
                    lock.close()
                    raise JournalError(f"{path}: is gone already")
                # names and e-mail addresses: for the user's eyes only, from the first byte
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise _full(path, exc.strerror or str(exc)) from exc
            raise JournalError(
                f"{path}: the journal cannot be created ({exc.strerror}); "
                "choose another place with --journal"
            ) from exc
        if not path.is_file():  # a folder, a pipe, a device: reading it could wait for ever
            lock.close()
            raise JournalError(f"{path}: is not a file; name a journal file with --journal")
        connection: sqlite3.Connection | None = None
        try:
            other = cls._other_tables(path)
            if other is not None:
                raise JournalError(
                    f"{path}: is not a g2w-import journal but another SQLite database (tables: "
                    f"{', '.join(sorted(other)) or 'none'}), left untouched; choose another path "
                    "with --journal"
                )
            connection = sqlite3.connect(path, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            # what is deleted or replaced is overwritten with zeros, not left in freed pages
            connection.execute("PRAGMA secure_delete=ON")
            connection.executescript(_SCHEMA)
            journal = cls(path, connection, lock)
            journal._claim(organizer_key, webinar_key)
        except (sqlite3.DatabaseError, JournalError, JournalFull) as exc:
            if connection is not None:
                connection.close()
            lock.close()
            if isinstance(exc, JournalError | JournalFull):
                raise
            if _no_room(exc):
                raise _full(path, str(exc)) from exc
            raise JournalError(
                f"{path}: is not a usable journal ({exc}); if --journal names another file, "
                "name a new one; if it is a damaged journal, move it away and run again "
                "(people already registered are then found in the webinar's registrant list)"
            ) from exc
        return journal

    def close(self) -> None:
        """Commit what is staged, then release the database and the lock (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            # answers that cannot be committed now leave their rows ``sending``: the next run
            # settles them from the registrant list, and the run has stopped already
            with contextlib.suppress(JournalFull):
                self.commit()
        finally:
            try:
                self._db.close()
            finally:
                self._lock.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _claim(self, organizer_key: str, webinar_key: str) -> None:
        wanted = {"schema": SCHEMA_VERSION, "organizer": organizer_key, "webinar": webinar_key}
        found = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if not found:  # a new journal, or tables without a record of their version
            self._upgrade()
            with self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", wanted.items())
            return
        if (found.get("organizer"), found.get("webinar")) != (organizer_key, webinar_key):
            raise JournalError(
                f"{self.path}: this journal belongs to webinar {found.get('webinar')} of "
                f"organizer {found.get('organizer')}; name another with --journal"
            )
        self._upgrade()  # any columns missing (cheap: one look at the table's columns)

    @staticmethod
    def _other_tables(path: Path) -> set[str] | None:
        """The tables of a database at ``path`` that is not a journal; None for a journal, or
        for a file with nothing in it yet (which becomes one). Read without writing a byte,
        before anything would create the journal's tables in another program's database."""
        first = {"email_key", "email", "line", "state", "registrant_key", "join_url"}
        first |= {"error", "retry", "body_hash", "updated"}  # the people columns of schema 1
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            names = db.execute(
                "SELECT type, name FROM sqlite_master WHERE substr(name, 1, 7) != 'sqlite_'"
            ).fetchall()
            tables = {name for kind, name in names if kind == "table"}
            if not names or not {"meta", "people"} <= tables:
                return tables if names else None
            meta = {row[1] for row in db.execute("PRAGMA table_info(meta)")}
            people = {row[1] for row in db.execute("PRAGMA table_info(people)")}
            if not ({"name", "value"} <= meta and first <= people):
                return tables
            said = dict(db.execute("SELECT name, value FROM meta").fetchall())
        return tables if said and not {"organizer", "webinar"} <= said.keys() else None

    def _upgrade(self) -> None:
        """Bring a journal written by an earlier version up to this schema."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(people)")}
        schema = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if _ADDED.keys() <= columns and schema == (SCHEMA_VERSION,):
            return
        with self._transaction():
            for name, kind in _ADDED.items():
                if name not in columns:
                    self._db.execute(f"ALTER TABLE people ADD COLUMN {name} {kind}")
            self._db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (SCHEMA_VERSION,))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; a journal that cannot be written (a full disk, a file size
        limit, an I/O error) raises :class:`JournalFull`, having written nothing of it."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if not _no_room(exc):
                raise
            with contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:  # SQLite may have rolled it back itself
                    self._db.execute("ROLLBACK")
            raise _full(self.path, str(exc)) from exc

    def admit(self, registrants: Iterable[Registrant]) -> Admission:
        """Record new people as ``todo`` and sort everyone into sent and still to send.

        A row that failed is tried again when its failure may pass (it ran out of retries) or
        when the row itself has changed since GoTo refused it.
        """
        known = {
            row[0]: row
            for row in self._db.execute(
                "SELECT email_key, state, registrant_key, join_url, error, retry, body_hash, "
                "prior, approval FROM people"
            )
        }
        to_send: list[Registrant] = []
        settled: dict[int, Result] = {}
        unknown = 0
        now = _now()
        with self._transaction():
            for person in registrants:
                fingerprint = body_hash(person)
                row = known.get(person.email_key)
                if row is None:
                    self._db.execute(
                        "INSERT INTO people (email_key, email, line, state, body_hash, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (person.email_key, person.email, person.line, State.TODO, fingerprint, now),
                    )
                    to_send.append(person)
                    continue
                _, state, key, url, error, retry, old_fingerprint, prior, approval = row
                self._db.execute(
                    "UPDATE people SET line = ? WHERE email_key = ?",
                    (person.line, person.email_key),
                )
                if _stays_settled(State(state), retry, fingerprint != old_fingerprint):
                    settled[person.line] = _settled_row(
                        person.line, State(state), key, url, error, approval
                    )
                elif state == State.CANCELLING:
                    # an interrupted cancellation: the registrant list settles whether the person
                    # is still registered, and as this tool's registration if it was one
                    ours = prior == State.REGISTERED
                    if ours:  # its key stays: the proof that the registration is this tool's
                        self._write(_values(person.email_key, State.SENDING, key=key))
                    else:
                        self._set(person.email_key, State.TODO)
                    to_send.append(person)
                    unknown += ours
                elif state in (State.TODO, State.SENDING):
                    to_send.append(person)
                    unknown += state == State.SENDING
                else:  # cancelled since, or failed and worth another try
                    self._set(person.email_key, State.TODO, body_hash=fingerprint)
                    to_send.append(person)
        return Admission(to_send, settled, unknown)

    def settled(self, registrants: Iterable[Registrant]) -> dict[int, Result]:
        """The rows of ``registrants`` that earlier runs settled, as :meth:`admit` sorts them,
        read without writing anything: what a run that stopped before admitting its rows (its
        look-ups failed) still knows of them."""
        known = {
            row[0]: row
            for row in self._db.execute(
                "SELECT email_key, state, registrant_key, join_url, error, retry, body_hash, "
                "approval FROM people"
            )
        }
        settled: dict[int, Result] = {}
        for person in registrants:
            row = known.get(person.email_key)
            if row is None:
                continue
            _, state, key, url, error, retry, fingerprint, approval = row
            if _stays_settled(State(state), retry, body_hash(person) != fingerprint):
                settled[person.line] = _settled_row(
                    person.line, State(state), key, url, error, approval
                )
        return settled

    def remember(self, webinar: Webinar) -> None:
        """Keep the webinar's subject and when its last session ends, for the list of journals
        and for removing the journal once the webinar is long over (read without GoTo)."""
        last = webinar.last_moment()
        facts = {"subject": webinar.subject, "ends": last.isoformat() if last else ""}
        known = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if all(known.get(name) == value for name, value in facts.items()):
            return
        with contextlib.suppress(JournalFull), self._transaction():  # only for the list
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", facts.items())

    def forget(
        self, email_keys: Iterable[str], *, force: bool = False, traces: bool = False
    ) -> Forgotten:
        """Remove these people's rows (a row of unknown outcome only with ``force``), then
        rebuild the file so that nothing of them is left in it or beside it; with ``traces``
        the file is rebuilt even when no row is removed (what an earlier removal that could
        not rebuild it left in its free pages).

        Raises :class:`JournalError` before anything is removed when another program has the
        journal open (the rebuilt file could not replace what it reads), and
        :class:`JournalFull` when the file could not be rebuilt after the rows were removed.
        """
        wanted = set(email_keys)
        found = {
            key: str(state)
            for key, state in self._db.execute("SELECT email_key, state FROM people")
            if key in wanted
        }
        unsure = {key for key, state in found.items() if state in UNKNOWN}
        removed = sorted(found.keys() - (set() if force else unsure))
        if removed or traces:
            self.commit()
            self._checkpoint()  # nobody else reading: or the old pages would stay
            if removed:
                with self._transaction():
                    self._db.executemany(
                        "DELETE FROM people WHERE email_key = ?", [(key,) for key in removed]
                    )
            self._compact()
        return Forgotten(removed, sorted(unsure - set(removed)))

    def _checkpoint(self) -> None:
        """Fold the write-ahead log into the file and empty it; :class:`JournalError` when
        another program reading the journal holds some of it back."""
        busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise JournalError(
                f"{self.path}: another program has the journal open (a database browser, a "
                "backup); close it and try again"
            )

    def remove(self, *, force: bool = False) -> bool:
        """Delete the journal and what SQLite keeps beside it, then release its lock; False
        (nothing changed, still open) when it holds rows of unknown outcome and not ``force``.

        Everything is first folded into the journal file itself, which is then deleted in one
        step: a crash at any moment leaves the journal whole, or gone.
        """
        if not force and self.holds_unknown():
            return False
        self.commit()
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._closed = True
        self._db.close()
        try:
            self.path.unlink(missing_ok=True)
            for ending in BESIDE:
                Path(f"{self.path}{ending}").unlink(missing_ok=True)
        finally:
            self._lock.close()
        return True

    def _compact(self) -> None:
        """Rebuild the file without its free pages, and empty the write-ahead log; raises
        :class:`JournalFull` when it cannot be done (no room, another program reading)."""
        try:
            self._db.execute("VACUUM")
            self._checkpoint()
        except (sqlite3.Error, JournalError) as exc:
            raise JournalFull(
                f"{self.path}: removed from the journal, but its file could not be rebuilt "
                f"({exc}), so it may still hold them in its free space; run the same forget "
                "again once that is mended"
            ) from exc

    def unfinished(self, operation: str) -> bool:
        """Whether a run of ``operation`` (``register``, ``cancel``, ``undo``) began its calls
        and stopped before every one was settled: the next run of it resumes that work."""
        query = "SELECT 1 FROM meta WHERE name = ?"
        return self._db.execute(query, (f"unfinished {operation}",)).fetchone() is not None

    def mark_unfinished(self, operation: str, unfinished: bool) -> None:
        """Commit that a run of ``operation`` is about to make its calls (``unfinished``), or
        has settled every one."""
        name = f"unfinished {operation}"
        with self._transaction():
            if unfinished:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", (name,))
            else:
                self._db.execute("DELETE FROM meta WHERE name = ?", (name,))

    def holds_unknown(self) -> bool:
        """Whether anyone may have been registered by an earlier run without the journal
        knowing (``sending``, or a cancellation under way)."""
        query = "SELECT 1 FROM people WHERE state IN (?, ?) LIMIT 1"
        return self._db.execute(query, UNKNOWN).fetchone() is not None

    def sending(self, registrant: Registrant, clock_low: float | None = None) -> None:
        """Commit, before the call, that this person is being sent (``clock_low``: GoTo's
        clock against this computer's, as measured now)."""
        self.commit(self.stage_sending(registrant, clock_low))

    def settle(self, registrant: Registrant, result: Result) -> None:
        """Commit the outcome of sending this person, as soon as it is known."""
        self.commit(self.stage_settled(registrant, result))

    def stage_sending(self, registrant: Registrant, clock_low: float | None = None) -> int:
        """Stage that this person is being sent; returns the batch that will commit it, for
        :meth:`commit` before the call leaves. The time of that commit is kept as when the
        call left, with ``clock_low``, GoTo's clock against this computer's then."""
        fingerprint = body_hash(registrant)
        return self._stage(
            _values(
                registrant.email_key,
                State.SENDING,
                body_hash=fingerprint,
                sent_at=_LEAVING,
                clock_low=clock_low,
                names=provenance.names_of(registrant.first_name, registrant.last_name),
            )
        )

    def stage_leaving(self, registrant: Registrant, clock_low: float | None = None) -> int:
        """Stage that a further attempt for a person ``sending`` leaves now (after a 429, or
        after the list showed that the last attempt did not arrive)."""
        return self._stage(
            _values(registrant.email_key, State.SENDING, sent_at=_LEAVING, clock_low=clock_low)
        )

    def stage_unsent(self, registrant: Registrant) -> int:
        """Stage that no call for a person ``sending`` is under way after all: the last was
        refused (429) or never sent, or the run ended before its turn. Back to ``todo``."""
        return self._stage(_values(registrant.email_key, State.TODO))

    def stage_key_seen(self, registrant: Registrant, registrant_key: str) -> int:
        """Stage, for a row still ``sending``, the registrant key an answer to this tool's call
        gave: proof that the registration is this tool's, whatever the list says later."""
        return self._stage(_values(registrant.email_key, State.SENDING, key=registrant_key))

    def stage_settled(self, registrant: Registrant, result: Result) -> int:
        """Stage the outcome of sending this person, for the next commit."""
        return self._stage(_outcome(registrant.email_key, result))

    def commit(self, batch: int | None = None) -> None:
        """Commit every staged write in one transaction; with ``batch``, only if that batch is
        not committed yet."""
        if not self._staged or (batch is not None and batch < self.batches):
            return
        staged, self._staged = self._staged, []
        now, leaving = _now(), provenance.now()
        rows = [
            (*(leaving if value is _LEAVING else value for value in values), now, key)
            for *values, key in staged
        ]
        with self._transaction():
            self._db.executemany(_UPDATE, rows)
        self.batches += 1

    def _stage(self, values: tuple[object, ...]) -> int:
        self._staged.append(values)
        return self.batches

    def _record(self, email_key: str, result: Result) -> None:
        self._write(_outcome(email_key, result))

    def reconcile(
        self,
        registrants: Iterable[Registrant],
        listed: Mapping[str, ListedRegistrant],
        clock: ServerClock,
    ) -> tuple[list[Registrant], dict[int, Result]]:
        """Settle rows from the webinar's registrant list (by e-mail key).

        A person in the list is registered: by this tool if the row was ``sending`` and the
        registration is proven this tool's (:func:`~importer.goto.provenance.verdict`), by someone
        else otherwise; one the organizer declined is ``denied``. A ``sending`` row not in the
        list was never received and goes back to ``todo``. Returns the rows still to send and
        the rows settled now.
        """
        rows = self._db.execute(
            "SELECT email_key, state, registrant_key, sent_at, clock_low, names FROM people"
        )
        known = {key: tuple(rest) for key, *rest in rows}
        still: list[Registrant] = []
        settled: dict[int, Result] = {}
        with self._transaction():
            for person in registrants:
                found = listed.get(person.email_key)
                state, seen, sent_at, low, names = known.get(person.email_key, (None,) * 5)
                if found is None:
                    if state == State.SENDING:
                        self._set(person.email_key, State.TODO)
                    still.append(person)
                    continue
                status = Status.ALREADY_REGISTERED
                if state == State.SENDING:
                    proof = provenance.verdict(
                        found,
                        sent_at,
                        clock,
                        key_seen=seen,
                        clock_low=low,
                        measured=True,
                        names=names,
                    )
                    status = Status.REGISTERED if proof.ours else Status.ALREADY_REGISTERED
                result = Result.settled(
                    person.line, status, found.registrant_key, found.join_url, found.status
                )
                self._record(person.email_key, result)
                settled[person.line] = result
        return still, settled

    def entries(self) -> dict[str, Entry]:
        """Everyone the journal holds, by e-mail key, in the order of their input lines."""
        rows = self._db.execute(
            "SELECT email_key, email, line, state, registrant_key, join_url, prior, sent_at, "
            "clock_low, names FROM people ORDER BY line"
        )
        return {
            key: Entry(
                key,
                email,
                line,
                State(state),
                registrant_key,
                url,
                State(prior) if prior else None,
                sent_at,
                low,
                names,
            )
            for key, email, line, state, registrant_key, url, prior, sent_at, low, names in rows
        }

    def cancelling(
        self, email: str, line: int, registrant_key: str, join_url: str | None, prior: State
    ) -> None:
        """Commit, before the call, that this registration is being cancelled; ``prior`` is the
        state the person goes back to if it is not."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO people (email_key, email, line, state, registrant_key, join_url, "
                "body_hash, updated, prior) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?) "
                "ON CONFLICT (email_key) DO UPDATE SET state = excluded.state, "
                "registrant_key = excluded.registrant_key, join_url = excluded.join_url, "
                "error = NULL, updated = excluded.updated, prior = excluded.prior",
                (
                    email_key(email),
                    email,
                    line,
                    State.CANCELLING,
                    registrant_key,
                    join_url,
                    _now(),
                    prior,
                ),
            )

    def cancelled(self, email_key: str) -> None:
        """Commit that the registration is cancelled (``prior`` is kept, for ``undo``; a
        registration found gone without a call of ours has its own state as ``prior``)."""
        with self._transaction():
            self._db.execute(
                "UPDATE people SET state = ?, prior = COALESCE(prior, state), updated = ? "
                "WHERE email_key = ?",
                (State.CANCELLED, _now(), email_key),
            )

    def resolve(self, email_key: str, ours: bool | None, found: ListedRegistrant | None) -> None:
        """Commit what the registrant list proved of a row of unknown outcome (``sending``):
        registered by this tool (``ours``), by someone else, or (``found`` None) not at all."""
        if found is None:
            state, key, url, approval = State.TODO, None, None, None
        else:
            state = State.REGISTERED if ours else State.ALREADY_REGISTERED
            key, url, approval = found.registrant_key, found.join_url, found.status
        with self._transaction():
            self._db.execute(
                "UPDATE people SET state = ?, registrant_key = ?, join_url = ?, approval = ?, "
                "updated = ? WHERE email_key = ? AND state = ?",
                (state, key, url, approval, _now(), email_key, State.SENDING),
            )

    def kept(self, email_key: str) -> None:
        """Commit that a cancellation did not happen: the person is registered as before."""
        with self._transaction():
            self._db.execute(
                "UPDATE people SET state = COALESCE(prior, ?), prior = NULL, updated = ? "
                "WHERE email_key = ? AND state = ?",
                (State.ALREADY_REGISTERED, _now(), email_key, State.CANCELLING),
            )

    def _set(self, email_key: str, state: State, *, body_hash: str | None = None) -> None:
        self._write(_values(email_key, state, body_hash=body_hash))

    def _write(self, values: tuple[object, ...]) -> None:
        *fields, email_key = values
        self._db.execute(_UPDATE, (*fields, _now(), email_key))


#: one person's state and what goes with it; the parameters are those of :func:`_values`, with
#: the time of the write before the e-mail key
_UPDATE = (
    "UPDATE people SET state = ?, registrant_key = ?, join_url = ?, error = ?, retry = ?, "
    "body_hash = COALESCE(?, body_hash), approval = ?, sent_at = COALESCE(?, sent_at), "
    "clock_low = COALESCE(?, clock_low), names = COALESCE(?, names), prior = NULL, "
    "updated = ? WHERE email_key = ?"
)


def _values(
    email_key: str,
    state: State,
    *,
    key: str | None = None,
    url: str | None = None,
    error: str | None = None,
    retry: bool = False,
    body_hash: str | None = None,
    approval: str | None = None,
    sent_at: object = None,
    clock_low: float | None = None,
    names: str | None = None,
) -> tuple[object, ...]:
    """The parameters of ``_UPDATE`` but its time, the e-mail key last."""
    return (
        state,
        key,
        url,
        error,
        int(retry),
        body_hash,
        approval,
        sent_at,
        clock_low,
        names,
        email_key,
    )


def _outcome(email_key: str, result: Result) -> tuple[object, ...]:
    return _values(
        email_key,
        _state_of(result),
        key=result.registrant_key,
        url=result.join_url,
        error=result.error,
        retry=result.retryable,
        approval=result.approval,
    )


#: in a staged write: the time of the commit that writes it, which is when its call leaves
_LEAVING = object()


def _stays_settled(state: State, retry: object, changed: bool) -> bool:
    """Whether a row in ``state`` is not sent again: not while its outcome is open (``todo``,
    ``sending``, ``cancelling``), nor once cancelled, nor failed where the failure may pass (it
    ran out of retries) or the row has changed since GoTo refused it."""
    if state in (State.TODO, State.SENDING, State.CANCELLING, State.CANCELLED):
        return False
    return not (state == State.FAILED and (retry or changed))


def _settled_row(
    line: int,
    state: State,
    key: str | None,
    url: str | None,
    error: str | None,
    approval: str | None,
) -> Result:
    """A row an earlier run settled, as the journal holds it."""
    status = _SETTLED[state]
    if key is None or status not in (Status.REGISTERED, Status.ALREADY_REGISTERED):
        return Result(line, status, key, url, error, approval=approval, ours=False)
    result = Result.settled(line, status, key, url, approval)
    if error and result.status in (Status.REGISTERED, Status.ALREADY_REGISTERED):
        result = replace(result, error=error)  # a note of its own: e.g. corrected from the list
    return result


def _no_room(exc: sqlite3.Error) -> bool:
    """Whether SQLite could not write: SQLITE_FULL, or an I/O error (a write that a file size
    limit cut short is an I/O error to SQLite)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return "disk is full" in str(exc) or "disk I/O error" in str(exc)
    return code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)


def _full(path: Path, reason: str) -> JournalFull:
    return JournalFull(
        f"the journal {path} could not be written ({reason}); free some space there, or move "
        "its folder and name the journal with --journal (nobody is sent twice)"
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def take_lock(path: Path) -> IO[bytes]:
    """An exclusive lock held for as long as the returned file is open (released on any exit)."""
    handle = files.lock(path)
    if handle is None:
        raise JournalError(
            f"another import for this webinar is running (it holds {path}); "
            "wait for it to finish, or stop it, and run again"
        )
    return handle
