"""Signing in once: the OAuth flow, stored credentials, and renewal in the middle of long runs."""

from __future__ import annotations

import asyncio
import json
import math
import os
import stat
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook

from importer import cli as cli_module
from importer.cli import cli
from importer.sandbox import ORGANIZER_KEY, WEBINAR_KEY

from .conftest import ThreadedServer, people, write_csv

SECRET = "client-secret-canary-93b1"


def invoke(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)


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

    monkeypatch.setattr(cli_module, "_open_browser", follow)
    return visited


def sign_in(server: ThreadedServer) -> Result:
    env = {
        "G2W_AUTH_URL": server.api_url.split("/G2W/")[0],
        "G2W_API_URL": server.api_url,
        "G2W_CLIENT_ID": "my-client",
        "G2W_CLIENT_SECRET": SECRET,
    }
    return invoke("login", env=env)


def test_login_flow_stores_the_tokens_privately_and_whoami_tells_who(
    loopback_sandbox: Callable[..., ThreadedServer], browser: list[str]
) -> None:
    server = loopback_sandbox(rate=0)
    result = sign_in(server)
    assert result.exit_code == 0, result.output
    assert "Signed in as organizer@sandbox.invalid (organizer 5071418929213466883)" in (
        result.stderr
    )
    assert "code_challenge_method=S256" in browser[0]
    stored = credentials_file()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    record = json.loads(stored.read_text())
    assert record["organizer_key"] == ORGANIZER_KEY  # looked up at /admin/rest/v1/me
    assert record["refresh_token"]
    assert record["client_secret"] == SECRET
    for secret in (record["access_token"], record["refresh_token"], SECRET):
        assert secret not in result.output
    who = invoke("whoami")
    assert who.exit_code == 0
    assert f"Using:     the stored login in {stored}" in who.stdout
    assert f"Organizer: {ORGANIZER_KEY}" in who.stdout
    assert "(in 60 minutes); renewed automatically" in who.stdout
    assert record["access_token"] not in who.output
    assert invoke("logout").exit_code == 0
    assert not stored.exists()
    assert invoke("whoami").exit_code == 4


def test_login_refuses_an_answer_for_another_request(
    loopback_sandbox: Callable[..., ThreadedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback_sandbox(rate=0)

    def forged(address: str) -> None:
        redirect = httpx.get(address).headers["Location"]
        httpx.get(redirect.split("&state=")[0] + "&state=forged")

    monkeypatch.setattr(cli_module, "_open_browser", forged)
    result = sign_in(server)
    assert result.exit_code == 4
    assert "did not match this request" in result.stderr
    assert not credentials_file().exists()


def test_login_with_a_token_from_standard_input_and_the_order_of_sources(
    loopback_sandbox: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = loopback_sandbox(rate=0)
    result = invoke(
        "login",
        "--with-token",
        env={"G2W_API_URL": server.api_url},
        stdin="personal-access-token-1\n",
    )
    assert result.exit_code == 0, result.output
    assert "personal-access-token-1" not in result.output
    assert "the stored login" in invoke("whoami").stdout
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


def test_a_credentials_file_others_can_read_is_refused(
    loopback_sandbox: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = loopback_sandbox(rate=0)
    invoke("login", "--with-token", "--organizer-key", ORGANIZER_KEY, stdin="t0ken\n")
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
    server = loopback_sandbox(rate=0, token_calls=300)
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
    rows = list(
        load_workbook(tmp_path / "guests-joinurls.xlsx")["Registrants"].iter_rows(values_only=True)
    )
    statuses = Counter(row[rows[0].index("status")] for row in rows[1:])
    assert statuses == {"registered": 2000}
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
    server = loopback_sandbox(rate=0, token_calls=40, reject_refresh=True)
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
    assert "rows are pending: run the same command again" in stopped.stderr
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
    from importer.credentials import Credentials, FileStore
    from importer.oauth import RefreshingAuth

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
