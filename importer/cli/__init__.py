"""The ``g2w-import`` command: click commands only. Options in, one call, exit code out.

base.py      the group, its entry point, the shared options, errors to exit codes
imports.py   register, export, cancel, undo
account.py   login, whoami, logout
tools.py     webinars, fields, template, sandbox, ui
data.py      journals, journals forget; old journals removed at every start
app.py       the downloadable app's start: no arguments open the page
"""

from importer.cli import account, data, imports, tools
from importer.cli.base import cli, main

__all__ = ["account", "cli", "data", "imports", "main", "tools"]
