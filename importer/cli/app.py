"""The downloadable app's start (``.ci/build-app``): a double-click, which gives it no
arguments, opens the page in the default browser; with arguments it is the ``g2w-import``
command."""

from __future__ import annotations

import contextlib
import os
import sys

from importer.cli.base import echo
from importer.cli.base import main as command

#: what the app's window says while the page is served
STARTED = (
    "g2w-import: the page opens in your browser. Close this window to stop g2w-import (an "
    "import under way stops as with Ctrl-C, and carries on when the same file is registered "
    "again)."
)


def main() -> None:
    """The app's entry point."""
    _own_libraries_for_the_app_only()
    if len(sys.argv) > 1:
        command()
        return
    echo(STARTED)  # a double-click
    sys.argv = [sys.argv[0], "ui"]
    try:
        command()
    except SystemExit as exc:
        if exc.code not in (0, None) and sys.stdin is not None and sys.stdin.isatty():
            # the window would close with the reason in it: leave it to be read
            with contextlib.suppress(Exception):
                input("Press Enter to close this window.")
        raise


def _own_libraries_for_the_app_only() -> None:
    """The libraries the app unpacked are for it alone: the browser it opens (and anything
    else it starts) gets the system's, as the person's own ``LD_LIBRARY_PATH`` says (see
    PyInstaller's "LD_LIBRARY_PATH / LIBPATH considerations")."""
    for name in ("LD_LIBRARY_PATH", "LIBPATH"):
        original = os.environ.pop(f"{name}_ORIG", None)
        if original is not None:
            os.environ[name] = original
        elif getattr(sys, "frozen", False):
            os.environ.pop(name, None)
