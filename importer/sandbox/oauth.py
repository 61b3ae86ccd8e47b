"""The sandbox's sign-in server: GoTo's authorize and token endpoints, and its token checks.

It follows GoTo's documented OAuth flow (``../shared/g2w-api.md``, "Authentication"): the
authorization code with PKCE S256; a redirect URI that must be identical to the one registered
on the OAuth client, in the authorize and the token request alike; client credentials in a
Basic header; refresh tokens that rotate; personal access tokens that are *exchanged* for an
access token (``grant_type=personal_access_token``), never accepted as one. The API side accepts
only access tokens this server issued, while they last and have calls left.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import math
import secrets
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from importer.sandbox.faults import SandboxConfig
from importer.serve.exchange import Answer


class SignIn:
    """Issued codes, access and refresh tokens, and how long each token lives."""

    def __init__(
        self, config: SandboxConfig, clock: Callable[[], float], stats: collections.Counter[str]
    ) -> None:
        self.config = config
        self.clock = clock
        self.stats = stats
        self._uses: dict[str, int] = {}
        self._expires: dict[str, float] = {}
        self._codes: dict[str, tuple[str, str]] = {}
        self._refresh: set[str] = set()
        for token in config.tokens:  # given by hand: they last as long as the sandbox
            self._expires[token] = math.inf

    def issue(self) -> str:
        """A new access token (as a sign-in would give), valid for ``token_seconds``."""
        token = secrets.token_urlsafe(24)
        self._expires[token] = self.clock() + self.config.token_seconds
        return token

    def token_valid(self, authorization: str) -> bool:
        """Whether a bearer token was issued here, is unexpired, and has calls left."""
        if not authorization.startswith("Bearer "):
            return False
        token = authorization[7:].strip()
        expires = self._expires.get(token)
        if expires is None or self.clock() >= expires:
            return False
        used = self._uses[token] = self._uses.get(token, 0) + 1
        limit = self.config.token_calls
        return limit is None or used <= limit

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        """Answer a request under ``/oauth/``."""
        if method == "GET" and path == "/oauth/authorize":
            return self._authorize(query)
        if method != "POST" or path != "/oauth/token":
            return error(404, "not_found", f"no such path {path}")
        if not _client_credentials(headers.get("authorization", "")):
            return error(401, "invalid_client", "client credentials are required")
        self.stats["token_requests"] += 1
        return self._token(dict(parse_qsl(body.decode("utf-8", "replace"))))

    def _authorize(self, query: dict[str, str]) -> Answer:
        redirect, challenge = query.get("redirect_uri"), query.get("code_challenge")
        if not redirect or not query.get("client_id") or not challenge:
            return error(
                400, "invalid_request", "client_id, redirect_uri and code_challenge are required"
            )
        if redirect != self.config.redirect_uri:
            # GoTo sends the browser nowhere when the URI differs from the registered one
            return error(
                400,
                "invalid_request",
                f"redirect_uri {redirect} is not the one registered for this client",
            )
        code = secrets.token_urlsafe(16)
        self._codes[code] = (redirect, challenge)
        separator = "&" if "?" in redirect else "?"
        state = urlencode({"code": code, "state": query.get("state", "")})
        location = f"{redirect}{separator}{state}"
        return Answer(302, b"", "text/html", headers=(("Location", location),))

    def _token(self, form: dict[str, str]) -> Answer:
        grant = form.get("grant_type")
        refresh: str | None = secrets.token_urlsafe(24)
        if grant == "authorization_code":
            redirect, challenge = self._codes.pop(form.get("code", ""), (None, None))
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if (
                redirect is None
                or redirect != form.get("redirect_uri")
                or digest.rstrip(b"=").decode() != challenge
            ):
                return error(400, "invalid_grant", "the code is unknown or does not match")
        elif grant == "refresh_token":
            self.stats["refreshes"] += 1
            if self.config.reject_refresh or form.get("refresh_token") not in self._refresh:
                return error(400, "invalid_grant", "the refresh token is not valid")
            self._refresh.discard(form["refresh_token"])  # rotated: each one works once
        elif grant == "personal_access_token":
            self.stats["pat_exchanges"] += 1
            if form.get("pat") not in self.config.pats:
                return error(400, "invalid_grant", "the personal access token is not valid")
            refresh = None  # GoTo's guide: the answer carries no refresh token
        else:
            return error(400, "unsupported_grant_type", f"grant_type {grant}")
        answer: dict[str, object] = {
            "access_token": self.issue(),
            "token_type": "Bearer",
            "expires_in": int(self.config.token_seconds),
            "scope": "collab:",
            "principal": "organizer@sandbox.invalid",
        }
        if refresh is not None:
            self._refresh.add(refresh)
            answer["refresh_token"] = refresh
        return Answer(200, json.dumps(answer).encode())


def _client_credentials(authorization: str) -> bool:
    """Whether a Basic header carries ``client_id:client_secret``."""
    if not authorization.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    client, _, secret = decoded.partition(":")
    return bool(client and secret)


def error(status: int, code: str, description: str) -> Answer:
    """An OAuth error answer."""
    return Answer(status, json.dumps({"error": code, "error_description": description}).encode())
