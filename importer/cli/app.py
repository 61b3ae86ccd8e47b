"""The downloadable app's start (``.ci/build-app``): a double-click, which gives it no
arguments, opens the page in the default browser; with arguments it is the ``g2w-import``
command."""

from __future__ import annotations

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
    if len(sys.argv) <= 1:  # a double-click
        echo(STARTED)
        sys.argv = [sys.argv[0], "ui"]
    command()
