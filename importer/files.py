"""Writing files so that a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

#: temporary files being written now, for :func:`abandon` to remove
_WRITING: set[Path] = set()


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Have ``write`` fill a temporary file beside ``path``, flush it to disk, rename it over.

    Raises ``OSError`` (``PermissionError`` when ``path`` is locked, as Excel locks an open
    file on Windows); the temporary file is removed whatever happens.
    """
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    temp = Path(name)
    _WRITING.add(temp)
    try:
        write(temp)
        with temp.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
        _WRITING.discard(temp)


def abandon() -> None:
    """Remove the temporary files being written now, before the process stops at once."""
    for temp in list(_WRITING):
        temp.unlink(missing_ok=True)
