"""Checking a :class:`~importer.model.Table` against the webinar's own form, before a single
call: every row's problems, the repeated e-mails and what is sent as what (a plan). Pure: no
I/O, no API."""
