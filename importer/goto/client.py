"""The GoTo Webinar REST API (v2), over an ``httpx.AsyncClient`` that the caller builds.

One method per call, one attempt per call: pacing and retries belong to ``session.py``,
reconciliation to ``register.py``. Every failure is translated into :mod:`importer.errors`; keys
stay strings end to end, since they exceed 2**53 and would lose digits as floats.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from typing import Any

import httpx

from importer.errors import (
    ApiError,
    AuthError,
    ConnectFailed,
    LimitReached,
    OutcomeUnknown,
    RateLimited,
    ReadRefused,
    RequestRejected,
    ServerError,
    WebinarNotFound,
    WebinarRefused,
)
from importer.goto import provenance, tls
from importer.goto.decode import (
    as_count,
    as_size,
    as_text,
    choices,
    describe,
    json_body,
    json_object,
    key_text,
    link_text,
    objects,
    parse_retry_after,
    parse_webinar,
    registrants,
    token_refused,
)
from importer.goto.oauth import SIGN_IN_AGAIN, RefreshingAuth
from importer.goto.provenance import ServerClock
from importer.model import (
    Answer,
    Form,
    FormField,
    ListedRegistrant,
    Question,
    Registrant,
    Status,
    Webinar,
)

#: the largest page the registrant list serves
PAGE_LIMIT = 200
#: how many of the API's addresses a client keeps parsed (a run uses a handful)
URLS_KEPT = 64
#: sent on every call: on v2 the vendor type ``application/vnd.citrix.g2wapi-v1.1+json`` selects
#: a "basic" create that silently drops every field but the names and the e-mail
ACCEPT = "application/json"
#: a 403 that speaks of these is a quota or rate refusal, not a bad token (GoTo's wording for a
#: spent daily quota is not documented)
_QUOTA_WORDS = re.compile(
    r"\b(quota|qps|rate limit|rate-limit|too many requests|request limit)", re.IGNORECASE
)


@dataclass(frozen=True)
class Registration:
    """A successful create (201) or the person's existing registration (409)."""

    status: Status
    registrant_key: str | None
    join_url: str | None
    approval: str | None = None

    def with_keys(self, registrant_key: str, join_url: str | None) -> Registration:
        """The same answer, completed from the registrant list."""
        return replace(self, registrant_key=registrant_key, join_url=join_url)


@dataclass(frozen=True)
class Page:
    """One page of the registrant list and what its shape says about the others."""

    entries: list[ListedRegistrant]
    #: "array" (a bare array), "data" (``{data, total}``) or "spec" (``{_embedded, page}``)
    style: str
    total: int | None = None
    pages: int | None = None
    #: the page size the server used (spec style)
    size: int | None = None


