"""TLS for real: a local HTTPS server with a test CA, reached by ``g2w-import webinars`` as a
person runs it. A certificate that verifies works; a self-signed, expired or wrong-name one is
refused at once, in one line, with exit code 4; the operating system's trust store is used
unless ``SSL_CERT_FILE`` names a bundle; a proxy named in the environment is gone through, and
``NO_PROXY`` goes around it, on the same wire."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import Result

from importer.errors import UsageError
from importer.goto import tls
from importer.sandbox import ORGANIZER_KEY, PREFIX
from tests.helpers import ENV, PROXY_VARIABLES, invoke

#: an empty list of webinars, in the shape GoTo gives it
BODY = b'{"_embedded": {"webinars": []}, "page": {"totalPages": 1}}'


class Loop:
    """An event loop in a background thread, for servers the command under test reaches."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, details: None)  # refused handshakes
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class HttpsServer:
    """HTTPS on 127.0.0.1 with ``context``'s certificate: every request answered with an empty
    list of webinars; it counts the connections it accepted (handshakes tried)."""

    def __init__(self, loop: Loop, context: ssl.SSLContext) -> None:
        self.loop = loop
        self.context = context
        self.connections = 0
        self.answered = 0
        self._server: asyncio.Server = loop.run(asyncio.start_server(self._answer, "127.0.0.1", 0))
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{PREFIX}"

    def close(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        self.loop.run(close())

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await writer.start_tls(self.context)  # counted before: a refused handshake too
            while await reader.readuntil(b"\r\n\r\n"):
                self.answered += 1
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                writer.write(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(BODY), BODY))
                await writer.drain()
        writer.close()


class ConnectProxy:
    """A forward proxy on 127.0.0.1 that tunnels ``CONNECT host:port`` and records each."""

    def __init__(self, loop: Loop) -> None:
        self.tunnels: list[str] = []
        self._server: asyncio.Server = loop.run(asyncio.start_server(self._tunnel, "127.0.0.1", 0))
        self.loop = loop
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def close(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        self.loop.run(close())

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n")[0].decode().split(" ")
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def no_proxy_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


def serving(loop: Loop, ca: trustme.CA, kind: str) -> HttpsServer:
    """A server whose certificate is ``kind``: valid for 127.0.0.1, self-signed, expired, or
    for another name, all but the self-signed issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    now = datetime.datetime.now(datetime.UTC)
    if kind == "self-signed":  # a certificate that signed itself, unknown to the client
        own = trustme.CA()
        with own.cert_pem.tempfile() as cert, own.private_key_pem.tempfile() as key:
            context.load_cert_chain(cert, key)
    elif kind == "expired":
        expired = ca.issue_cert(
            "127.0.0.1",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )
        expired.configure_cert(context)
    elif kind == "wrong-name":
        ca.issue_cert("api.example.org").configure_cert(context)
    else:
        ca.issue_cert("127.0.0.1").configure_cert(context)
    return HttpsServer(loop, context)


def webinars(api_url: str, env: dict[str, str]) -> Result:
    return invoke(
        "webinars", "--api-url", api_url, "--organizer-key", ORGANIZER_KEY, env={**ENV, **env}
    )


def trusting(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return {"SSL_CERT_FILE": str(bundle)}


def test_a_certificate_from_the_ca_named_by_ssl_cert_file_works(
    loop: Loop, ca: trustme.CA, tmp_path: Path
) -> None:
    server = serving(loop, ca, "valid")
    try:
        finished = webinars(server.api_url, trusting(ca, tmp_path))
    finally:
        server.close()
    assert finished.exit_code == 0, finished.output
    assert "No webinars between" in finished.output
    assert server.answered == 1


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("self-signed", "certificate verify failed: self-signed certificate"),
        ("expired", "certificate verify failed: certificate has expired"),
        ("wrong-name", "certificate verify failed: IP address mismatch"),
    ],
)
def test_a_certificate_that_fails_verification_is_refused_at_once_in_one_line(
    loop: Loop, ca: trustme.CA, tmp_path: Path, kind: str, reason: str
) -> None:
    server = serving(loop, ca, kind)
    try:
        finished = webinars(server.api_url, trusting(ca, tmp_path))
    finally:
        server.close()
    assert finished.exit_code == 4, finished.output
    assert "Traceback" not in finished.output
    errors = [line for line in finished.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, finished.output
    assert f"the TLS certificate of 127.0.0.1:{server.port} was refused ({reason}" in errors[0]
    assert tls.SEE_README in errors[0]
    assert server.connections == 1  # refused at once: never tried again
    assert server.answered == 0


def test_without_ssl_cert_file_the_operating_systems_trust_store_decides(
    loop: Loop, ca: trustme.CA
) -> None:
    import truststore

    assert isinstance(tls.context(), truststore.SSLContext)
    server = serving(loop, ca, "valid")  # a CA the system has never heard of
    try:
        finished = webinars(server.api_url, {})
    finally:
        server.close()
    assert finished.exit_code == 4, finished.output
    assert "unable to get local issuer certificate" in finished.output
    assert server.connections == 1


def test_ssl_cert_file_is_used_instead_of_the_trust_store(
    monkeypatch: pytest.MonkeyPatch, ca: trustme.CA, tmp_path: Path
) -> None:
    import truststore

    for name, value in trusting(ca, tmp_path).items():
        monkeypatch.setenv(name, value)
    context = tls.context()
    assert not isinstance(context, truststore.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1  # the bundle's, and nothing else


def test_an_unusable_ssl_cert_file_is_one_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "not-a-bundle.pem"
    bundle.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with pytest.raises(UsageError, match="cannot be read as PEM certificates") as refused:
        tls.context()
    assert "\n" not in str(refused.value)
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(bundle))  # a file, not a folder
    with pytest.raises(UsageError, match="which is no folder"):
        tls.context()


@pytest.mark.parametrize("bypass", [False, True], ids=["through-the-proxy", "no-proxy"])
def test_a_proxy_from_the_environment_is_gone_through_unless_no_proxy_says_not(
    loop: Loop, ca: trustme.CA, tmp_path: Path, bypass: bool
) -> None:
    server = serving(loop, ca, "valid")
    proxy = ConnectProxy(loop)
    env = {**trusting(ca, tmp_path), "HTTPS_PROXY": proxy.url}
    if bypass:
        env["NO_PROXY"] = "127.0.0.1"
    try:
        finished = webinars(server.api_url, env)
    finally:
        server.close()
        proxy.close()
    assert finished.exit_code == 0, finished.output
    assert server.answered == 1
    assert proxy.tunnels == ([] if bypass else [f"127.0.0.1:{server.port}"])
