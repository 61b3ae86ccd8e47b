"""Register a spreadsheet of people for a GoTo Webinar: read → validate → register → report.

The Python API (see the README, "Use it from Python")::

    import importer
    result = importer.register("guests.xlsx", webinar_key="8325357307900339981")
    result = importer.register(frame, webinar_key="…")   # a pandas DataFrame, or dicts
    result.exit_code, result.counts, result.rows, result.to_pandas(), result.write("r.xlsx")
    problems = importer.check(frame, webinar_key="…").problems
"""

__version__ = "0.2.0"

from importer.api import ProgressReport, check, register, register_async
from importer.errors import ImporterError, InputError, UsageError
from importer.events import StopSignal
from importer.goto.credentials import NotSignedIn
from importer.model import RowProblem, Status
from importer.report.outcome import Outcome, RowOutcome

__all__ = [
    "ImporterError",
    "InputError",
    "NotSignedIn",
    "Outcome",
    "ProgressReport",
    "RowOutcome",
    "RowProblem",
    "Status",
    "StopSignal",
    "UsageError",
    "__version__",
    "check",
    "register",
    "register_async",
]
