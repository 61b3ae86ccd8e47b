"""A local simulator of the GoTo Webinar API, for trying the importer, tests and benchmarks.

It speaks the same HTTP as the real API (paths, status codes, body shapes, 19-digit keys) and,
where the real API's behaviour is unconfirmed, models the least convenient answer: a 409 without
the registrant's keys, a 429 without ``Retry-After``, a rate limit counted over any one-second
window. Faults can be switched on: server errors, spurious 429s, answers slower than the client's
timeout, answers lost after the person was registered, and tokens that expire.

The same :class:`Sandbox` runs in-process behind :class:`SandboxTransport` (``register
--sandbox``) or on a loopback socket behind :class:`SandboxServer` (``g2w-import sandbox``).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import datetime as dt
import hashlib
import json
import random
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import h11
import httpx

PREFIX = "/G2W/rest/v2"
ORGANIZER_KEY = "5071418929213466883"
WEBINAR_KEY = "8325357307900339981"
WORKSHOP_KEY = "4617712963571298411"
JOIN_HOST = "https://sandbox.g2w-import.invalid"
MAX_FIELD = 128

_STANDARD_FIELDS = (
    "firstName",
    "lastName",
    "email",
    "address",
    "city",
    "state",
    "zipCode",
    "country",
    "phone",
    "organization",
    "jobTitle",
    "questionsAndComments",
    "industry",
    "numberOfEmployees",
    "purchasingTimeFrame",
    "purchasingRole",
)
_REQUIRED = ("firstName", "lastName", "email")
_WEBINAR_PATH = re.compile(r"/organizers/(?P<org>\d+)/webinars/(?P<web>\d+)(?P<rest>/.*)?")


@dataclass
class SandboxConfig:
    """How the simulated API behaves. Rates are fractions of calls (0.05 = 5 %)."""

    rate: float = 10.0  #: calls allowed in any one-second window; 0 = no limit
    latency: float = 0.0  #: seconds added to every answer
    error_rate: float = 0.0  #: answer 503 with an HTML body
    throttle_rate: float = 0.0  #: answer 429 although the rate is kept
    slow_rate: float = 0.0  #: register, then answer only after ``slow_seconds``
    slow_seconds: float = 60.0
    drop_rate: float = 0.0  #: register, then close the connection without an answer
    dedupe: bool = True  #: False: a repeated e-mail creates a second registrant
    conflict_keys: bool = False  #: a 409 body carries the registrantKey and joinUrl
    token_calls: int | None = None  #: each access token is refused after this many calls
    token_seconds: float = 3600.0  #: the lifetime of tokens issued by the token endpoint
    reject_refresh: bool = False  #: the token endpoint refuses every refresh
    quota: int | None = None  #: registrations allowed before every call gets a quota 403
    seed: int | None = None


@dataclass(frozen=True)
class SandboxResponse:
    """An answer, or ``drop=True`` for a connection closed without one."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False
    location: str | None = None  #: where a redirect points


@dataclass
class _Webinar:
    key: str
    subject: str
    start: dt.datetime
    questions: list[dict[str, Any]] = field(default_factory=list)
    registrants: list[dict[str, Any]] = field(default_factory=list)
    by_email: dict[str, dict[str, Any]] = field(default_factory=dict)


#: the second sandbox webinar asks custom questions: a required multiple-choice one and an
#: optional short answer, as GoTo's fields endpoint describes them
WORKSHOP_QUESTIONS: list[dict[str, Any]] = [
    {
        "questionKey": 7001,
        "question": "Your role?",
        "required": True,
        "type": "multipleChoice",
        "maxSize": 1000,
        "answers": [
            {"answerKey": 9001, "answer": "Developer"},
            {"answerKey": 9002, "answer": "Marketing"},
            {"answerKey": 9003, "answer": "Management"},
            {"answerKey": 9004, "answer": "Other"},
        ],
    },
    {
        "questionKey": 7002,
        "question": "What do you hope to learn?",
        "required": False,
        "type": "shortAnswer",
        "maxSize": 256,
        "answers": [],
    },
]
EMPLOYEE_COUNTS = [
    "1-20",
    "21-50",
    "51-100",
    "101-500",
    "501-1000",
    "1001-5000",
    "5001-10000",
    "10001+",
]


