"""Signing in to GoTo: the OAuth 2.0 authorization-code flow with PKCE, and token refresh.

``login`` opens the browser on GoTo's authorize page; GoTo sends the browser back to a one-shot
server on 127.0.0.1 with a code, which is exchanged for tokens at the token endpoint (client id
and secret in a Basic header). :class:`RefreshingAuth` keeps a long run signed in: it renews the
access token shortly before it expires and when the API refuses it, once for all the workers
that were refused together, and stores a rotated refresh token before using it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import secrets
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from importer.errors import AuthError, ConnectFailed, RateLimited, ServerError, UsageError
from importer.goto import tls
from importer.goto.credentials import Credentials, Store
from importer.goto.decode import json_object, token_refused
from importer.goto.redact import scrub
from importer.serve.exchange import Answer, Request, cannot_listen
from importer.text import clean

AUTH_URL = "https://authentication.logmeininc.com"
#: where GoTo sends the browser back after sign-in; the redirect URI registered on the OAuth
#: client must be identical, so the port is fixed (``login --port`` changes it)
CALLBACK_PORT = 51123
#: how often one request is sent again with a renewed token before its refusal stands
RETRIES_AFTER_REFUSAL = 3


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint answered."""

    access_token: str = field(repr=False)  # secrets: never shown, not even in a repr
    refresh_token: str | None = field(repr=False)
    expires_in: float | None
    organizer_key: str | None
    account: str | None


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(
    auth_url: str, client_id: str, redirect_uri: str, state: str, challenge: str
) -> str:
    """The page the person signs in on."""
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{auth_url.rstrip('/')}/oauth/authorize?{query}"


async def token_request(
    http: httpx.AsyncClient,
    auth_url: str,
    client_id: str,
    client_secret: str,
    form: dict[str, str],
) -> Tokens:
    """POST to the token endpoint; :class:`AuthError` when it refuses."""
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    try:
        response = await http.post(
            f"{auth_url.rstrip('/')}/oauth/token",
            data=form,
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )
    except httpx.TransportError as exc:
        untrusted = tls.untrusted(exc, urlsplit(auth_url).netloc)
        if untrusted is not None:
            raise untrusted from exc
        raise AuthError(f"the sign-in server could not be reached ({type(exc).__name__})") from exc
    body = json_object(response)
    token = body.get("access_token")
    if response.status_code != 200 or not isinstance(token, str) or not token:
        reason = str(
            body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
        )
        secret = [client_secret, *(v for k, v in form.items() if k != "grant_type")]
        reason = clean(scrub(reason, secret))
        raise AuthError(f"the sign-in server refused ({reason})", status=response.status_code)
    expires = body.get("expires_in")
    organizer = body.get("organizer_key")
    return Tokens(
        token,
        body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None,
        min(float(expires), 86_400.0 * 365) if _finite(expires) else None,
        str(organizer) if organizer is not None else None,
        body.get("principal") if isinstance(body.get("principal"), str) else None,
    )


async def identify(
    http: httpx.AsyncClient, api_url: str, access_token: str | None = None
) -> tuple[str | None, str | None]:
    """The organizer key and e-mail behind a token, as far as the API says.

    The current token host no longer puts ``organizer_key`` in its answer, and
    ``/admin/rest/v1/me`` may refuse a token with only the webinar scope; the identity API's
    ``/Users/me`` then says who it is (GoTo's v2 reference: the user key is the organizer key).
    A refused token is an :class:`AuthError`; an API that says nothing gives (None, None).
    Without ``access_token``, ``http`` authenticates the calls itself.
    """
    parts = urlsplit(api_url)
    base = f"{parts.scheme}://{parts.netloc}"
    headers = {"Accept": "application/json"}
    if access_token is not None:
        headers["Authorization"] = f"Bearer {access_token}"
    for path, key_name, mail_name in (
        ("/admin/rest/v1/me", "key", "email"),
        ("/identity/v1/Users/me", "id", "userName"),
    ):
        try:
            response = await http.get(base + path, headers=headers)
        except httpx.TransportError as exc:
            untrusted = tls.untrusted(exc, parts.netloc)
            if untrusted is not None:  # no try would meet another certificate
                raise untrusted from exc
            raise ConnectFailed(
                f"could not connect to the API at {parts.netloc} ({type(exc).__name__}); "
                "check --api-url, the network and any proxy (or try --sandbox)"
            ) from exc
        if refused(response):
            raise AuthError(
                f"the API refused the access token (HTTP {response.status_code}); "
                "sign in again with g2w-import login"
            )
        if response.status_code == 429:
            raise RateLimited("the API is rate limiting (HTTP 429)")
        if response.status_code >= 500:
            raise ServerError(f"the API failed (HTTP {response.status_code})")
        body = json_object(response)
        key, mail = body.get(key_name), body.get(mail_name)
        if response.status_code == 200 and isinstance(key, str | int) and str(key).isdigit():
            return str(key), mail if isinstance(mail, str) else None
    return None, None


