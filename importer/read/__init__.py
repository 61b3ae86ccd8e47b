"""Reading people in: a CSV or Excel file, a DataFrame or records, to one
:class:`~importer.model.Table` (:mod:`.reader`), with the columns matched to GoTo's fields
(:mod:`.columns`) and the template's Settings sheet read (:mod:`.settings`)."""
