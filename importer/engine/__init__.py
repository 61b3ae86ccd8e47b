"""Exactly-once bulk calls over the SQLite journal: the loop (:mod:`.exactly_once`), and the
two things done with it, registering (:mod:`.registrar`) and cancelling
(:mod:`.canceller`)."""