def redirect_uri(port: int) -> str:
    """The redirect URI for a callback on this port."""
    return f"http://127.0.0.1:{port}/callback"


class CallbackServer:
    """A one-shot server on 127.0.0.1 (uvicorn, as the page) that receives the browser coming
    back with a code."""

    def __init__(self, port: int = CALLBACK_PORT) -> None:
        # uvicorn and Starlette are imported when a sign-in needs them, not at every start
        from importer.serve.server import HttpServer

        self._http = HttpServer(self._answer, port=port)
        self._result: asyncio.Future[dict[str, str]] | None = None
        #: the state the sign-in under way sent, which its answer carries back
        self.state: str | None = None

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def redirect_uri(self) -> str:
        return redirect_uri(self.port)

    async def start(self) -> None:
        self._result = asyncio.get_running_loop().create_future()
        try:
            await self._http.start()
        except OSError as exc:
            raise UsageError(
                f"cannot listen on 127.0.0.1:{self.port} ({cannot_listen(exc)}): another program "
                "holds the port; close it, or pass --port N and register "
                "http://127.0.0.1:N/callback as your client's "
                "redirect URI"
            ) from exc

    async def wait(self, seconds: float) -> dict[str, str]:
        """The callback's query parameters, once the browser has come back."""
        assert self._result is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), seconds)
        except TimeoutError:
            raise AuthError(
                f"no sign-in arrived within {seconds:.0f} s; run g2w-import login again"
            ) from None
        finally:
            await self.close()

    async def close(self) -> None:
        await self._http.close()

    async def _answer(self, request: Request) -> Answer:
        url = urlsplit(request.target)
        params = {key: values[0] for key, values in parse_qs(url.query).items()}
        done = url.path == "/callback" and ("code" in params or "error" in params)
        page = (
            b"<html><body><h1>Signed in</h1><p>You can close this window and go back to "
            b"g2w-import.</p></body></html>"
            if done and "code" in params and params.get("state") == self.state
            else b"<html><body><h1>Sign-in did not complete</h1></body></html>"
        )
        if done and self._result is not None and not self._result.done():
            self._result.set_result(params)
        return Answer(200 if done else 404, page, "text/html; charset=utf-8")


#: what to do when the API refuses a token, unless where it came from says better
SIGN_IN_AGAIN = "sign in again with g2w-import login (or get a new token)"


class RefreshingAuth(httpx.Auth):
    """Bearer authentication that renews the access token before it runs out or when refused.

    When several requests are refused at once, the first to get the lock renews; the others
    find the new token and are sent again with it. A refused request registered nobody, so
    sending it again is safe. When renewing is impossible (no refresh token, or the sign-in
    server refuses), the refusal stands and the run stops as for any bad token.
    """

    def __init__(
        self,
        credentials: Credentials,
        store: Store | None,
        client_factory: Callable[[], httpx.AsyncClient] = httpx.AsyncClient,
        *,
        when_refused: str = SIGN_IN_AGAIN,
    ) -> None:
        self.credentials = credentials
        #: what to do when the API refuses the token, in words that fit where it came from
        self.when_refused = when_refused
        self.store = store
        self.refreshes = 0
        self._client_factory = client_factory
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return "RefreshingAuth(<hidden>)"

    def secrets(self) -> list[str]:
        """Everything that must never be shown, as it stands now (tokens get renewed)."""
        return self.credentials.secrets()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self.credentials.access_token
        if self.credentials.due():
            token = await self._renew(token) or token
        for _ in range(RETRIES_AFTER_REFUSAL + 1):
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code in (401, 403):
                await response.aread()
            if not refused(response):
                return
            # A newer token, if anyone can get one: another request may have renewed it
            # already, and under load even that one may be used up by the time this is resent.
            fresh = await self._renew(token)
            if fresh is None:
                return
            token = fresh

    def sync_auth_flow(self, request: httpx.Request) -> Any:  # pragma: no cover - async only
        raise RuntimeError("RefreshingAuth works with httpx.AsyncClient only")

    async def _renew(self, stale: str) -> str | None:
        """A token newer than ``stale``: renewed now, or by another request meanwhile."""
        async with self._lock:
            current = self.credentials
            if current.access_token != stale:
                return current.access_token
            if not current.renewable:
                return None
            assert current.client_id is not None
            assert current.client_secret is not None
            form = (
                {"grant_type": "personal_access_token", "pat": current.pat}
                if current.pat
                else {"grant_type": "refresh_token", "refresh_token": current.refresh_token or ""}
            )
            async with self._client_factory() as http:
                try:
                    tokens = await token_request(
                        http,
                        current.auth_url or AUTH_URL,
                        current.client_id,
                        current.client_secret,
                        form,
                    )
                except AuthError as exc:
                    if stale:
                        return None  # the refusal of the token in hand stands
                    # no token at all (a PAT never exchanged): nothing can be sent
                    raise AuthError(
                        f"the personal access token could not be exchanged for an access "
                        f"token: {exc}; check G2W_PAT, G2W_CLIENT_ID, G2W_CLIENT_SECRET and "
                        "G2W_AUTH_URL, or sign in with g2w-import login --with-pat"
                    ) from exc
            renewed = current.renewed(tokens.access_token, tokens.refresh_token, tokens.expires_in)
            if self.store is not None:
                self.store.save(renewed)  # a rotated refresh token is kept before it is used
            self.credentials = renewed
            self.refreshes += 1
            return renewed.access_token