class Sandbox:
    """The simulated API's state and request handling."""

    def __init__(
        self, config: SandboxConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or SandboxConfig()
        self.clock = clock
        self.organizer_key = ORGANIZER_KEY
        self.webinar_key = WEBINAR_KEY
        self._random = random.Random(self.config.seed)
        start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(
            hour=15, minute=0, second=0, microsecond=0
        )
        workshop = _Webinar(
            WORKSHOP_KEY,
            "Customer workshop (sandbox)",
            start + dt.timedelta(days=7),
            questions=WORKSHOP_QUESTIONS,
        )
        self.webinars = {
            WEBINAR_KEY: _Webinar(WEBINAR_KEY, "Product launch (sandbox)", start),
            WORKSHOP_KEY: workshop,
        }
        self._window: collections.deque[float] = collections.deque()
        self._keys: set[str] = set()
        self._token_uses: dict[str, int] = {}
        self._issued: dict[str, float] = {}
        self._codes: dict[str, tuple[str, str]] = {}
        self._refresh: set[str] = set()
        #: counts of what happened, for tests and benchmarks
        self.stats: collections.Counter[str] = collections.Counter()

    def registrants(self, webinar_key: str = WEBINAR_KEY) -> list[dict[str, Any]]:
        """Everyone registered for a webinar, in order of registration."""
        return list(self.webinars[webinar_key].registrants)

    async def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> SandboxResponse:
        """Answer one HTTP request; ``headers`` have lower-case names."""
        self.stats["calls"] += 1
        url = urlsplit(target)
        query = dict(parse_qsl(url.query))
        if url.path.startswith("/oauth/"):
            return self._oauth(method, url.path, query, headers, body)
        if not url.path.startswith((PREFIX, "/admin/")):
            return _error(404, "NotFound", f"no such path {url.path}")
        if not self._token_valid(headers.get("authorization", "")):
            self.stats["token_refused"] += 1
            return _token_refused()
        self.stats["authorized"] += 1
        if url.path == "/admin/rest/v1/me":
            return _ok(
                {
                    "key": int(self.organizer_key),
                    "email": "organizer@sandbox.invalid",
                    "firstName": "Sandbox",
                    "lastName": "Organizer",
                }
            )
        if self.config.quota is not None and self.stats["created"] >= self.config.quota:
            self.stats["refused"] += 1
            payload = {"int_err_code": "QuotaExceeded", "msg": "Daily request quota exceeded"}
            return SandboxResponse(403, json.dumps(payload).encode())
        if not self._admit():
            self.stats["throttled"] += 1
            return _error(429, "TooManyRequests", "Rate limit exceeded")
        if self._chance(self.config.throttle_rate):
            self.stats["throttled"] += 1
            return _error(429, "TooManyRequests", "Rate limit exceeded")
        if self._chance(self.config.error_rate):
            self.stats["errors"] += 1
            return SandboxResponse(
                503, b"<html><body>Service Unavailable</body></html>", "text/html"
            )
        response = self._route(method, url.path[len(PREFIX) :], query, body)
        if method == "POST" and response.status == 201:
            if self._chance(self.config.drop_rate):
                self.stats["dropped"] += 1
                return SandboxResponse(0, drop=True)
            if self._chance(self.config.slow_rate):
                self.stats["slow"] += 1
                await asyncio.sleep(self.config.slow_seconds)
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        return response

    def _token_valid(self, authorization: str) -> bool:
        """Any bearer token works, for its first ``token_calls`` calls and, if the sandbox
        issued it, for ``token_seconds``."""
        if not authorization.startswith("Bearer ") or not authorization[7:].strip():
            return False
        token = authorization[7:].strip()
        used = self._token_uses[token] = self._token_uses.get(token, 0) + 1
        limit = self.config.token_calls
        if limit is not None and used > limit:
            return False
        expires = self._issued.get(token)
        return expires is None or self.clock() < expires

    def _oauth(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> SandboxResponse:
        """The sign-in server: authorize approves at once, token serves both grants."""
        if method == "GET" and path == "/oauth/authorize":
            redirect, challenge = query.get("redirect_uri"), query.get("code_challenge")
            if not redirect or not query.get("client_id") or not challenge:
                return _error(
                    400,
                    "invalid_request",
                    "client_id, redirect_uri and code_challenge are required",
                )
            code = secrets.token_urlsafe(16)
            self._codes[code] = (redirect, challenge)
            separator = "&" if "?" in redirect else "?"
            state = urlencode({"code": code, "state": query.get("state", "")})
            return SandboxResponse(302, b"", "text/html", location=f"{redirect}{separator}{state}")
        if method != "POST" or path != "/oauth/token":
            return _error(404, "NotFound", f"no such path {path}")
        basic = headers.get("authorization", "")
        if not basic.startswith("Basic "):
            return _oauth_error(401, "invalid_client", "client credentials are required")
        self.stats["token_requests"] += 1
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        grant = form.get("grant_type")
        if grant == "authorization_code":
            redirect, challenge = self._codes.pop(form.get("code", ""), (None, None))
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if (
                redirect is None
                or redirect != form.get("redirect_uri")
                or (digest.rstrip(b"=").decode() != challenge)
            ):
                return _oauth_error(400, "invalid_grant", "the code is unknown or does not match")
        elif grant == "refresh_token":
            self.stats["refreshes"] += 1
            if self.config.reject_refresh or form.get("refresh_token") not in self._refresh:
                return _oauth_error(400, "invalid_grant", "the refresh token is not valid")
            self._refresh.discard(form["refresh_token"])  # rotated: each one works once
        else:
            return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant}")
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._issued[access] = self.clock() + self.config.token_seconds
        self._refresh.add(refresh)
        return _ok(
            {
                "access_token": access,
                "token_type": "Bearer",
                "refresh_token": refresh,
                "expires_in": int(self.config.token_seconds),
                "scope": "collab:",
                "principal": "organizer@sandbox.invalid",
            }
        )

    def _admit(self) -> bool:
        """A sliding one-second window: at most ``rate`` calls in any second."""
        if self.config.rate <= 0:
            return True
        now = self.clock()
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= max(1, int(self.config.rate)):
            return False
        window.append(now)
        return True

    def _chance(self, probability: float) -> bool:
        return probability > 0 and self._random.random() < probability

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> SandboxResponse:
        match = _WEBINAR_PATH.fullmatch(path)
        if not match:
            return _error(404, "NotFound", f"no such path {path}")
        if match["org"] != self.organizer_key:
            return _error(404, "NotFound", "Organizer not found")
        webinar = self.webinars.get(match["web"])
        if webinar is None:
            return _error(404, "NotFound", "Webinar not found")
        rest = match["rest"] or ""
        if method == "GET" and rest == "":
            return _ok(self._webinar_body(webinar))
        if method == "GET" and rest == "/registrants":
            return self._list(webinar, query)
        if method == "GET" and rest == "/registrants/fields":
            return _ok(self._fields(webinar))
        if method == "POST" and rest == "/registrants":
            return self._create(webinar, body)
        return _error(405 if rest in ("", "/registrants") else 404, "NotFound", "not supported")

    def _webinar_body(self, webinar: _Webinar) -> dict[str, Any]:
        end = webinar.start + dt.timedelta(hours=1)
        return {
            "webinarKey": int(webinar.key),
            "organizerKey": int(self.organizer_key),
            "subject": webinar.subject,
            "description": "A webinar served by the g2w-import sandbox.",
            "times": [{"startTime": _iso(webinar.start), "endTime": _iso(end)}],
            "timeZone": "UTC",
            "registrationUrl": f"{JOIN_HOST}/register/{webinar.key}",
            "numberOfRegistrants": len(webinar.registrants),
            "type": "single_session",
        }

    def _fields(self, webinar: _Webinar) -> dict[str, Any]:
        fields = [
            {
                "field": name,
                "required": name in _REQUIRED,
                "maxSize": MAX_FIELD,
                "answers": EMPLOYEE_COUNTS if name == "numberOfEmployees" else [],
            }
            for name in _STANDARD_FIELDS
        ]
        return {"fields": fields, "questions": webinar.questions}

    def _list(self, webinar: _Webinar, query: dict[str, str]) -> SandboxResponse:
        entries = [_listed(entry) for entry in webinar.registrants]
        if "page" not in query and "limit" not in query:
            return _ok(entries)
        try:
            page, limit = int(query.get("page", "0")), int(query.get("limit", "20"))
        except ValueError:
            return _error(400, "InvalidParameter", "page and limit must be numbers")
        if page < 0 or not 1 <= limit <= 200:
            return _error(400, "InvalidParameter", "limit must be between 1 and 200")
        data = entries[page * limit : (page + 1) * limit]
        return _ok(
            {
                "data": data,
                "total": len(entries),
                "page": page,
                "limit": limit,
                "pageSize": len(data),
            }
        )

    def _create(self, webinar: _Webinar, body: bytes) -> SandboxResponse:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "InvalidRequest", "The request body is not valid JSON")
        if not isinstance(payload, dict):
            return _error(400, "InvalidRequest", "The request body must be a JSON object")
        for name in _REQUIRED:
            value = payload.get(name)
            if not isinstance(value, str) or not value.strip():
                return _error(400, "InvalidParameter", f"{name} is required")
        for name in _STANDARD_FIELDS:
            value = payload.get(name)
            if isinstance(value, str) and len(value) > MAX_FIELD:
                return _error(400, "InvalidParameter", f"{name} is longer than {MAX_FIELD}")
        problem = _response_problem(webinar, payload)
        if problem:
            return _error(400, "InvalidParameter", problem)
        value = payload.get("numberOfEmployees")
        if value is not None and value not in EMPLOYEE_COUNTS:
            return _error(400, "InvalidParameter", f"numberOfEmployees '{value}' is not allowed")
        address = payload["email"].strip()
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain:
            return _error(400, "InvalidParameter", f"Invalid email address: {address}")
        existing = webinar.by_email.get(address.casefold())
        if existing is not None and self.config.dedupe:
            self.stats["conflicts"] += 1
            conflict: dict[str, Any] = {
                "errorCode": "DuplicateRegistrant",
                "description": "The user is already registered",
                "incident": str(self._random.getrandbits(48)),
            }
            if self.config.conflict_keys:
                conflict["registrantKey"] = int(existing["registrantKey"])
                conflict["joinUrl"] = existing["joinUrl"]
            return SandboxResponse(409, json.dumps(conflict).encode())
        entry = self.add_registrant(payload, webinar.key)
        return SandboxResponse(
            201,
            json.dumps(
                {
                    "registrantKey": int(entry["registrantKey"]),
                    "joinUrl": entry["joinUrl"],
                    "status": "APPROVED",
                }
            ).encode(),
        )

    def add_registrant(
        self, fields: dict[str, Any], webinar_key: str = WEBINAR_KEY
    ) -> dict[str, Any]:
        """Register someone directly, as another channel (GoTo's own page) would."""
        webinar = self.webinars[webinar_key]
        key = self._new_key()
        entry = {
            "registrantKey": key,
            "firstName": fields["firstName"],
            "lastName": fields["lastName"],
            "email": fields["email"].strip(),
            "status": "APPROVED",
            "registrationDate": _iso(dt.datetime.now(dt.UTC)),
            "joinUrl": f"{JOIN_HOST}/join/{webinar.key}/{key}",
            "timeZone": "UTC",
            "fields": {k: v for k, v in fields.items() if k in _STANDARD_FIELDS},
            "responses": list(fields.get("responses", [])),
        }
        webinar.registrants.append(entry)
        webinar.by_email.setdefault(entry["email"].casefold(), entry)
        self.stats["created"] += 1
        return entry

    def _new_key(self) -> str:
        while True:
            key = str(self._random.randrange(10**18, 2**63))
            if key not in self._keys:
                self._keys.add(key)
                return key


