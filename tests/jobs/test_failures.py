"""Failures that end in one line and the right exit code, never a traceback: a webinar key GoTo
refuses (400 on a read), a journal path that names another program's database, a CA bundle
that is none, a TLS certificate that fails verification."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from importer.engine.journal import Journal
from importer.errors import JournalError, ReadRefused, RequestRejected
from importer.goto.client import G2WClient, OrganizerClient
from importer.model import Registrant
from importer.sandbox import ORGANIZER_KEY, PREFIX, Sandbox, SandboxConfig
from importer.serve.exchange import Answer, Request
from tests.helpers import (
    ENV,
    TOKEN,
    LoopServer,
    ScriptedServer,
    ThreadedServer,
    command,
    csv_rows,
    invoke,
    mock_client,
    one_line_error,
    people,
    posix_only,
    register_args,
    sandbox_client,
    statuses,
    token_env,
    write_csv,
)

#: passes the command's own check of a key (digits, at most 19, below 2**63) but is no positive
#: int64: the sandbox answers it 400 with its words, as GoTo answers a malformed or another
#: organizer's key. (A key with letters, such as 12ab, never gets that far: it is refused
#: before any call, exit 2.)
REFUSED_KEY = "0"
SANDBOX_400 = f"Invalid webinarKey: {REFUSED_KEY}"


# --- a 400 on a read: the webinar's key, not a row ---------------------------------------------


@pytest.mark.parametrize(
    "key", ["12ab", "1" * 20, str(2**63), REFUSED_KEY, " 1", "\uff11\uff12"], ids=repr
)
def test_the_sandbox_answers_a_malformed_webinar_key_400_as_goto_does(key: str) -> None:
    async def go() -> list[httpx.Response]:
        async with sandbox_client(Sandbox(SandboxConfig(tokens=(TOKEN,)))) as http:
            base = f"organizers/{ORGANIZER_KEY}/webinars/{key}"
            return [
                await http.get(base + rest) for rest in ("", "/registrants/fields", "/registrants")
            ]

    for response in asyncio.run(go()):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["errorCode"] == "InvalidParameter"
        assert body["description"].startswith("Invalid webinarKey")


def test_the_sandbox_still_answers_an_unknown_well_formed_key_404() -> None:
    async def go() -> httpx.Response:
        async with sandbox_client(Sandbox(SandboxConfig(tokens=(TOKEN,)))) as http:
            return await http.get(f"organizers/{ORGANIZER_KEY}/webinars/{'1' * 19}")

    assert asyncio.run(go()).status_code == 404


def mock_api(status: int, body: dict[str, Any]) -> httpx.AsyncClient:
    return mock_client(httpx.MockTransport(lambda request: httpx.Response(status, json=body)))


def test_a_400_on_every_read_stops_the_run_but_a_400_on_a_create_fails_one_row() -> None:
    said = {"errorCode": "InvalidParameter", "description": "Invalid webinarKey"}

    async def go() -> None:
        async with mock_api(400, said) as http:
            client = G2WClient(http, "111", "222")
            reads: list[Callable[[], Any]] = [
                client.get_webinar,
                client.get_form,
                lambda: client.list_registrants_page(0),
                lambda: client.get_registrant("333"),
                lambda: OrganizerClient(http, "111").webinars_page("a", "b", 0),
            ]
            for read in reads:
                with pytest.raises(ReadRefused, match=r"\(HTTP 400: Invalid webinarKey\)"):
                    await read()
            with pytest.raises(RequestRejected, match="Invalid webinarKey"):
                await client.create_registrant(
                    Registrant(2, "Ann", "Lee", "ann@example.com"), resend=False
                )

    asyncio.run(go())


def test_register_for_a_key_goto_refuses_is_one_line_exit_4_and_a_report(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    result = invoke("register", str(source), "--sandbox", "--webinar-key", REFUSED_KEY, "--yes")
    line = one_line_error(result, 4)
    assert f"GoTo refused webinar key {REFUSED_KEY} (HTTP 400: {SANDBOX_400})" in line
    assert "check the webinar key" in line
    # the file was read: the report says what became of each row
    assert statuses(tmp_path / "guests-joinurls.xlsx") == ["pending", "pending"]


def test_a_dry_run_for_a_key_goto_refuses_is_one_line_exit_4(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    result = invoke("register", str(source), "--sandbox", "--webinar-key", REFUSED_KEY, "--dry-run")
    line = one_line_error(result, 4)
    assert SANDBOX_400 in line
    assert "check the webinar key" in line
    assert not (tmp_path / "guests-joinurls.xlsx").exists()


def undo_journal(tmp_path: Path) -> Path:
    """A journal of the refused key, so that undo gets as far as reading the webinar."""
    path = tmp_path / "undo.sqlite3"
    with Journal.open(
        path, organizer_key=ORGANIZER_KEY, webinar_key=REFUSED_KEY, locks=tmp_path / "locks"
    ):
        pass
    return path


@pytest.mark.parametrize("name", ["fields", "template", "export", "cancel", "undo"])
def test_every_command_for_a_key_goto_refuses_is_one_line_exit_4(tmp_path: Path, name: str) -> None:
    source = write_csv(tmp_path / "leaving.csv", people(2))
    out = tmp_path / "out.xlsx"
    args = {
        "fields": ["fields"],
        "template": ["template", str(out)],
        "export": ["export", "--out", str(out), "--yes"],
        "cancel": ["cancel", str(source), "--out", str(out), "--yes"],
        "undo": ["undo", "--journal", str(undo_journal(tmp_path)), "--out", str(out), "--yes"],
    }[name]
    result = invoke(*args, "--sandbox", "--webinar-key", REFUSED_KEY)
    line = one_line_error(result, 4)
    assert f"(HTTP 400: {SANDBOX_400}); check the webinar key" in line
    assert not out.exists()


def test_webinars_refused_with_a_400_is_one_line_exit_4(tmp_path: Path) -> None:
    async def refuse(request: Request) -> Answer:
        said = b'{"errorCode": "InvalidParameter", "description": "Invalid organizerKey"}'
        return Answer(400, said)

    with ScriptedServer(refuse) as server:
        result = invoke(
            "webinars", "--api-url", server.api_url, "--organizer-key", ORGANIZER_KEY, env=ENV
        )
    line = one_line_error(result, 4)
    assert f"organizer {ORGANIZER_KEY} (HTTP 400: Invalid organizerKey)" in line
    assert "check --organizer-key" in line


# --- a journal path that names another program's database -------------------------------------


OTHER_DATABASES = {
    "a people table of its own": "CREATE TABLE people (email TEXT, name TEXT);"
    "INSERT INTO people VALUES ('ann@example.com', 'Ann');",
    "no meta": "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');",
    "a meta table of its own": "CREATE TABLE meta (name TEXT, value TEXT);"
    "INSERT INTO meta VALUES ('app', 'crm');"
    "CREATE TABLE people (email_key TEXT, email TEXT, line INTEGER, state TEXT,"
    " registrant_key TEXT, join_url TEXT, error TEXT, retry INTEGER, body_hash TEXT,"
    " updated TEXT);",
}


def other_database(path: Path, script: str) -> bytes:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(script)
        db.commit()
    return path.read_bytes()


@pytest.mark.parametrize("script", OTHER_DATABASES.values(), ids=OTHER_DATABASES.keys())
def test_a_journal_path_naming_another_database_is_refused_and_left_untouched(
    tmp_path: Path, script: str
) -> None:
    path = tmp_path / "crm.db"
    before = other_database(path, script)
    with pytest.raises(JournalError, match="is not a g2w-import journal") as caught:
        Journal.open(path, organizer_key="111", webinar_key="222", locks=tmp_path)
    assert "choose another path with --journal" in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("crm")) == ["crm.db"]


def test_register_with_another_database_as_journal_is_one_line_exit_2(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    path = tmp_path / "crm.db"
    before = other_database(path, OTHER_DATABASES["a people table of its own"])
    result = invoke("register", str(source), "--sandbox", "--journal", str(path), "--yes")
    line = one_line_error(result, 2)
    assert f"{path}: is not a g2w-import journal" in line
    assert "(tables: people)" in line
    assert "choose another path with --journal" in line
    assert path.read_bytes() == before


def test_an_empty_or_missing_file_still_becomes_a_journal(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    for path in (empty, tmp_path / "new.sqlite3"):
        with Journal.open(path, organizer_key="111", webinar_key="222", locks=tmp_path):
            pass
        with Journal.open(path, organizer_key="111", webinar_key="222", locks=tmp_path):
            pass  # and opens again as one


# --- SSL_CERT_FILE that names no CA bundle ----------------------------------------------------

#: nothing listens here, and with a CA bundle that cannot be used nothing is even tried
NOWHERE = f"https://127.0.0.1:9{PREFIX}"


@pytest.mark.parametrize("kind", ["missing", "not PEM"])
def test_ssl_cert_file_that_names_no_bundle_is_one_line_exit_2(tmp_path: Path, kind: str) -> None:
    bundle = tmp_path / "company-ca.pem"
    if kind == "not PEM":
        bundle.write_text("ask IT for the certificate\n")
    env = {**ENV, "SSL_CERT_FILE": str(bundle)}
    source = write_csv(tmp_path / "guests.csv", people(1))
    runs = [
        ("webinars", "--api-url", NOWHERE, "--organizer-key", ORGANIZER_KEY),
        tuple(register_args(source, NOWHERE, "--yes")),
    ]
    for args in runs:
        line = one_line_error(invoke(*args, env=env), 2)
        assert f"SSL_CERT_FILE names {bundle}, which " in line
        why = "does not exist" if kind == "missing" else "cannot be read as PEM certificates"
        assert why in line
    # the sign-in builds its own clients, from the same one place
    login = invoke("login", "--with-token", "--api-url", NOWHERE, env=env, stdin="a-token\n")
    assert f"SSL_CERT_FILE names {bundle}" in one_line_error(login, 2)


def run_in(
    folder: Path,
    args: list[str],
    limit: Callable[[], None] | None = None,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own, in ``folder``, under ``limit`` if given."""
    return subprocess.run(
        command(*args),
        env=env or token_env(),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=limit,
    )


