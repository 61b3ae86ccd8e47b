"""Signing in once: the OAuth flow, stored credentials, and renewal in the middle of long runs."""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import stat
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from importer.cli import account as login_command
from importer.sandbox import ORGANIZER_KEY, WEBINAR_KEY
from tests.helpers import (
    TOKEN,
    ThreadedServer,
    free_port,
    invoke,
    people,
    posix_only,
    status_counts,
    write_csv,
)

SECRET = "client-secret-canary-93b1"
PAT = "personal-access-token-canary-5e77"


def credentials_file() -> Path:
    return Path(os.environ["G2W_CREDENTIALS_FILE"])


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A scripted browser: it follows the authorize redirect into the callback server."""
    visited: list[str] = []

    def follow(address: str) -> None:
        visited.append(address)
        with httpx.Client(follow_redirects=True, timeout=10) as http:
            http.get(address)

    monkeypatch.setattr(login_command, "open_browser", follow)
    return visited


def login_server(start: Callable[..., ThreadedServer], **config: Any) -> ThreadedServer:
    """A sandbox whose OAuth client has a redirect URI on a free port (``server.port``)."""
    port = free_port()
    server = start(rate=0, redirect_uri=f"http://127.0.0.1:{port}/callback", **config)
    server.callback_port = port  # type: ignore[attr-defined]
    return server


def client_env(server: ThreadedServer) -> dict[str, str]:
    return {
        "G2W_AUTH_URL": server.api_url.split("/G2W/")[0],
        "G2W_API_URL": server.api_url,
        "G2W_CLIENT_ID": "my-client",
        "G2W_CLIENT_SECRET": SECRET,
    }


def sign_in(server: ThreadedServer) -> Result:
    port = str(server.callback_port)  # type: ignore[attr-defined]
    return invoke("login", "--port", port, env=client_env(server))


@posix_only
def test_login_flow_stores_the_tokens_privately_and_whoami_tells_who(
    loopback_sandbox: Callable[..., ThreadedServer], browser: list[str]
) -> None:
    server = login_server(loopback_sandbox)
    result = sign_in(server)
    assert result.exit_code == 0, result.output
    assert "Signed in as organizer@sandbox.invalid (organizer 5071418929213466883)" in (
        result.stderr
    )
    assert "code_challenge_method=S256" in browser[0]
    stored = credentials_file()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    record = json.loads(stored.read_text())
    # not in the token answer, and /admin/rest/v1/me refuses: the identity API said
    assert record["organizer_key"] == ORGANIZER_KEY
    assert record["refresh_token"]
    assert record["client_secret"] == SECRET
    for secret in (record["access_token"], record["refresh_token"], SECRET):
        assert secret not in result.output
    who = invoke("whoami")
    assert who.exit_code == 0
    assert f"Using:     the stored login in {stored} (OAuth sign-in)" in who.stdout
    assert f"Organizer: {ORGANIZER_KEY}" in who.stdout
    assert "(in 60 minutes); renewed automatically" in who.stdout
    assert record["access_token"] not in who.output
    assert invoke("logout").exit_code == 0
    assert not stored.exists()
    assert invoke("whoami").exit_code == 2  # not signed in, as for every other command


def test_login_refuses_an_answer_for_another_request(
    loopback_sandbox: Callable[..., ThreadedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = login_server(loopback_sandbox)

    pages: list[str] = []

    def forged(address: str) -> None:
        redirect = httpx.get(address).headers["Location"]
        pages.append(httpx.get(redirect.split("&state=")[0] + "&state=forged").text)

    monkeypatch.setattr(login_command, "open_browser", forged)
    result = sign_in(server)
    assert result.exit_code == 4
    assert "did not match this request" in result.stderr
    assert not credentials_file().exists()
    assert "Sign-in did not complete" in pages[0]  # the browser is not told otherwise


def test_login_with_a_token_from_standard_input_and_the_order_of_sources(
    loopback_sandbox: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = loopback_sandbox(rate=0)
    result = invoke("login", "--with-token", env={"G2W_API_URL": server.api_url}, stdin=TOKEN)
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert "lasts about an hour and cannot be renewed" in result.stderr
    who = invoke("whoami").stdout
    assert "the stored login" in who
    assert "(access token)" in who
    token_file = tmp_path / "token.txt"
    token_file.write_text("from-a-file")
    assert (
        f"the token file {token_file}" in invoke("whoami", "--token-file", str(token_file)).stdout
    )
    environment = invoke(
        "whoami", "--token-file", str(token_file), env={"G2W_ACCESS_TOKEN": "from-env"}
    )
    assert "the environment variable G2W_ACCESS_TOKEN" in environment.stdout
    assert "Expires:   unknown" in environment.stdout
    empty = invoke("login", "--with-token", stdin="")
    assert empty.exit_code == 2


def test_a_personal_access_token_is_refused_as_a_bearer_token(
    loopback_sandbox: Callable[..., ThreadedServer],
) -> None:
    server = loopback_sandbox(rate=0, pats=(PAT,))
    result = invoke("login", "--with-token", env={"G2W_API_URL": server.api_url}, stdin=PAT)
    assert result.exit_code == 4
    assert "the API refused the access token (HTTP 403)" in result.stderr
    assert not credentials_file().exists()


def test_login_with_a_pat_exchanges_it_and_renews_from_it(
    loopback_sandbox: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = loopback_sandbox(rate=0, pats=(PAT,), token_calls=40)
    env = client_env(server)
    result = invoke("login", "--with-pat", env=env, stdin=PAT + "\n")
    assert result.exit_code == 0, result.output
    assert "with a personal access token" in result.stderr
    stored = json.loads(credentials_file().read_text())
    assert stored["pat"] == PAT
    assert stored["refresh_token"] is None
    assert stored["organizer_key"] == ORGANIZER_KEY
    assert stored["api_url"] == server.api_url  # the login's API, used without --api-url
    whoami = invoke("whoami").stdout
    assert "(personal access token)" in whoami
    assert f"API:       {server.api_url}" in whoami
    source = write_csv(tmp_path / "guests.csv", people(150))
    assert "G2W_API_URL" not in os.environ
    done = invoke("register", str(source), "--webinar-key", WEBINAR_KEY, "--rate", "200")
    assert done.exit_code == 0, done.output
    stats = server.sandbox.stats
    assert len(server.sandbox.registrants()) == 150
    # each token served 40 calls; the PAT was exchanged again for every new one
    assert stats["pat_exchanges"] == math.ceil(stats["authorized"] / 40)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != credentials_file():
            assert PAT.encode() not in path.read_bytes(), path
    assert PAT not in done.output


def test_a_pat_from_the_environment_needs_the_client(
    loopback_sandbox: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = loopback_sandbox(rate=0, pats=(PAT,))
    source = write_csv(tmp_path / "guests.csv", people(3))
    args = ["register", str(source), "--api-url", server.api_url, "--webinar-key", WEBINAR_KEY]
    alone = invoke(*args, env={"G2W_PAT": PAT})
    assert alone.exit_code == 2
    assert "set G2W_CLIENT_ID and G2W_CLIENT_SECRET too" in alone.stderr
    wrong = invoke(*args, env={**client_env(server), "G2W_PAT": "not-" + PAT})
    assert wrong.exit_code == 4, wrong.output
    assert (
        "the personal access token could not be exchanged for an access token: the sign-in "
        "server refused" in wrong.stderr
    )
    assert "not-" + PAT not in wrong.output
    assert server.sandbox.stats["authorized"] == 0  # no call went out without a token
    tried = server.sandbox.stats["pat_exchanges"]
    automated = invoke(*args, env={**client_env(server), "G2W_PAT": PAT})
    assert automated.exit_code == 0, automated.output
    assert server.sandbox.stats["pat_exchanges"] == tried + 1
    assert not credentials_file().exists()  # automation keeps nothing


def test_the_redirect_uri_is_fixed_and_printed_and_a_busy_port_is_one_line(
    loopback_sandbox: Callable[..., ThreadedServer], browser: list[str]
) -> None:
    server = login_server(loopback_sandbox)
    taken = socket.socket()
    taken.bind(("127.0.0.1", server.callback_port))  # type: ignore[attr-defined]
    taken.listen()
    with taken:
        busy = sign_in(server)
    assert busy.exit_code == 2
    assert busy.stderr.count("\n") == 1  # the one error line
    assert (
        "(address already in use): another program holds the port; close it, or pass --port N "
        "and register http://127.0.0.1:N/callback as your client's redirect URI" in busy.stderr
    )
    other = free_port()
    wrong = invoke("login", "--port", str(other), "--wait", "1", env=client_env(server))
    assert wrong.exit_code == 4  # GoTo sends nobody back to an unregistered redirect URI
    assert "no sign-in arrived within 1 s" in wrong.stderr
    assert f"Redirect URI: http://127.0.0.1:{other}/callback" in wrong.stderr
    assert not credentials_file().exists()
    default = invoke("login", "--help").stdout
    assert "51123" in default


def test_without_any_organizer_key_the_run_says_how_to_give_one(
    loopback_sandbox: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = loopback_sandbox(rate=0, identity_refuses=True)
    source = write_csv(tmp_path / "guests.csv", people(2))
    args = ["register", str(source), "--api-url", server.api_url, "--webinar-key", WEBINAR_KEY]
    result = invoke(*args, env={"G2W_ACCESS_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert "no organizer key: the API did not say whose token this is" in result.stderr
    assert server.sandbox.stats["created"] == 0
    given = invoke(*args, "--organizer-key", ORGANIZER_KEY, env={"G2W_ACCESS_TOKEN": TOKEN})
    assert given.exit_code == 0


@posix_only
def test_a_credentials_file_others_can_read_is_refused(
    loopback_sandbox: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = loopback_sandbox(rate=0)
    invoke("login", "--with-token", "--organizer-key", ORGANIZER_KEY, stdin=TOKEN)
    credentials_file().chmod(0o644)
    source = write_csv(tmp_path / "guests.csv", people(1))
    result = invoke(
        "register", str(source), "--api-url", server.api_url, "--webinar-key", WEBINAR_KEY
    )
    assert result.exit_code == 2
    assert "other users may read these credentials (mode 644); run: chmod 600 " in result.stderr
    assert server.sandbox.stats["calls"] == 0


def test_a_long_import_renews_the_token_once_per_expiry(
    loopback_sandbox: Callable[..., ThreadedServer], browser: list[str], tmp_path: Path
) -> None:
    server = login_server(loopback_sandbox, token_calls=300)
    assert sign_in(server).exit_code == 0
    first = json.loads(credentials_file().read_text())
    source = write_csv(tmp_path / "guests.csv", people(2000))
    result = invoke(
        "register",
        str(source),
        "--api-url",
        server.api_url,
        "--webinar-key",
        WEBINAR_KEY,
        "--rate",
        "500",
        "--verbose",
    )
    assert result.exit_code == 0, result.output[-2000:]
    stats = server.sandbox.stats
    emails = Counter(entry["email"] for entry in server.sandbox.registrants())
    assert len(emails) == 2000
    assert max(emails.values()) == 1
    assert stats["token_refused"] >= stats["refreshes"] > 0
    # each token served 300 calls: one renewal for each token after the first
    assert stats["refreshes"] == math.ceil(stats["authorized"] / 300) - 1
    last = json.loads(credentials_file().read_text())
    assert last["refresh_token"] != first["refresh_token"]  # the rotated one was stored
    assert status_counts(tmp_path / "guests-joinurls.xlsx") == {"registered": 2000}
    secrets = {
        SECRET,
        first["access_token"],
        first["refresh_token"],
        last["access_token"],
        last["refresh_token"],
    }
    assert not any(secret in result.output for secret in secrets)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != credentials_file():
            content = path.read_bytes()
            assert not any(secret.encode() in content for secret in secrets), path


def test_a_refused_renewal_stops_resumably_and_a_new_login_finishes(
    loopback_sandbox: Callable[..., ThreadedServer], browser: list[str], tmp_path: Path
) -> None:
    server = login_server(loopback_sandbox, token_calls=40, reject_refresh=True)
    assert sign_in(server).exit_code == 0
    source = write_csv(tmp_path / "guests.csv", people(200))
    args = (
        "register",
        str(source),
        "--api-url",
        server.api_url,
        "--webinar-key",
        WEBINAR_KEY,
        "--rate",
        "200",
    )
    stopped = invoke(*args)
    assert stopped.exit_code == 4
    assert "sign in again with g2w-import login" in stopped.stderr
    assert "rows are pending: once this is put right, run the command again." in stopped.stderr
    done = len(server.sandbox.registrants())
    assert 0 < done < 200
    server.sandbox.config.reject_refresh = False
    server.sandbox.config.token_calls = None
    assert sign_in(server).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert f"Resuming: {done} of 200 rows were settled by an earlier run." in again.stderr
    assert len(server.sandbox.registrants()) == 200


def test_a_token_near_its_end_is_renewed_before_the_call(tmp_path: Path) -> None:
    from importer.goto.credentials import Credentials, FileStore
    from importer.goto.oauth import RefreshingAuth

    sent: list[str] = []

    def sign_in_server(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/oauth/token"
        assert b"grant_type=refresh_token&refresh_token=r1" in request.content
        return httpx.Response(
            200, json={"access_token": "a2", "refresh_token": "r2", "expires_in": 3600}
        )

    def api(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["Authorization"])
        return httpx.Response(200, json={})

    store = FileStore(tmp_path / "credentials.json")

    def expiring_in(seconds: float) -> Credentials:
        return Credentials(
            "a1",
            "r1",
            time.time() + seconds,
            lifetime=3600,
            client_id="c",
            client_secret="s",
            auth_url="https://sign-in.test",
        )

    async def call(credentials: Credentials) -> RefreshingAuth:
        auth = RefreshingAuth(
            credentials,
            store,
            lambda: httpx.AsyncClient(transport=httpx.MockTransport(sign_in_server)),
        )
        async with httpx.AsyncClient(transport=httpx.MockTransport(api), auth=auth) as http:
            await http.get("https://api.test/x")
        return auth

    renewed = asyncio.run(call(expiring_in(30)))
    assert sent == ["Bearer a2"]
    assert renewed.refreshes == 1
    stored = store.load()
    assert stored is not None
    assert stored.refresh_token == "r2"
    assert asyncio.run(call(expiring_in(3000))).refreshes == 0
    assert sent[-1] == "Bearer a1"
