"""The API client, one status code at a time, over httpx.MockTransport."""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from importer.errors import (
    AuthError,
    ConnectFailed,
    OutcomeUnknown,
    RateLimited,
    RequestRejected,
    ServerError,
    WebinarNotFound,
)
from importer.goto.client import G2WClient
from importer.goto.credentials import Credentials
from importer.goto.decode import parse_retry_after
from importer.goto.oauth import RefreshingAuth
from importer.model import Registrant, Status
from tests.helpers import mock_client

ANN = Registrant(2, "Ann", "Lee", "ann@example.com", {"organization": "Acme"})
BIG_KEY = 8325357307900339981  # > 2**53: a float would turn it into ...339968


def call(
    handler: Callable[[httpx.Request], httpx.Response], method: str = "create", **kwargs: Any
) -> Any:
    async def go() -> Any:
        async with mock_client(httpx.MockTransport(handler)) as http:
            client = G2WClient(http, "111", "222")
            if method == "create":
                return await client.create_registrant(ANN, resend=kwargs.get("resend", False))
            if method == "page":
                return await client.list_registrants_page(kwargs.get("page", 0))
            return await client.get_webinar()

    return asyncio.run(go())


def reply(
    status: int, body: Any = None, **kwargs: Any
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str | bytes):
            return httpx.Response(status, content=body, **kwargs)
        return httpx.Response(status, json=body, **kwargs)

    return handler


def test_create_sends_the_documented_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201,
            content=b'{"registrantKey": %d, "joinUrl": "https://j/1", '
            b'"status": "APPROVED"}' % BIG_KEY,
        )

    got = call(handler, resend=True)
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/G2W/rest/v2/organizers/111/webinars/222/registrants"
    assert request.url.params["resendConfirmation"] == "true"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Authorization"] == "Bearer secret-token"
    assert json.loads(request.content) == {
        "firstName": "Ann",
        "lastName": "Lee",
        "email": "ann@example.com",
        "organization": "Acme",
    }
    assert got.status is Status.REGISTERED
    assert got.registrant_key == str(BIG_KEY)
    assert got.join_url == "https://j/1"


def test_resend_confirmation_defaults_to_false() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"registrantKey": 1, "joinUrl": "u"})

    call(handler)
    assert seen[0].url.params["resendConfirmation"] == "false"


def test_conflict_with_keys_in_the_body() -> None:
    body = b'{"errorCode": "DuplicateRegistrant", "registrantKey": %d, "joinUrl": "https://j"}'
    got = call(reply(409, body % BIG_KEY))
    assert (got.status, got.registrant_key, got.join_url) == (
        Status.ALREADY_REGISTERED,
        str(BIG_KEY),
        "https://j",
    )


@pytest.mark.parametrize("body", [{"description": "The user is already registered"}, "", "<html>"])
def test_conflict_without_keys_leaves_them_to_the_registrant_list(body: Any) -> None:
    got = call(reply(409, body))
    assert (got.status, got.registrant_key, got.join_url) == (Status.ALREADY_REGISTERED, None, None)


def test_created_without_a_key_is_an_unknown_outcome() -> None:
    with pytest.raises(OutcomeUnknown):
        call(reply(201, "<html>ok</html>"))
    for nonsense in ("nan", "-1", "1" * 30, "key"):  # none of them a registrant key
        with pytest.raises(OutcomeUnknown):
            call(reply(201, {"registrantKey": nonsense, "joinUrl": "https://j"}))


def test_a_join_url_that_is_no_web_address_is_left_to_the_list() -> None:
    got = call(reply(201, {"registrantKey": 123, "joinUrl": "inf"}))
    assert (got.registrant_key, got.join_url) == ("123", None)
    got = call(reply(409, {"registrantKey": 123, "joinUrl": "javascript:alert(1)"}))
    assert (got.registrant_key, got.join_url) == ("123", None)