# --- a TLS certificate that fails verification ------------------------------------------------


class TlsServer(LoopServer):
    """An HTTPS server on 127.0.0.1, from a background thread, answering every request with an
    empty list of webinars (once a client trusts its certificate)."""

    BODY = b'{"_embedded": {"webinars": []}, "page": {"totalPages": 1}}'

    def __init__(self, context: ssl.SSLContext, *, close: bool = False) -> None:
        super().__init__()
        self.context = context
        #: answer with ``Connection: close`` and close each connection after its answer
        self.close = close
        self.port = 0
        self._loop.set_exception_handler(lambda loop, details: None)  # refused handshakes
        self._server: asyncio.Server | None = None

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{PREFIX}"

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Each request on the connection answered, until the client closes it."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while await reader.readuntil(b"\r\n\r\n"):
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                if self.close:
                    head += b"Connection: close\r\n"
                writer.write(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(self.BODY), self.BODY))
                await writer.drain()
                if self.close:
                    break
        writer.close()


@contextlib.contextmanager
def https_server(ca: trustme.CA, host: str | None) -> Iterator[TlsServer]:
    """Serving a certificate for ``host`` issued by ``ca``; for None, ``ca``'s own (a
    self-signed certificate)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if host is None:
        with ca.cert_pem.tempfile() as cert, ca.private_key_pem.tempfile() as key:
            context.load_cert_chain(cert, key)
    else:
        ca.issue_cert(host).configure_cert(context)
    with TlsServer(context) as server:
        yield server


@pytest.mark.parametrize(
    ("host", "trusted", "reason"),
    [
        (None, False, "certificate verify failed: self-signed certificate"),
        ("127.0.0.1", False, "certificate verify failed: unable to get local issuer certificate"),
        ("api.example.org", True, "certificate verify failed: IP address mismatch"),
    ],
    ids=["self-signed", "unknown CA", "another host"],
)
def test_a_certificate_that_fails_verification_stops_at_once_with_exit_4(
    tmp_path: Path, ca: trustme.CA, host: str | None, trusted: bool, reason: str
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    env = token_env()
    if trusted:
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        env["SSL_CERT_FILE"] = str(tmp_path / "ca.pem")
    with https_server(ca, host) as server:
        # a real wait bound: a run that retried the refused certificate as a failed connection
        # would back off for tens of seconds and then exit 3 (with --give-up-after 600 nothing
        # but its attempts end it); the subprocess's timeout keeps such a run from holding the
        # suite. Refused at once, it ends in about a second.
        args = register_args(source, server.api_url, "--give-up-after", "600", "--yes")
        finished = run_in(tmp_path, args, env=env, timeout=60)
    assert finished.returncode == 4, finished.stderr
    assert "Traceback" not in finished.stderr
    errors = [line for line in finished.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, finished.stderr
    assert f"the TLS certificate of 127.0.0.1:{server.port} was refused ({reason}" in errors[0]
    assert 'see "Company networks" in the README' in errors[0]
    assert statuses(tmp_path / "guests-joinurls.xlsx") == ["pending", "pending"]


def test_a_refused_certificate_when_asking_whose_token_it_is_stops_at_once(
    tmp_path: Path, ca: trustme.CA
) -> None:
    with https_server(ca, None) as server:
        # without --organizer-key the first call asks the API whose token this is, through
        # the sign-in's code; the same real wait bound as above
        finished = run_in(tmp_path, ["webinars", "--api-url", server.api_url], timeout=60)
    assert finished.returncode == 4, finished.stderr
    assert finished.stderr.count("Error: ") == 1, finished.stderr
    assert "certificate verify failed: self-signed certificate" in finished.stderr
    assert 'see "Company networks" in the README' in finished.stderr


def test_a_company_ca_named_by_ssl_cert_file_is_trusted(tmp_path: Path, ca: trustme.CA) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    env = {**token_env(), "SSL_CERT_FILE": str(tmp_path / "ca.pem")}
    with https_server(ca, "127.0.0.1") as server:
        # in a process of its own, as a person runs it: TLS connections still closing when its
        # event loop ends would be unclosed sockets here, and warnings are errors in the tests
        args = ["webinars", "--api-url", server.api_url, "--organizer-key", ORGANIZER_KEY]
        finished = run_in(tmp_path, args, env=env, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert "No webinars between" in finished.stderr


CLOSING_CLIENT = """
import asyncio, ssl, sys
import httpx
from importer.goto.wire import Wire

