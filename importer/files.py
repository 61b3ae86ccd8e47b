"""Writing files so that a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

#: temporary files being written now, for :func:`abandon` to remove
_WRITING: set[Path] = set()


#: errno values of a write that found no room: a full disk, a file size limit, a disk quota
NO_SPACE = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})


def write_atomically(path: Path, write: Callable[[Path], None], *, private: bool = False) -> None:
    """Have ``write`` fill a temporary file beside ``path``, flush it to disk, rename it over.

    The file ends with the permissions the user's umask gives new files (colleagues on a
    shared folder open reports and templates), or readable by the user alone when
    ``private``; it is private while it is written. Raises ``OSError`` (``PermissionError``
    when ``path`` is locked, as Excel locks an open file on Windows); the temporary file is
    removed whatever happens.
    """
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    temp = Path(name)
    _WRITING.add(temp)
    try:
        write(temp)
        if not private:
            os.chmod(temp, 0o666 & ~_umask())
        with temp.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
        _WRITING.discard(temp)


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def writing(temp: Path) -> None:
    """Note ``temp`` as a temporary file being written now (:func:`abandon` removes it)."""
    _WRITING.add(temp)


def written(temp: Path) -> None:
    """``temp`` is gone or no longer temporary."""
    _WRITING.discard(temp)


def abandon() -> None:
    """Remove the temporary files being written now, before the process stops at once."""
    for temp in list(_WRITING):
        temp.unlink(missing_ok=True)