def _response_problem(webinar: _Webinar, payload: dict[str, Any]) -> str | None:
    """Why the ``responses`` of a create call do not fit the webinar's questions, if they don't."""
    given = payload.get("responses", [])
    if not isinstance(given, list) or not all(isinstance(r, dict) for r in given):
        return "responses must be a list of objects"
    by_key = {question["questionKey"]: question for question in webinar.questions}
    answered = set()
    for response in given:
        question = by_key.get(response.get("questionKey"))
        if question is None:
            return f"unknown questionKey {response.get('questionKey')}"
        answered.add(question["questionKey"])
        if question["answers"]:
            allowed = {answer["answerKey"] for answer in question["answers"]}
            if response.get("answerKey") not in allowed:
                answer = response.get("answerKey")
                return f"answerKey {answer} is not an answer to {question['question']}"
        else:
            text = response.get("responseText")
            if not isinstance(text, str) or len(text) > question["maxSize"]:
                return f"responseText for {question['question']} is missing or too long"
    missing = [
        q["question"]
        for q in webinar.questions
        if q["required"] and q["questionKey"] not in answered
    ]
    return f"an answer to '{missing[0]}' is required" if missing else None


def _listed(entry: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in entry.items() if k not in ("fields", "responses")}
    shown["registrantKey"] = int(entry["registrantKey"])
    return shown


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ok(payload: object) -> SandboxResponse:
    return SandboxResponse(200, json.dumps(payload).encode())