def test_bad_request_carries_the_api_description() -> None:
    with pytest.raises(RequestRejected, match=r"^Invalid email address$"):
        call(reply(400, {"errorCode": "InvalidParameter", "description": "Invalid email address"}))


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_an_auth_error_that_never_shows_the_token(status: int) -> None:
    with pytest.raises(AuthError) as caught:
        call(reply(status, {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}))
    assert "Invalid token passed" in str(caught.value)
    assert "secret-token" not in str(caught.value)
    assert "secret-token" not in repr(RefreshingAuth(Credentials("secret-token"), None))
    assert "secret-token" not in repr(Credentials("secret-token", "refresh-secret"))


def test_unknown_webinar() -> None:
    with pytest.raises(WebinarNotFound, match="webinar 222 was not found for organizer 111"):
        call(reply(404, {"errorCode": "NotFound", "description": "Webinar not found"}))


def test_rate_limited_with_and_without_retry_after() -> None:
    with pytest.raises(RateLimited) as caught:
        call(reply(429, ""))
    assert caught.value.retry_after is None
    with pytest.raises(RateLimited) as caught:
        call(reply(429, "", headers={"Retry-After": "12"}))
    assert caught.value.retry_after == 12.0


def test_retry_after_as_an_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_with_html_bodies(status: int) -> None:
    with pytest.raises(ServerError, match=f"HTTP {status}"):
        call(reply(status, "<html><body>Bad gateway</body></html>"))


def raising(exc: type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)  # type: ignore[call-arg]

    return handler


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_failures_before_sending_are_safe_to_retry(exc: type[Exception]) -> None:
    with pytest.raises(ConnectFailed):
        call(raising(exc))


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError]
)
def test_failures_after_sending_leave_the_outcome_unknown(exc: type[Exception]) -> None:
    with pytest.raises(OutcomeUnknown):
        call(raising(exc))


def test_registrant_list_paged_and_plain() -> None:
    entry = b'{"registrantKey": %d, "email": "a@x.io", "joinUrl": "u", "status": "APPROVED"}'
    paged = b'{"data": [%s], "total": 401, "page": 2, "limit": 200}' % (entry % BIG_KEY)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=paged)

    page = call(handler, "page", page=2)
    assert seen[0].url.params["page"] == "2"
    assert seen[0].url.params["limit"] == "200"
    assert (page.style, page.total) == ("data", 401)
    assert page.entries[0].registrant_key == str(BIG_KEY)
    page = call(reply(200, b"[%s]" % (entry % 5)), "page")
    assert (page.style, page.total) == ("array", None)
    assert [e.email for e in page.entries] == ["a@x.io"]


def test_webinar_subject_and_start() -> None:
    body = {
        "subject": "Launch",
        "times": [{"startTime": "2026-12-01T15:00:00Z"}],
        "timeZone": "Europe/Berlin",
    }
    webinar = call(reply(200, body), "webinar")
    assert (webinar.key, webinar.subject, webinar.starts, webinar.time_zone) == (
        "222",
        "Launch",
        "2026-12-01T15:00:00Z",
        "Europe/Berlin",
    )


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deep enough to exhaust the parser
        b'{"registrantKey": NaN, "joinUrl": Infinity}',  # JSON only loosely
    ],
)
def test_answers_json_cannot_parse_are_not_json(body: bytes) -> None:
    from importer.goto import decode as answers

    response = httpx.Response(201, content=body, request=httpx.Request("POST", "http://x/"))
    with pytest.raises(ServerError, match="something other than JSON"):
        answers.json_body(response)
    assert answers.json_object(response) == {}
    assert answers.describe(response)  # the first line of the text instead


def test_a_token_lifetime_too_large_for_a_float_is_unknown() -> None:
    from importer.goto.oauth import _finite

    assert [_finite(v) for v in (3600, 3599.5, 10**400, float("nan"), True, "3600")] == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]