def refused(response: httpx.Response) -> bool:
    """Whether the API refused the token itself (401, or 403 ``InvalidToken``)."""
    return response.status_code == 401 or (response.status_code == 403 and token_refused(response))


def _client(url: str) -> httpx.AsyncClient:
    """A sign-in's HTTP client, over the wire every call takes."""
    # aiohttp is imported when a command first calls out, not at every start: about 0.1 s
    from importer.goto import wire

    return wire.client(url)


async def sign_in(
    *,
    auth_url: str,
    api_url: str,
    client_id: str,
    client_secret: str,
    port: int,
    wait: float,
    show: Callable[[str], None],
    open_browser: Callable[[str], None] | None,
) -> Credentials:
    """The authorization-code flow with PKCE: browser, callback on 127.0.0.1, code for tokens.

    The organizer key comes from the token answer, or from ``/admin/rest/v1/me`` when absent.
    """
    tls.context()  # an unusable CA bundle is refused before the browser opens
    callback = CallbackServer(port)
    await callback.start()
    show(f"Redirect URI: {callback.redirect_uri} (register exactly this on your client)")
    verifier, challenge = pkce()
    state = callback.state = secrets.token_urlsafe(16)
    address = authorize_url(auth_url, client_id, callback.redirect_uri, state, challenge)
    show("Sign in to GoTo in your browser. If no browser opens, visit this address:")
    show(f"  {address}")
    if open_browser is not None:
        # In a thread, unwaited: some browser commands only return once they are closed.
        asyncio.get_running_loop().run_in_executor(None, open_browser, address)
    answer = await callback.wait(wait)
    if answer.get("state") != state:
        raise AuthError("the sign-in answer did not match this request; run g2w-import login again")
    if "error" in answer:
        raise AuthError(f"sign-in was refused ({answer['error']})")
    # one client for the sign-in server and the API after it: the proxy the environment names
    # for the first (both are GoTo's public hosts)
    async with _client(auth_url) as http:
        tokens = await token_request(
            http,
            auth_url,
            client_id,
            client_secret,
            {
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": callback.redirect_uri,
                "code_verifier": verifier,
            },
        )
        client = Credentials(
            "", client_id=client_id, client_secret=client_secret, auth_url=auth_url
        )
        return await _signed_in(http, api_url, tokens, None, client)


async def sign_in_with_token(token: str, api_url: str, organizer_key: str | None) -> Credentials:
    """A sign-in from a bare access token given by hand: it lasts about an hour and cannot be
    renewed."""
    account = None
    if not organizer_key:
        async with _client(api_url) as http:
            organizer_key, account = await identify(http, api_url, token)
    return Credentials(token, organizer_key=organizer_key, account=account)


async def sign_in_with_pat(
    pat: str,
    *,
    client_id: str,
    client_secret: str,
    auth_url: str,
    api_url: str,
    organizer_key: str | None,
) -> Credentials:
    """A sign-in with a personal access token (GoTo's guide "How to obtain an OAuth access
    token using a Personal Access Token"): the PAT is exchanged at the token endpoint with the
    OAuth client's credentials, and kept to be exchanged again whenever the token runs out."""
    async with _client(api_url) as http:
        tokens = await token_request(
            http,
            auth_url,
            client_id,
            client_secret,
            {"grant_type": "personal_access_token", "pat": pat},
        )
        client = Credentials(
            "", client_id=client_id, client_secret=client_secret, auth_url=auth_url, pat=pat
        )
        return await _signed_in(http, api_url, tokens, organizer_key, client)


def _finite(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a number a lifetime can be: not NaN, not past what a float holds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


async def _signed_in(
    http: httpx.AsyncClient,
    api_url: str,
    tokens: Tokens,
    organizer_key: str | None,
    client: Credentials,
) -> Credentials:
    """The credentials a token answer gives, with the organizer key from the answer or, when it
    has none, from the API; ``client`` carries the OAuth client and the PAT to renew by (a PAT
    is renewed by exchanging it again, never by a refresh token)."""
    organizer, account = organizer_key or tokens.organizer_key, tokens.account
    if not organizer:
        organizer, email = await identify(http, api_url, tokens.access_token)
        account = account or email
    signed = replace(client, organizer_key=organizer, account=account)
    refresh = None if client.pat else tokens.refresh_token
    return signed.renewed(tokens.access_token, refresh, tokens.expires_in)
