"""Files: the user's data folder, writing a file so that a crash leaves the old one or the new
one, and temporary files that never outlive a run.

Every temporary file the tool makes (a report being written, the rows XlsxWriter keeps until
a workbook is saved, a check that a folder takes files) is noted twice: in this process, to be
removed at any exit Python sees, and in a record in the data folder's ``running`` folder,
locked while the process lives. A process killed outright (SIGKILL, a power cut) leaves its
record unlocked, and the next start of any command removes what it lists (:func:`sweep`).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

#: temporary files being written now, for :func:`abandon` to remove
_WRITING: set[Path] = set()
#: this process's record of its temporary files, locked while it lives (made on first use)
_record: IO[bytes] | None = None
_record_path: Path | None = None
#: this process's folder for temporary files (made on first use)
_temp: Path | None = None
_RECORDS = "running"
_TEMP = "temp"
#: how the name of every temporary file made beside another file begins
_HIDDEN = ".g2w-"


#: errno values of a write that found no room: a full disk, a file size limit, a disk quota
NO_SPACE = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})


def data_folder() -> Path:
    """The user's data folder for this tool (journals, locks, the page's folder, the sandbox):
    ``~/.local/share/g2w-import`` on Linux."""
    import platformdirs

    return Path(platformdirs.user_data_dir("g2w-import", appauthor=False))


def lock(path: Path, *, create: bool = True) -> IO[bytes] | None:
    """An exclusive lock on ``path`` (created, private, unless not ``create``: then it must be
    a file there already, not a link), held for as long as the returned file is open and
    released on any exit of the process; None when another process holds it."""
    flags = os.O_RDWR | (os.O_CREAT if create else getattr(os, "O_NOFOLLOW", 0))
    handle = os.fdopen(os.open(path, flags, 0o600), "a+b")
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def private_folder(folder: Path) -> Path:
    """``folder``, created if need be, readable and writable by the user alone, as is each
    folder made on the way to it. Raises ``OSError``."""
    for each in reversed([each for each in (folder, *folder.parents) if not each.exists()]):
        each.mkdir(mode=0o700, exist_ok=True)
    if os.name == "posix":
        os.chmod(folder, 0o700)
    return folder


def temp_folder() -> Path | None:
    """This process's own private folder for temporary files that need not sit beside what
    they become (the rows of a workbook being written, the parts of one being packed), rather
    than the system's shared one; removed at exit, or by the next start after a kill. None
    where the data folder cannot be made."""
    global _temp
    if _temp is None or not _temp.is_dir():
        record = _own_record()
        if record is None or _record_path is None:
            return None
        try:
            folder = private_folder(data_folder() / _TEMP / _record_path.stem)
        except OSError:
            return None
        _note(record, folder)
        _temp = folder
    return _temp


def write_atomically(path: Path, write: Callable[[Path], None], *, private: bool = False) -> None:
    """Have ``write`` fill a temporary file beside ``path``, flush it to disk, rename it over.

    The file ends with the permissions the user's umask gives new files (colleagues on a
    shared folder open reports and templates), or readable by the user alone when
    ``private``; it is private while it is written. Raises ``OSError`` (``PermissionError``
    when ``path`` is locked, as Excel locks an open file on Windows); the temporary file is
    removed whatever happens.
    """
    temp = temporary(path.parent, f"{path.stem}.", path.suffix)
    try:
        write(temp)
        if not private:
            os.chmod(temp, 0o666 & ~_umask())
        with temp.open("rb+") as written_file:
            os.fsync(written_file.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
        written(temp)


def temporary(folder: Path, prefix: str, suffix: str = "") -> Path:
    """A new, empty temporary file in ``folder``, readable by the user alone, hidden and named
    ``.g2w-PREFIX…SUFFIX``, noted so that it does not outlive the run (see the module's
    description). Raises ``OSError``."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=f"{_HIDDEN}{prefix}", suffix=suffix)
    os.close(handle)
    temp = Path(name)
    writing(temp)
    return temp


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def writing(temp: Path) -> None:
    """Note ``temp`` as a temporary file being written now (:func:`abandon` removes it, and
    the next start of the tool if this process is killed)."""
    _WRITING.add(temp)
    record = _own_record()
    if record is not None:
        _note(record, temp)


def _note(record: IO[bytes], path: Path) -> None:
    """Add ``path`` to this process's record."""
    # not synced: a killed process's writes are in the system's cache all the same
    with contextlib.suppress(OSError):
        record.write(os.fsencode(path.absolute()) + b"\n")
        record.flush()


def written(temp: Path) -> None:
    """``temp`` is gone or no longer temporary."""
    _WRITING.discard(temp)


def abandon() -> None:
    """Remove the temporary files being written now, before the process stops at once."""
    for temp in list(_WRITING):
        temp.unlink(missing_ok=True)
        _WRITING.discard(temp)


def _own_record() -> IO[bytes] | None:
    """This process's record of its temporary files: made and locked on first use; None where
    the data folder cannot be made (the files are still removed at any exit Python sees)."""
    global _record, _record_path
    if _record is None:
        try:
            folder = private_folder(data_folder() / _RECORDS)
            path = folder / f"{os.getpid()}-{secrets.token_hex(4)}.txt"
            _record = lock(path)
        except OSError:
            return None
        if _record is not None:
            _record_path = path
            atexit.register(_finish)
    return _record


def _finish() -> None:
    """At exit: remove what is still temporary, then this process's record."""
    global _record, _record_path, _temp
    abandon()
    if _temp is not None:
        shutil.rmtree(_temp, ignore_errors=True)
        _temp = None
    if _record is not None and _record_path is not None:
        _record.close()
        with contextlib.suppress(OSError):
            _record_path.unlink()
    _record = _record_path = None


def sweep() -> int:
    """Remove the temporary files of processes that were killed before they could, as their
    records list them; how many were removed. Quiet: a record in use, unreadable, or listing a
    file that is gone or no longer temporary is passed over."""
    removed = 0
    try:
        records = list((data_folder() / _RECORDS).glob("*.txt"))
    except OSError:
        return 0
    for path in records:
        if path == _record_path:
            continue
        try:
            held = lock(path, create=False)
        except OSError:  # gone meanwhile, or not a plain file
            continue
        if held is None:  # its process is still running
            continue
        try:
            with held:
                held.seek(0)
                listed = held.read().splitlines()
            own = data_folder() / _TEMP / path.stem  # the dead process's folder
            for line in listed:
                temp = Path(os.fsdecode(line))
                if temp.is_symlink():
                    continue
                if temp == own and temp.is_dir():
                    shutil.rmtree(temp, ignore_errors=True)
                    removed += 1
                # only files named as this tool names its temporary files: a record that
                # lists anything else is not followed
                elif temp.name.startswith(_HIDDEN) and temp.is_file():
                    temp.unlink()
                    removed += 1
            path.unlink()
        except OSError:
            continue
    return removed
