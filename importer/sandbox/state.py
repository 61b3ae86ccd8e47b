"""The simulated GoTo Webinar API: its webinars, their registrants, and how it answers.

It speaks the same HTTP as the real API (paths, status codes, body shapes, 19-digit keys) and,
where the real API's behaviour is unconfirmed, models the least convenient answer (see
``../shared/g2w-api.md``): a 409 without the registrant's keys, a 429 without ``Retry-After``,
a rate limit counted over any one-second window.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import email.utils
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from importer.model import email_key
from importer.sandbox.faults import Dice, RateWindow, SandboxConfig
from importer.sandbox.oauth import SignIn
from importer.sandbox.webinars import (
    JOIN_HOST,
    ORGANIZER_KEY,
    STANDARD_FIELDS,
    WEBINAR_KEY,
    SandboxWebinar,
    body_problem,
    catalogue,
)
from importer.serve.exchange import Answer, Request

if TYPE_CHECKING:
    from importer.sandbox.store import SandboxStore

PREFIX = "/G2W/rest/v2"

_WEBINAR_PATH = re.compile(r"/organizers/(?P<org>\d+)/webinars/(?P<web>[^/]+)(?P<rest>/.*)?")
_WEBINARS_PATH = re.compile(r"/organizers/(?P<org>\d+)/webinars")


class Sandbox:
    """The simulated API's state and request handling."""

    def __init__(
        self, config: SandboxConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or SandboxConfig()
        self.clock = clock
        self.organizer_key = ORGANIZER_KEY
        self.webinar_key = WEBINAR_KEY
        self.dice = Dice(self.config.seed)
        self.window = RateWindow(self.config, clock)
        start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(
            hour=15, minute=0, second=0, microsecond=0
        )
        self.webinars = catalogue(start)
        #: every registrant key issued, so that none is issued twice
        self.keys: set[str] = set()
        #: where registrations are kept between runs (the in-process sandbox's); None: only
        #: in memory
        self.store: SandboxStore | None = None
        #: counts of what happened, for tests and benchmarks
        self.stats: collections.Counter[str] = collections.Counter()
        self.sign_in = SignIn(self.config, clock, self.stats)

    def registrants(self, webinar_key: str = WEBINAR_KEY) -> list[dict[str, Any]]:
        """Everyone registered for a webinar, in order of registration."""
        return list(self.webinars[webinar_key].registrants)

    async def handle(self, request: Request) -> Answer:
        """Answer one HTTP request, with the ``Date`` header an origin server with a clock
        sends (RFC 9110 §6.6.1), to the second."""
        answer = await self._answer(request)
        if answer.drop:
            return answer
        date = email.utils.formatdate(time.time() + self.config.clock_skew, usegmt=True)
        return dataclasses.replace(answer, headers=(*answer.headers, ("Date", date)))

    async def _answer(self, request: Request) -> Answer:
        self.stats["calls"] += 1
        url = urlsplit(request.target)
        query = dict(parse_qsl(url.query))
        if url.path.startswith("/oauth/"):
            return self.sign_in.handle(
                request.method, url.path, query, request.headers, request.body
            )
        if not url.path.startswith((PREFIX, "/admin/", "/identity/")):
            return _error(404, "NotFound", f"no such path {url.path}")
        if not self.sign_in.token_valid(request.headers.get("authorization", "")):
            self.stats["token_refused"] += 1
            return _token_refused()
        self.stats["authorized"] += 1
        if url.path in ("/admin/rest/v1/me", "/identity/v1/Users/me"):
            self.stats["who_asked"] += 1  # "whose token is this", asked of either API
        if url.path == "/admin/rest/v1/me":
            if self.config.me_refuses:
                return _error(403, "Forbidden", "The token's scope does not allow this call")
            return _ok(
                {
                    "key": int(self.organizer_key),
                    "email": "organizer@sandbox.invalid",
                    "firstName": "Sandbox",
                    "lastName": "Organizer",
                }
            )
        if url.path == "/identity/v1/Users/me":
            if self.config.identity_refuses:
                return _error(403, "Forbidden", "The token's scope does not allow this call")
            # GoTo's v2 reference: the user key and the organizer key are the same value
            return _ok(
                {
                    "id": self.organizer_key,
                    "userName": "organizer@sandbox.invalid",
                    "displayName": "Sandbox Organizer",
                }
            )
        if self.config.quota is not None and self.stats["created"] >= self.config.quota:
            self.stats["refused"] += 1
            payload = {"int_err_code": "QuotaExceeded", "msg": "Daily request quota exceeded"}
            return Answer(403, json.dumps(payload).encode())
        if not self.window.admit() or self.dice.chance(self.config.throttle_rate):
            self.stats["throttled"] += 1
            return _error(429, "TooManyRequests", "Rate limit exceeded")
        if self.dice.chance(self.config.error_rate):
            self.stats["errors"] += 1
            return Answer(503, b"<html><body>Service Unavailable</body></html>", "text/html")
        try:
            with self._kept(write=request.method in ("POST", "DELETE")):
                answer = self._route(request.method, url.path[len(PREFIX) :], query, request.body)
        except sqlite3.Error as exc:  # as a server whose database fails: nothing was done
            self.stats["errors"] += 1
            return _error(503, "ServiceUnavailable", f"the sandbox's file cannot be used: {exc}")
        if request.method == "POST" and answer.status == 201:
            if self.dice.chance(self.config.gateway_timeout_rate):
                self.stats["gateway_timeouts"] += 1
                return Answer(
                    504, b"<html><body><h1>504 Gateway Time-out</h1></body></html>", "text/html"
                )
            if self.dice.chance(self.config.drop_rate):
                self.stats["dropped"] += 1
                return Answer(0, drop=True)
            if self.dice.chance(self.config.slow_rate):
                self.stats["slow"] += 1
                await asyncio.sleep(self.config.slow_seconds)
        delay = self.dice.delay(self.config.latency, self.config.jitter)
        if delay:
            await asyncio.sleep(delay)
        return answer

    def _kept(self, *, write: bool) -> contextlib.AbstractContextManager[None]:
        """Around one call: with a store, what other processes committed taken in first, and
        a create or delete made in one write transaction with that reading."""
        if self.store is None:
            return contextlib.nullcontext()
        if write:
            return self.store.writing(self)
        return self._synced(self.store)

    @contextlib.contextmanager
    def _synced(self, store: SandboxStore) -> Iterator[None]:
        store.sync(self)
        yield

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> Answer:
        listing = _WEBINARS_PATH.fullmatch(path)
        if listing and method == "GET":
            if listing["org"] != self.organizer_key:
                return _error(404, "NotFound", "Organizer not found")
            return self._webinars(query)
        match = _WEBINAR_PATH.fullmatch(path)
        if not match:
            return _error(404, "NotFound", f"no such path {path}")
        if match["org"] != self.organizer_key:
            return _error(404, "NotFound", "Organizer not found")
        if not _well_formed(match["web"]):
            # GoTo answers a key that is no positive int64 with 400 and its words, not 404
            return _error(400, "InvalidParameter", f"Invalid webinarKey: {match['web']}")
        webinar = self.webinars.get(match["web"])
        if webinar is None:
            return _error(404, "NotFound", "Webinar not found")
        rest = match["rest"] or ""
        if method == "GET" and rest == "":
            return _ok(self._webinar_body(webinar, listed=False))
        if method == "GET" and rest == "/registrants":
            return self._list(webinar, query)
        if method == "GET" and rest == "/registrants/fields":
            return _ok(webinar.form())
        if method == "POST" and rest == "/registrants":
            return self._create(webinar, body)
        one = re.fullmatch(r"/registrants/(\d+)", rest)
        if one and method == "GET":
            return self._one(webinar, one[1])
        if one and method == "DELETE":
            return self._delete(webinar, one[1])
        return _error(405 if rest in ("", "/registrants") else 404, "NotFound", "not supported")

    def _webinar_body(self, webinar: SandboxWebinar, *, listed: bool = True) -> dict[str, Any]:
        """A webinar as GoTo's spec shows it: in the organizer's list (``listed``), with its
        keys as strings and its ``approvalType``; alone, with integer keys and no
        ``approvalType`` (the spec's one-webinar answer has none)."""
        end = webinar.start + dt.timedelta(hours=1)
        limit = self.config.registration_limit
        key: int | str = webinar.key if listed else int(webinar.key)
        organizer: int | str = self.organizer_key if listed else int(self.organizer_key)
        return {
            "webinarKey": key,
            "organizerKey": organizer,
            "subject": webinar.subject,
            "description": "A webinar served by the g2w-import sandbox.",
            "times": [{"startTime": _iso(webinar.start), "endTime": _iso(end)}],
            "timeZone": "UTC",
            "registrationUrl": f"{JOIN_HOST}/register/{webinar.key}",
            "numberOfRegistrants": len(webinar.registrants),
            "type": "single_session",
            **({"approvalType": webinar.approval} if listed else {}),
            **({"registrationLimit": limit} if limit is not None else {}),
        }

    def _webinars(self, query: dict[str, str]) -> Answer:
        """The organizer's webinars with a session between ``fromTime`` and ``toTime`` (both
        required), paged as the API pages lists: ``_embedded`` and a ``page`` object."""
        try:
            start = _parse_time(query["fromTime"])
            end = _parse_time(query["toTime"])
            page, size = int(query.get("page", "0")), int(query.get("size", "20"))
        except (KeyError, ValueError):
            return _error(400, "InvalidParameter", "fromTime and toTime are required ISO times")
        if page < 0 or not 1 <= size <= 200:
            return _error(400, "InvalidParameter", "size must be between 1 and 200")
        chosen = [
            self._webinar_body(webinar)
            for webinar in sorted(self.webinars.values(), key=lambda w: w.start)
            if start <= webinar.start + dt.timedelta(hours=1) and webinar.start <= end
        ]
        shown = chosen[page * size : (page + 1) * size]
        return _ok(
            {
                "_embedded": {"webinars": shown},
                "page": {
                    "size": size,
                    "totalElements": len(chosen),
                    "totalPages": -(-len(chosen) // size),
                    "number": page,
                },
            }
        )

    def _list(self, webinar: SandboxWebinar, query: dict[str, str]) -> Answer:
        """The registrant list, paged in the configured style (``list_style``)."""
        self.stats["list_reads"] += 1
        entries = webinar.registrants
        style = self.config.list_style
        if style == "plain" or (style != "spec" and "page" not in query and "limit" not in query):
            return _ok([_listed(entry) for entry in entries])
        size_name = "size" if style == "spec" else "limit"
        try:
            page = int(query.get("page", "0"))
            limit = int(query.get(size_name, "20"))
        except ValueError:
            return _error(400, "InvalidParameter", f"page and {size_name} must be numbers")
        if page < 0 or not 1 <= limit <= 200:
            return _error(400, "InvalidParameter", f"{size_name} must be between 1 and 200")
        data = [_listed(entry) for entry in entries[page * limit : (page + 1) * limit]]
        if style == "array":
            return _ok(data)
        if style == "spec":
            pages = {
                "size": limit,
                "totalElements": len(entries),
                "totalPages": -(-len(entries) // limit),
                "number": page,
            }
            return _ok({"_embedded": {"registrants": data}, "page": pages})
        return _ok(
            {
                "data": data,
                "total": len(entries),
                "page": page,
                "limit": limit,
                "pageSize": len(data),
            }
        )

    def _one(self, webinar: SandboxWebinar, registrant_key: str) -> Answer:
        """One registrant as ``GET …/registrants/{registrantKey}`` shows it: the optional
        fields, and the answers as ``{"question", "answer"}`` pairs (not the create shape)."""
        entry = next((e for e in webinar.registrants if e["registrantKey"] == registrant_key), None)
        if entry is None:
            return _error(404, "NotFound", "Registrant not found")
        questions = {q["questionKey"]: q for q in webinar.questions}
        answers = []
        for given in entry["responses"]:
            question = questions.get(given.get("questionKey"))
            if question is None:
                continue
            chosen = {a["answerKey"]: a["answer"] for a in question["answers"]}
            text = chosen.get(given.get("answerKey"), given.get("responseText", ""))
            answers.append({"question": question["question"], "answer": text})
        return _ok({**_listed(entry), **entry["fields"], "responses": answers})

    def _delete(self, webinar: SandboxWebinar, registrant_key: str) -> Answer:
        """Cancel one registration: 204, or 404 when there is no such registrant (any more)."""
        entry = next((e for e in webinar.registrants if e["registrantKey"] == registrant_key), None)
        if entry is None:
            self.stats["cancel_missing"] += 1
            return _error(404, "NotFound", "Registrant not found")
        if self.store is not None:
            with self.store.writing(self):
                self.store.removed(registrant_key)
        webinar.registrants.remove(entry)
        address = email_key(entry["email"])
        if webinar.by_email.get(address) is entry:
            del webinar.by_email[address]
            same = (e for e in webinar.registrants if email_key(e["email"]) == address)
            if (other := next(same, None)) is not None:
                webinar.by_email[address] = other
        self.stats["cancelled"] += 1
        return Answer(204)

    def _create(self, webinar: SandboxWebinar, body: bytes) -> Answer:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nested past reason
            return _error(400, "InvalidRequest", "The request body is not valid JSON")
        if not isinstance(payload, dict):
            return _error(400, "InvalidRequest", "The request body must be a JSON object")
        problem = body_problem(webinar, payload)
        if problem:
            return _error(400, "InvalidParameter", problem)
        limit = self.config.registration_limit
        if limit is not None and len(webinar.registrants) >= limit:
            self.stats["full"] += 1
            full = f"Registration is closed: the webinar is full ({limit} registrants)"
            return _error(403, "RegistrationLimitReached", full)
        existing = webinar.by_email.get(email_key(payload["email"].strip()))
        if existing is not None and self.config.dedupe:
            # the spec's 409 has no body; some servers put the keys in it
            self.stats["conflicts"] += 1
            if not self.config.conflict_keys:
                return Answer(409, b"")
            keys = {"registrantKey": int(existing["registrantKey"]), "joinUrl": existing["joinUrl"]}
            return Answer(409, json.dumps(keys).encode())
        status = "WAITING" if webinar.approval == "MANUAL" else "APPROVED"
        entry = self.add_registrant(payload, webinar.key, status=status)
        # the spec's RegistrantCreated: the key and the join URL, not the status
        created = {"registrantKey": int(entry["registrantKey"]), "joinUrl": entry["joinUrl"]}
        if self.config.created_status:
            created["status"] = status
        return Answer(201, json.dumps(created).encode())

    def add_registrant(
        self, fields: dict[str, Any], webinar_key: str = WEBINAR_KEY, *, status: str = "APPROVED"
    ) -> dict[str, Any]:
        """Register someone directly, as another channel (GoTo's own page) would; ``status``
        is where the organizer's approval stands (``APPROVED``, ``WAITING``, ``DENIED``)."""
        with self._kept(write=True):
            return self._add(fields, self.webinars[webinar_key], status)

    def _add(self, fields: dict[str, Any], webinar: SandboxWebinar, status: str) -> dict[str, Any]:
        names = {*STANDARD_FIELDS, *(extra["field"] for extra in webinar.extra_fields)}
        names -= webinar.omit_fields  # a field the form does not ask for is not kept
        key = self._new_key()
        entry = {
            "registrantKey": key,
            "firstName": fields["firstName"],
            "lastName": fields["lastName"],
            "email": fields["email"].strip(),
            "status": status,
            "registrationDate": _iso(
                dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.config.clock_skew)
            ),
            "joinUrl": f"{JOIN_HOST}/join/{webinar.key}/{key}",
            "timeZone": "UTC",
            "fields": {k: v for k, v in fields.items() if k in names},
            "responses": [] if self.config.drop_answers else list(fields.get("responses", [])),
        }
        if self.store is not None:
            self.store.added(webinar.key, entry)
        webinar.registrants.append(entry)
        webinar.by_email.setdefault(email_key(entry["email"]), entry)
        self.stats["created"] += 1
        return entry

    def _new_key(self) -> str:
        while True:
            key = str(self.dice.random.randrange(10**18, 2**63))
            if key in self.keys or (self.store is not None and not self.store.issue(key)):
                continue
            self.keys.add(key)
            return key


def _well_formed(key: str) -> bool:
    """Whether a key in a path is one the API could hold: a positive int64, in ASCII digits."""
    return key.isascii() and key.isdigit() and len(key) <= 19 and 0 < int(key) < 2**63


def _listed(entry: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in entry.items() if k not in ("fields", "responses")}
    shown["registrantKey"] = int(entry["registrantKey"])
    return shown


def _parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ok(payload: object) -> Answer:
    return Answer(200, json.dumps(payload).encode())


def _error(status: int, code: str, description: str) -> Answer:
    payload = {"errorCode": code, "description": description, "incident": "sandbox"}
    return Answer(status, json.dumps(payload).encode())


def _token_refused() -> Answer:
    payload = {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}
    return Answer(403, json.dumps(payload).encode())
