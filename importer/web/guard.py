"""What keeps the page to the person who started it: an ASGI middleware in front of every route.

- **Host**: only ``127.0.0.1:PORT`` and ``localhost:PORT`` are answered. A web site whose name
  is made to point at 127.0.0.1 (DNS rebinding) sends its own name in ``Host`` and is refused.
- **Launch secret**: the address printed at start carries ``?token=SECRET``; that request gets
  the secret as a cookie (HttpOnly, SameSite=Strict, named after the port) and is sent on to the
  same address without it, so that it stays out of the history. Every other request needs the
  cookie, but for the stylesheet (:data:`OPEN`), which the page that says how to get in uses.
- **CSRF**: a request that changes anything (any method but GET and HEAD) needs the secret in
  the ``X-G2W-Secret`` header as well, which another site's page cannot set.
- **Headers**: a Content-Security-Policy that allows only the page's own files, no framing, no
  referrer, no caching.
"""

from __future__ import annotations

import html
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-g2w-secret"
SAFE_METHODS = frozenset({"GET", "HEAD"})
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: what is answered without the secret: the stylesheet alone, nothing that says or does anything
OPEN = frozenset({"/static/page.css"})
NO_SECRET = (
    "This page opens only from the address that g2w-import ui printed when it started "
    "(the one with ?token=); open that address, or start g2w-import ui again."
)
NO_HEADER = (
    "Refused: the request did not come from the g2w-import page itself; reload the page "
    "and try again."
)


def cookie_name(port: int) -> str:
    """Cookies are not kept apart by port: each server's cookie has its own name."""
    return f"g2w_ui_{port}"


class Guard:
    """Lets a request through to ``app`` only from this machine's page, with the secret."""

    def __init__(self, app: ASGIApp, *, port: int, secret: str) -> None:
        self.app = app
        self.secret = secret
        self.port = port
        self.cookie = cookie_name(port)
        self.hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no WebSocket or anything else is served
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, _with_headers(send))
            return
        await self.app(scope, receive, _with_headers(send))

    def _refusal(self, scope: Scope) -> Response | None:
        """The answer that refuses this request, or None to let it through."""
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if host not in self.hosts:
            return PlainTextResponse(
                f"Refused: this page answers only at {' or '.join(sorted(self.hosts))}, "
                f"not at '{host[:100]}'; open the address g2w-import ui printed.",
                status_code=403,
            )
        query = parse_qsl(scope["query_string"].decode("latin-1"))
        given = dict(query).get("token")
        if given is not None and scope["method"] in SAFE_METHODS and self._matches(given):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            target = scope["path"] + (f"?{rest}" if rest else "")
            answer = RedirectResponse(target, status_code=303)
            answer.set_cookie(self.cookie, self.secret, httponly=True, samesite="strict")
            return answer
        if scope["path"] in OPEN and scope["method"] in SAFE_METHODS:
            return None
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header: as if there were none
            cookies = SimpleCookie()
        morsel = cookies.get(self.cookie)
        if morsel is None or not self._matches(morsel.value):
            if "text/html" in headers.get("accept", ""):
                page = _no_secret_page(self.port, stale=given is not None)
                return HTMLResponse(page, status_code=403)
            return JSONResponse({"error": NO_SECRET}, status_code=403)
        if scope["method"] not in SAFE_METHODS and not self._matches(headers.get(HEADER, "")):
            return JSONResponse({"error": NO_HEADER}, status_code=403)
        return None

    def _matches(self, given: str) -> bool:
        return secrets.compare_digest(given.encode(), self.secret.encode())


def _with_headers(send: Send) -> Send:
    """``send`` that adds :data:`SECURITY_HEADERS` to the response's start."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                headers.setdefault(name, value)
        await send(message)

    return sending


def message_page(heading: str, body: str) -> str:
    """A page in the page's own look that says one thing; ``body`` is HTML, its text escaped."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(heading)} · g2w-import</title>"
        '<link rel="stylesheet" href="/static/page.css"></head><body>'
        '<main id="main" class="message-page"><p class="quiet">g2w-import: register people '
        'for a GoTo Webinar</p><section class="step">'
        f"<h1>{html.escape(heading)}</h1>{body}</section></main></body></html>"
    )


def _no_secret_page(port: int, *, stale: bool) -> str:
    """What a person who opened the page without its secret (or with an old one) reads."""
    address = f"http://127.0.0.1:{port}/?token=…"
    why = (
        "The key in this address (the part after <code>?token=</code>) is not this page's: "
        "it is from an earlier start of <code>g2w-import ui</code>, or it was cut short."
        if stale
        else "For your safety, this page opens only from the address that "
        "<code>g2w-import ui</code> printed when it started: the one with its key, "
        "<code>?token=</code>, at the end."
    )
    body = (
        f"<p>{why}</p><ol>"
        "<li>In the terminal where <code>g2w-import ui</code> runs, find the line that starts "
        f"with <code>Page:</code> and open that address, <code>{html.escape(address)}</code>, in "
        "this browser.</li>"
        "<li>Lost it, or the terminal is closed? Start the page again: stop "
        "<code>g2w-import ui</code> with Ctrl-C if it still runs, then run "
        "<code>g2w-import ui</code>. It opens the page in your browser by itself, with a new "
        "key.</li></ol>"
    )
    return message_page("Open the page from its own address", body)
