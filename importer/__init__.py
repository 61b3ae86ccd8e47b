"""Register a spreadsheet of people for a GoTo Webinar: read → check → register → report.

The Python API (see the README, "Use it from Python")::

    import importer
    result = importer.register("guests.xlsx", webinar_key="8325357307900339981")
    result = importer.register(frame, webinar_key="…")   # a pandas DataFrame, or dicts
    result.exit_code, result.counts, result.rows, result.to_pandas(), result.write("r.xlsx")
    problems = importer.check(frame, webinar_key="…").problems
    listed = importer.export(webinar_key="…").to_pandas()
    importer.cancel(frame, webinar_key="…"), importer.undo(webinar_key="…")

The names below are loaded when first used, so that ``import importer`` (and the command's
start) does not load the whole package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from importer.version import __version__

if TYPE_CHECKING:
    from importer.api import (
        Call,
        cancel,
        cancel_async,
        check,
        export,
        export_async,
        register,
        register_async,
        undo,
        undo_async,
    )
    from importer.errors import ImporterError, InputError, NotSignedIn, UsageError
    from importer.events import StopSignal
    from importer.model import Cancellation, RowProblem, Status
    from importer.progress import ProgressReport
    from importer.report.cancellations import Cancellations
    from importer.report.outcome import Outcome, RowOutcome
    from importer.report.registrants import Exported

#: each public name, and the module it comes from
_FROM = {
    "Call": "importer.api",
    "cancel": "importer.api",
    "cancel_async": "importer.api",
    "check": "importer.api",
    "export": "importer.api",
    "export_async": "importer.api",
    "register": "importer.api",
    "register_async": "importer.api",
    "undo": "importer.api",
    "undo_async": "importer.api",
    "ImporterError": "importer.errors",
    "InputError": "importer.errors",
    "NotSignedIn": "importer.errors",
    "UsageError": "importer.errors",
    "StopSignal": "importer.events",
    "Cancellation": "importer.model",
    "RowProblem": "importer.model",
    "Status": "importer.model",
    "ProgressReport": "importer.progress",
    "Cancellations": "importer.report.cancellations",
    "Outcome": "importer.report.outcome",
    "RowOutcome": "importer.report.outcome",
    "Exported": "importer.report.registrants",
}

__all__ = [
    "Call",
    "Cancellation",
    "Cancellations",
    "Exported",
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
    "cancel",
    "cancel_async",
    "check",
    "export",
    "export_async",
    "register",
    "register_async",
    "undo",
    "undo_async",
]


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module 'importer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_FROM[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
