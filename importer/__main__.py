"""``python -m importer`` runs the ``g2w-import`` command."""

from .cli import main

main()