class _Api:
    """One organizer's side of the API: sending a request, and translating a refusal."""

    def __init__(self, http: httpx.AsyncClient, organizer_key: str, webinar_key: str = "") -> None:
        self.http = http
        self.organizer_key = organizer_key
        self.webinar_key = webinar_key
        self._urls: dict[str | tuple[object, ...], httpx.URL] = {}
        #: GoTo's clock against this computer's, from the answers' Date headers
        self.clock = ServerClock()

    async def _send(
        self, method: str, url: str, params: dict[str, str | int] | None = None, **kwargs: Any
    ) -> httpx.Response:
        # httpx's timeouts are per read: a server that trickles its answer a byte at a time
        # would hold a call for ever, so the whole call has the same deadline too
        deadline = self.http.timeout.read
        try:
            async with asyncio.timeout(deadline):
                sent = provenance.now()
                response = await self.http.request(
                    method, self._url(url, params), headers={"Accept": ACCEPT}, **kwargs
                )
                self.clock.observe(response.headers.get("date"), sent, provenance.now())
                return response
        except TimeoutError as exc:
            within = f" within {deadline:g} s (--timeout)" if deadline else ""
            raise OutcomeUnknown(f"no complete answer from the API{within}") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            host = self.http.base_url.netloc.decode("ascii", "replace") or "?"
            refused = tls.untrusted(exc, host)
            if refused is not None:  # every try would meet the same certificate
                raise refused from exc
            raise ConnectFailed(
                f"could not connect to the API at {host} ({_reason(exc)}); check --api-url, "
                "the network and any proxy (or try --sandbox)"
            ) from exc
        except httpx.LocalProtocolError as exc:  # refused on this side, before sending
            raise RequestRejected(f"the request could not be sent ({_reason(exc)})") from exc
        except httpx.TransportError as exc:
            raise OutcomeUnknown(f"no answer from the API ({_reason(exc)})") from exc
        except httpx.DecodingError as exc:
            raise OutcomeUnknown(f"no answer that could be read ({_reason(exc)})") from exc

    def _url(self, path: str, params: dict[str, str | int] | None) -> httpx.URL:
        """The API's address for ``path`` and ``params``, as httpx joins them to the base URL;
        the same few are asked for thousands of times in a run, and parsing one costs more
        than sending it."""
        key = (path, *params.items()) if params else path
        url = self._urls.get(key)
        if url is None:
            base, url = self.http.base_url, httpx.URL(path)
            if url.is_relative_url:
                url = base.copy_with(raw_path=base.raw_path + url.raw_path.lstrip(b"/"))
            if params:
                url = url.copy_merge_params(params)
            if len(self._urls) < URLS_KEPT:
                self._urls[key] = url
        return url

    def _error(self, response: httpx.Response) -> ApiError:
        status = response.status_code
        detail = describe(response)
        if status == 401 or (status == 403 and token_refused(response)):
            auth = self.http.auth
            advice = auth.when_refused if isinstance(auth, RefreshingAuth) else SIGN_IN_AGAIN
            return AuthError(
                f"the API refused the access token (HTTP {status}: {detail}); {advice}",
                status=status,
            )
        if status == 403 and _QUOTA_WORDS.search(detail):
            return LimitReached(
                f"the API refuses further calls for now (HTTP 403: {detail})", status=status
            )
        if status == 403 and response.request.method == "POST":
            # not about the token: about the webinar (full, closed); the same command can go on
            # once it is fixed in GoTo Webinar
            return WebinarRefused(
                f"GoTo refused the registration for webinar {self.webinar_key}: {detail}",
                status=status,
            )
        if status == 403:
            return AuthError(
                f"the API refused access (HTTP 403: {detail}); check that organizer "
                f"{self.organizer_key} owns this webinar and that the token is theirs",
                status=status,
            )
        if status == 404:
            if not self.webinar_key:
                return WebinarNotFound(
                    f"organizer {self.organizer_key} was not found (a wrong key?); check "
                    "--organizer-key, or leave it out to use the login's",
                    status=status,
                )
            return WebinarNotFound(
                f"webinar {self.webinar_key} was not found for organizer {self.organizer_key} "
                "(cancelled, or a wrong key); check --webinar-key and --organizer-key",
                status=status,
            )
        if status == 429:
            return RateLimited(
                "the API is rate limiting (HTTP 429)",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if 400 <= status < 500 and response.request.method == "GET":
            # a read names nothing but keys: GoTo's 400 is about the webinar (a mistyped key,
            # or another organizer's), not one row, and no later call can get past it; so is
            # any other refusal of a read (405, 410, 422)
            return ReadRefused(_refused_read(self.organizer_key, self.webinar_key, status, detail))
        if 400 <= status < 500:
            return RequestRejected(detail, status=status)
        said = detail if detail.startswith(f"HTTP {status}") else f"HTTP {status}: {detail}"
        return ServerError(f"the API failed ({said})", status=status)


class G2WClient(_Api):
    """Calls for one organizer's webinar."""

    def __init__(self, http: httpx.AsyncClient, organizer_key: str, webinar_key: str) -> None:
        super().__init__(http, organizer_key, webinar_key)
        self._webinar_path = f"organizers/{organizer_key}/webinars/{webinar_key}"

    async def create_registrant(self, registrant: Registrant, *, resend: bool) -> Registration:
        """Register one person. 201 → registered; 409 → already registered (keys if given)."""
        response = await self._send(
            "POST",
            f"{self._webinar_path}/registrants",
            params={"resendConfirmation": "true" if resend else "false"},
            json=registrant.body(),
        )
        if response.status_code in (200, 201):
            body = json_object(response)
            key, url = key_text(body.get("registrantKey")), link_text(body.get("joinUrl"))
            if key is None:
                # The person is registered, but the answer does not say as whom (no key, or
                # none that is a key): only the registrant list can tell, exactly as if the
                # answer had been lost. A join URL that is no web address is asked of it too.
                raise OutcomeUnknown(f"HTTP {response.status_code} without a registrantKey")
            return Registration(Status.REGISTERED, key, url, as_text(body.get("status")))
        if response.status_code == 409:
            body = json_object(response)
            return Registration(
                Status.ALREADY_REGISTERED,
                key_text(body.get("registrantKey")),
                link_text(body.get("joinUrl")),
                as_text(body.get("status")),
            )
        raise self._error(response)

    async def get_registrant(self, registrant_key: str) -> ListedRegistrant | None:
        """One registrant, with the answers to custom questions; None if there is none."""
        response = await self._send("GET", f"{self._webinar_path}/registrants/{registrant_key}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(response)
        found = registrants([json_object(response)])
        return found[0] if found else None

    async def list_registrants_page(
        self, page: int, size: int = PAGE_LIMIT, *, style: str | None = None
    ) -> Page:
        """One page of the registrant list, in whichever shape the server answers.

        The first request (``style`` None) sends ``page`` and ``limit``; once the answer's
        shape is known, only the parameters that shape's server reads are sent: ``page`` and
        ``size`` for the spec's ``{_embedded, page}`` style, ``page`` and ``limit`` otherwise.
        """
        name = "size" if style == "spec" else "limit"
        response = await self._send(
            "GET", f"{self._webinar_path}/registrants", params={"page": page, name: size}
        )
        if response.status_code != 200:
            raise self._error(response)
        body = json_body(response)
        if isinstance(body, list):
            return Page(registrants(body), "array")
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            return Page(registrants(body["data"]), "data", total=as_count(body.get("total")))
        embedded = body.get("_embedded") if isinstance(body, dict) else None
        if isinstance(embedded, dict):
            items = next((v for v in embedded.values() if isinstance(v, list)), [])
            paging = body.get("page")
            paging = paging if isinstance(paging, dict) else {}
            return Page(
                registrants(items),
                "spec",
                total=as_count(paging.get("totalElements")),
                pages=as_count(paging.get("totalPages")),
                size=as_count(paging.get("size")),
            )
        raise ServerError("the registrant list came back in an unknown shape", status=200)

    async def get_webinar(self) -> Webinar:
        """The webinar's subject and first start time."""
        response = await self._send("GET", self._webinar_path)
        if response.status_code != 200:
            raise self._error(response)
        return parse_webinar(json_object(response), self.webinar_key)

    async def get_form(self) -> Form:
        """The webinar's registration fields and custom questions."""
        response = await self._send("GET", f"{self._webinar_path}/registrants/fields")
        if response.status_code != 200:
            raise self._error(response)
        body = json_object(response)
        fields = tuple(
            FormField(
                name,
                item.get("required") is True,
                as_size(item.get("maxSize")),
                choices(item),
            )
            for item in objects(body.get("fields"))
            if (name := as_text(item.get("field")))
        )
        questions = tuple(
            Question(
                key,
                text,
                item.get("required") is True,
                as_text(item.get("type")) or "shortAnswer",
                as_size(item.get("maxSize")),
                tuple(
                    Answer(answer_key, answer)
                    for a in objects(item.get("answers"))
                    if (answer_key := as_text(a.get("answerKey")))
                    and (answer := as_text(a.get("answer")))
                ),
            )
            for item in objects(body.get("questions"))
            if (key := as_text(item.get("questionKey"))) and (text := as_text(item.get("question")))
        )
        return Form(fields, questions)

    async def delete_registrant(self, registrant_key: str) -> bool:
        """Cancel one registration (204); False when there is no such registrant (404), as after
        an earlier cancellation whose answer was lost."""
        response = await self._send("DELETE", f"{self._webinar_path}/registrants/{registrant_key}")
        if response.status_code in (200, 204):
            return True
        if response.status_code == 404:
            return False
        raise self._error(response)


class OrganizerClient(_Api):
    """Calls about an organizer rather than one webinar: the list of their webinars."""

    async def webinars_page(
        self, start: str, end: str, page: int, size: int = PAGE_LIMIT
    ) -> tuple[list[Webinar], int | None]:
        """One page of the organizer's webinars between two ISO-8601 times, and how many
        pages there are (None when the server does not page)."""
        response = await self._send(
            "GET",
            f"organizers/{self.organizer_key}/webinars",
            params={"fromTime": start, "toTime": end, "page": page, "size": size},
        )
        if response.status_code != 200:
            raise self._error(response)
        body = json_body(response)
        items: object
        if isinstance(body, list):
            items, pages = body, None
        elif isinstance(body, dict):
            embedded = body.get("_embedded")
            items = embedded.get("webinars") if isinstance(embedded, dict) else []
            paging = body.get("page")
            total = paging.get("totalPages") if isinstance(paging, dict) else None
            pages = total if isinstance(total, int) and not isinstance(total, bool) else None
        else:
            raise ServerError("the list of webinars came back in an unknown shape", status=200)
        webinars = [
            parse_webinar(item, key)
            for item in objects(items)
            if (key := as_text(item.get("webinarKey")))
        ]
        return webinars, pages


def _refused_read(organizer_key: str, webinar_key: str, status: int, detail: str) -> str:
    said = detail if detail.startswith(f"HTTP {status}") else f"HTTP {status}: {detail}"
    if not webinar_key:
        return (
            f"GoTo refused to list the webinars of organizer {organizer_key} ({said}); check "
            "--organizer-key, or leave it out to use the login's"
        )
    return (
        f"GoTo refused webinar key {webinar_key} ({said}); check the webinar key: "
        "g2w-import webinars lists the keys of your webinars"
    )


def _reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__
