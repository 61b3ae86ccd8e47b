"""The importer's exceptions, each carrying the exit code the command ends with.

Every message is one line written for the person running the import: it names the file, row or
setting at fault and says what to do. One handler in ``cli.py`` prints the message and exits with
:attr:`ImporterError.exit_code`; the Python API reports the same number as
``Outcome.exit_code``.

    ImporterError                       (1)
    ├── UsageError              a setting is missing or malformed (2)
    │   └── NotSignedIn         no token anywhere: not given, in the environment or stored (2)
    ├── InputError              the input file cannot be used (2)
    ├── ReportError             the report could not be written (2)
    │   └── NoRoomForReport     ... for want of space, after sending: resumable (3)
    ├── JournalError            the journal cannot be used, or another import holds it (2)
    └── ApiError                the API answered something the run cannot get past
        ├── RunStopped          nothing more may be sent in this run; rows left are pending
        │   ├── AuthError           token missing, wrong or expired (4)
        │   ├── WebinarNotFound     unknown or cancelled webinar (4)
        │   ├── ReadRefused         a read refused as malformed (HTTP 400): a wrong key (4)
        │   ├── UntrustedCertificate  the server's TLS certificate failed verification (4)
        │   ├── LimitReached        a quota, --max-calls, or 429s without end (3)
        │   ├── ApiUnavailable      only 5xx, or no connection, for --give-up-after (3)
        │   ├── WebinarRefused      a 403 about the webinar, e.g. it is full (3)
        │   ├── AnswersDropped      GoTo did not store the answers to custom questions (4)
        │   ├── JournalFull         the journal's disk is full, or refuses writes (3)
        │   └── Interrupted         Ctrl-C, SIGTERM or a stop asked for (130)
        ├── RequestRejected     the API refused one registrant (HTTP 400): the row fails
        └── TransientError      worth another try later
            ├── RateLimited         HTTP 429
            ├── ServerError         HTTP 5xx, or an answer that makes no sense
            ├── ConnectFailed       the request never left: safe to send again
            └── OutcomeUnknown      sent, but no answer: must be reconciled, not re-sent

Row problems (a bad e-mail in line 7) are not exceptions: ``validate.py`` collects them as data.
"""

from __future__ import annotations

#: the exit codes, by meaning
EXIT_OK = 0
EXIT_ROWS = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_API = 4
EXIT_INTERRUPTED = 130

#: what each exit code means, for ``--help`` and the README
EXIT_CODES = (
    (EXIT_OK, "every row is registered, was already registered, or awaits approval"),
    (
        EXIT_ROWS,
        "finished, but some rows are invalid, duplicate, denied, failed or pending (or you "
        "answered no)",
    ),
    (EXIT_USAGE, "usage error or unusable input: nothing was sent"),
    (
        EXIT_STOPPED,
        "stopped early, resumable (quota, --max-calls, rate storm, API unavailable, "
        "webinar full, disk full): run the same command again later",
    ),
    (
        EXIT_API,
        "sign-in or webinar problem: the token was refused, the webinar is unknown or its key "
        "refused, GoTo kept none of the answers to its questions, or the API's TLS certificate "
        "is not trusted",
    ),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C): run the same command again to continue"),
)


class ImporterError(Exception):
    """Base class: the message is a complete sentence for the user."""

    exit_code = EXIT_ROWS


class UsageError(ImporterError):
    """A command-line setting or environment variable is missing or malformed."""

    exit_code = EXIT_USAGE


class NotSignedIn(UsageError):
    """No token anywhere: not given, not in the environment, no stored login. The message
    says how to sign in at the command line."""

    def __init__(
        self,
        message: str = (
            "not signed in: run g2w-import login (or set G2W_ACCESS_TOKEN, or pass --token-file)"
        ),
    ) -> None:
        super().__init__(message)


class NoWebinar(UsageError):
    """Neither an option, nor the file, nor the connection names a webinar."""


class Declined(ImporterError):
    """The person answered no when asked before sending: nothing was sent, nothing is done."""

    exit_code = EXIT_ROWS


class Busy(ImporterError):
    """The page asked for something that must wait until the import under way is over."""


class InputError(ImporterError):
    """The input file cannot be read or lacks what an import needs."""

    exit_code = EXIT_USAGE


class TooLarge(InputError):
    """An upload to the page larger than it takes."""


class ReportError(ImporterError):
    """The report could not be written where it was asked for."""

    exit_code = EXIT_USAGE


class NoRoomForReport(ReportError):
    """The report could not be written for want of space: run again once there is room (the
    journal keeps what was sent)."""

    exit_code = EXIT_STOPPED


class JournalError(ImporterError):
    """The journal cannot be opened, belongs to another webinar, or is in use."""

    exit_code = EXIT_USAGE


class ApiError(ImporterError):
    """The GoTo Webinar API answered with something other than success."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RunStopped(ApiError):
    """An answer that makes every further call pointless: the run stops, rows stay pending."""

    exit_code = EXIT_STOPPED


class AuthError(RunStopped):
    """The access token was refused (HTTP 401/403), or signing in failed."""

    exit_code = EXIT_API


class WebinarNotFound(RunStopped):
    """The organizer has no such webinar, or it was cancelled (HTTP 404)."""

    exit_code = EXIT_API


class ReadRefused(RunStopped):
    """GoTo refused a read as malformed (HTTP 400), as it answers a mistyped webinar key or one
    of another organizer: no call about this webinar can succeed."""

    exit_code = EXIT_API


class UntrustedCertificate(RunStopped):
    """The server's TLS certificate failed verification (self-signed, expired, another host's,
    or signed by a company proxy's CA that is not trusted): trying again cannot help."""

    exit_code = EXIT_API


class LimitReached(RunStopped):
    """A call quota or a rate limit that waiting a little will not lift: run again later."""


class ApiUnavailable(RunStopped):
    """The API answered only server errors, or could not be reached, for too long."""


class WebinarRefused(RunStopped):
    """GoTo refused a registration for a reason about the webinar (full, closed)."""


class AnswersDropped(RunStopped):
    """GoTo registered a person but kept none of the answers to the webinar's questions: a
    problem of the webinar (or of the API), not of the file."""

    exit_code = EXIT_API


class JournalFull(RunStopped):
    """The journal could not be written (its disk is full, a file size limit, an I/O error):
    nothing more may be sent, since a call whose ``sending`` is not on disk could be lost."""


class Interrupted(RunStopped):
    """The run was asked to stop: Ctrl-C, SIGTERM, or a stop from the Python API or page."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)


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
