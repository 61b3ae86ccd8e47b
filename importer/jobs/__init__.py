"""What every front door calls: ``register``, ``cancel``, ``undo`` and ``export``, each one
options object in, one outcome out, its progress told to a
:class:`~importer.events.Listener`."""
