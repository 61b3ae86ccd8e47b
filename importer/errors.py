"""The importer's exceptions.

Every message is one line written for the person running the import: it names the file, row or
setting at fault and says what to do. ``cli.py`` turns each class into an exit code.

    ImporterError
    ├── UsageError              a setting is missing or malformed (exit 2)
    ├── InputError              the input file cannot be used (exit 2)
    ├── ReportError             the report could not be written (exit 1)
    ├── JournalError            the journal cannot be used, or another import holds it (exit 2)
    └── ApiError                the API answered something the run cannot get past
        ├── RunStopped          nothing more may be sent in this run; rows left are pending
        │   ├── AuthError           token missing, wrong or expired (exit 4)
        │   ├── WebinarNotFound     unknown or cancelled webinar (exit 4)
        │   └── LimitReached        a quota, --max-calls, or 429s without end (exit 3)
        ├── RequestRejected     the API refused one registrant (HTTP 400): the row fails
        └── TransientError      worth another try later
            ├── RateLimited         HTTP 429
            ├── ServerError         HTTP 5xx, or an answer that makes no sense
            ├── ConnectFailed       the request never left: safe to send again
            └── OutcomeUnknown      sent, but no answer: must be reconciled, not re-sent

Row problems (a bad e-mail in line 7) are not exceptions: ``validate.py`` collects them as data.
"""

from __future__ import annotations


class ImporterError(Exception):
    """Base class: the message is a complete sentence for the user."""


class UsageError(ImporterError):
    """A command-line setting or environment variable is missing or malformed."""


class InputError(ImporterError):
    """The input file cannot be read or lacks what an import needs."""


class ReportError(ImporterError):
    """The report could not be written where it was asked for."""


class JournalError(ImporterError):
    """The journal cannot be opened, belongs to another webinar, or is in use."""


class ApiError(ImporterError):
    """The GoTo Webinar API answered with something other than success."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RunStopped(ApiError):
    """An answer that makes every further call pointless: the run stops, rows stay pending."""


class AuthError(RunStopped):
    """The access token was refused (HTTP 401/403)."""


class WebinarNotFound(RunStopped):
    """The organizer has no such webinar, or it was cancelled (HTTP 404)."""


class LimitReached(RunStopped):
    """A call quota or a rate limit that waiting a little will not lift: run again later."""


class RequestRejected(ApiError):
    """The API refused this one registrant (HTTP 400); other rows are unaffected."""


class TransientError(ApiError):
    """A failure that may pass: the call can be tried again after a pause."""


class RateLimited(TransientError):
    """HTTP 429. ``retry_after`` is the server's wish in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class ServerError(TransientError):
    """HTTP 5xx, or a reply the client cannot make sense of."""


class ConnectFailed(TransientError):
    """The connection failed before the request was sent; sending again is safe."""


class OutcomeUnknown(TransientError):
    """The request was sent but no answer came back: the person may or may not be registered."""