async def main() -> None:
    context = ssl.create_default_context(cafile=sys.argv[2])
    async with httpx.AsyncClient(transport=Wire(2, context)) as http:
        failed = 0
        for _ in range(40):
            try:
                answer = await http.get(sys.argv[1])
                assert answer.status_code == 200
            except httpx.TransportError:
                failed += 1
    print(failed)

asyncio.run(main())
"""


def test_an_answer_over_tls_that_ends_its_connection_is_read_whole(
    tmp_path: Path, ca: trustme.CA
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with TlsServer(context, close=True) as server:
        # in a process of its own, for the reason given above; closing a TLS connection reports
        # its end at once, which once failed the answer that had just been read whole
        finished = subprocess.run(
            [sys.executable, "-c", CLOSING_CLIENT, server.api_url, str(tmp_path / "ca.pem")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "0"


# --- the journal's disk full --------------------------------------------------------------------


def limited(size: int) -> Callable[[], None]:
    """A child process's file size limit (``ulimit -f``): a write past it fails with EFBIG, as
    on a full disk (Python ignores the SIGXFSZ that comes with it)."""

    def limit() -> None:
        import resource  # POSIX only

        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


@posix_only
def test_a_journal_that_fills_up_mid_run_stops_resumably_with_a_report(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(300))
    journal = tmp_path / "journals" / "j.sqlite3"
    args = register_args(source, server.api_url, "--journal", str(journal), "--out", "r.csv")
    args += ["--rate", "300"]
    first = run_in(tmp_path, args, limited(160 * 1024))  # the journal's log outgrows it
    assert first.returncode == 3, first.stderr
    assert "Traceback" not in first.stderr
    assert f"the journal {journal} could not be written" in first.stderr
    report = csv_rows(tmp_path / "r.csv")
    counts = collections.Counter(row["status"] for row in report)
    assert counts["registered"] > 0
    assert counts["pending"] > 0
    assert counts["registered"] + counts["pending"] == 300
    again = run_in(tmp_path, args)
    assert again.returncode == 0, again.stderr
    assert server.sandbox.stats["created"] == 300  # nobody sent twice
    assert server.sandbox.stats["conflicts"] == 0
    report = csv_rows(tmp_path / "r.csv")
    assert {row["status"] for row in report} == {"registered"}


@posix_only
def test_a_journal_that_cannot_be_created_for_want_of_space_stops_before_sending(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(5))
    args = register_args(source, server.api_url, "--journal", "j.sqlite3", "--out", "r.csv")
    done = run_in(tmp_path, args, limited(6 * 1024))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "could not be written (" in done.stderr
    assert server.sandbox.stats["created"] == 0
    report = csv_rows(tmp_path / "r.csv")
    assert [row["status"] for row in report] == ["pending"] * 5