def _error(status: int, code: str, description: str) -> SandboxResponse:
    payload = {"errorCode": code, "description": description, "incident": "sandbox"}
    return SandboxResponse(status, json.dumps(payload).encode())


def _oauth_error(status: int, code: str, description: str) -> SandboxResponse:
    payload = {"error": code, "error_description": description}
    return SandboxResponse(status, json.dumps(payload).encode())


def _token_refused() -> SandboxResponse:
    payload = {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}
    return SandboxResponse(403, json.dumps(payload).encode())


def _headers(answer: SandboxResponse) -> dict[str, str]:
    headers = {"Content-Type": answer.content_type}
    if answer.location:
        headers["Location"] = answer.location
    return headers


class SandboxTransport(httpx.AsyncBaseTransport):
    """Serves a :class:`Sandbox` to an ``httpx.AsyncClient`` in-process, timeouts included."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = {name.lower(): value for name, value in request.headers.items()}
        target = request.url.raw_path.decode("ascii")
        timeouts = request.extensions.get("timeout", {})
        try:
            answer = await asyncio.wait_for(
                self.sandbox.handle(request.method, target, headers, body), timeouts.get("read")
            )
        except TimeoutError:
            raise httpx.ReadTimeout("the sandbox did not answer in time", request=request) from None
        if answer.drop:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(answer.status, headers=_headers(answer), content=answer.body)


class SandboxServer:
    """Serves a :class:`Sandbox` over HTTP/1.1 on 127.0.0.1 (keep-alive, one task a connection).

    Use as ``async with SandboxServer(sandbox, port=0) as server: ... server.api_url``.
    """

    def __init__(self, sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def api_url(self) -> str:
        """The base URL to give the importer as ``--api-url``."""
        return f"http://{self.host}:{self.port}{PREFIX}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # closing the server: end quietly (on 3.11 a cancelled connection task is logged)
            pass
        finally:
            self._connections.discard(task)
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            request: h11.Request | None = None
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data and conn.their_state is h11.IDLE:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
            assert request is not None
            headers = {name.decode().lower(): value.decode() for name, value in request.headers}
            answer = await self.sandbox.handle(
                request.method.decode(), request.target.decode(), headers, bytes(body)
            )
            if answer.drop:
                return
            writer.write(
                conn.send(
                    h11.Response(
                        status_code=answer.status,
                        headers=[
                            *_headers(answer).items(),
                            ("Content-Length", str(len(answer.body))),
                        ],
                    )
                )
                or b""
            )
            writer.write(conn.send(h11.Data(data=answer.body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            if conn.our_state is h11.MUST_CLOSE:
                return
            with contextlib.suppress(h11.ProtocolError):
                conn.start_next_cycle()
