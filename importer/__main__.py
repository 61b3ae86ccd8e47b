"""``python -m importer`` runs the ``g2w-import`` command."""

from importer.cli import main

main()
