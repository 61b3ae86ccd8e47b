"""The one-file app's start: a double-click opens the page; with arguments, the command."""

from importer.cli.app import main

main()
