"""Who the page works as, and the sign-in it can start: the same OAuth flow as ``g2w-import login``.

The page is told who is signed in, for which organizer, where the login is kept and until when,
never a token: :meth:`SignIn.status` reads the credentials and hands on only those facts. The
flow itself runs here, in the server: the browser opens GoTo's sign-in page, GoTo sends it back to
a one-shot callback on 127.0.0.1, and the login is stored where ``g2w-import login`` stores it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from importer.errors import ImporterError
from importer.goto import credentials, oauth
from importer.goto.connection import Access
from importer.goto.credentials import NotSignedIn
from importer.read import settings

#: how long the page waits for the browser to come back from signing in, in seconds
WAIT = 300.0
#: what the page says when it was given no OAuth client: the person types one in
NO_CLIENT = (
    "Type your GoTo OAuth client's id and secret (from GoTo's developer center; its redirect "
    "URI must be {redirect}), then Sign in; or start the page with G2W_CLIENT_ID and "
    "G2W_CLIENT_SECRET set; or run g2w-import login in a terminal and reload this page."
)


@dataclass(frozen=True)
class OAuthClient:
    """The OAuth client a sign-in from the page uses, as ``g2w-import login`` is given it."""

    client_id: str
    client_secret: str = field(repr=False)
    auth_url: str = oauth.AUTH_URL
    #: the callback's port on 127.0.0.1; it must match the redirect URI registered on the client
    port: int = oauth.CALLBACK_PORT


class SignIn:
    """The sign-in state the page shows, and the sign-in it starts."""

    def __init__(
        self,
        access: Access,
        client: OAuthClient | None = None,
        open_browser: Callable[[str], None] | None = None,
        *,
        auth_url: str = oauth.AUTH_URL,
        port: int = oauth.CALLBACK_PORT,
    ) -> None:
        self.access = access
        self.client = client
        self.open_browser = open_browser
        #: where a client typed on the page signs in, and its callback's port
        self.auth_url, self.port = auth_url, port
        #: the sign-in page's address while a sign-in from the page is under way
        self.address: str | None = None
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def signing_in(self) -> bool:
        return self._task is not None and not self._task.done()

    def status(self) -> dict[str, Any]:
        """What the page shows about the sign-in: facts and hints, never a token."""
        if self.access.sandbox:
            return _status(
                "sandbox",
                "The built-in sandbox",
                [
                    (
                        "No sign-in needed: nothing reaches GoTo. It keeps its registrations "
                        "between runs; g2w-import sandbox reset empties it."
                    )
                ],
            )
        if self.signing_in:
            return _status(
                "signing-in",
                "Signing in…",
                ["Sign in to GoTo in the browser tab that opened, then come back here."],
                address=self.address,
            )
        try:
            found, _, source, _ = credentials.resolve(self.access.token, self.access.token_file)
        except NotSignedIn:
            # the page says how to sign in itself: the button, or the hint
            return _status("signed-out", "Not signed in", [], **self._how_to_sign_in(None))
        except ImporterError as exc:
            return _status("signed-out", "Not signed in", [], **self._how_to_sign_in(str(exc)))
        organizer = self.access.organizer_key or found.organizer_key
        details = [
            f"Organizer {organizer}" if organizer else "Organizer: asked of GoTo at each run"
        ]
        details.append(f"Using {source}")
        left = found.expires_in()
        if left is not None and left <= 0 and not found.renewable:
            return _status(
                "signed-out",
                "The sign-in has expired",
                details,
                **self._how_to_sign_in(None),
            )
        if left is not None:
            until = dt.datetime.fromtimestamp(found.expires_at or 0).astimezone()
            renewed = "; renewed automatically" if found.renewable else ""
            details.append(f"Token valid until {until:%H:%M}{renewed}")
        who = f"Signed in as {found.account}" if found.account else "Signed in"
        return _status("signed-in", who, details, message=self.error)

    def _how_to_sign_in(self, reason: str | None) -> dict[str, Any]:
        needs_client = self.client is None
        hint = NO_CLIENT.format(redirect=oauth.redirect_uri(self.port))
        return {
            "can_sign_in": True,
            "needs_client": needs_client,
            "hint": hint if needs_client else None,
            "message": self.error or reason,
        }

    def start(self, client_id: str | None = None, client_secret: str | None = None) -> None:
        """Start the browser sign-in, unless one is under way; the page follows :meth:`status`.
        Without a client of its own, the page's person types one in: ``client_id`` and
        ``client_secret``, kept for this page's life (and in the login, as ``login`` keeps
        them, to renew it)."""
        if self.signing_in:
            return
        if self.client is None:
            client_id, client_secret = (client_id or "").strip(), (client_secret or "").strip()
            if not client_id or not client_secret:
                raise ImporterError(
                    "type your OAuth client's id and secret first (GoTo's developer center "
                    "shows them)"
                )
            self.client = OAuthClient(client_id, client_secret, self.auth_url, self.port)
        self.address, self.error = None, None
        self._task = asyncio.get_running_loop().create_task(self._sign_in(self.client))

    async def close(self) -> None:
        """Give up a sign-in under way (the server is stopping)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _sign_in(self, client: OAuthClient) -> None:
        def opened(address: str) -> None:
            self.address = address
            if self.open_browser is not None:
                self.open_browser(address)

        try:
            signed = await oauth.sign_in(
                auth_url=client.auth_url.rstrip("/"),
                api_url=settings.api_url(self.access.api_url),
                client_id=client.client_id,
                client_secret=client.client_secret,
                port=client.port,
                wait=WAIT,
                show=lambda line: None,  # the page shows the address itself
                open_browser=opened,
            )
            if signed.organizer_key:
                settings.check_key("the organizer key", signed.organizer_key)
            credentials.store().save(signed)
        except ImporterError as exc:
            self.error = f"Signing in did not work: {exc}"
        finally:
            self.address = None


def _status(state: str, headline: str, details: list[str], **more: Any) -> dict[str, Any]:
    return {
        "state": state,
        "headline": headline,
        "details": details,
        "can_sign_in": False,
        "hint": None,
        "message": None,
        "address": None,
        **more,
    }
