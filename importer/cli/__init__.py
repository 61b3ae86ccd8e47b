"""The ``g2w-import`` command: click commands only. Options in, one call, exit code out.

base.py      the group, its entry point, the shared options, errors to exit codes
imports.py   register, export, cancel, undo
account.py   login, whoami, logout
tools.py     webinars, fields, template, sandbox, ui
"""

from importer.cli import account, imports, tools
from importer.cli.base import cli, main

__all__ = ["account", "cli", "imports", "main", "tools"]
