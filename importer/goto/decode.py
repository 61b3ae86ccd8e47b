"""Reading the API's answers: JSON that may not be JSON, error bodies in any of their shapes,
and keys kept as the exact strings they are (19 digits, more than a float holds)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import json
import re
import time
import urllib.parse
from typing import Any

import httpx

from importer.errors import ServerError
from importer.goto.redact import scrub
from importer.model import ListedRegistrant, Webinar
from importer.text import clean

#: where error bodies put their message: GoTo's, the gateway's, problem+json's, OAuth's
_MESSAGE_KEYS = (
    "description",
    "msg",
    "message",
    "detail",
    "title",
    "error_description",
    "errorCode",
    "int_err_code",
    "error",
)
_TAGS = re.compile(r"<[^>]*>")


def parse_webinar(body: dict[str, Any], key: str) -> Webinar:
    """A webinar from its JSON; ``starts`` is the earliest session (the spec does not order
    ``times``)."""
    times = sorted(
        (
            (start, as_text(item.get("endTime")))
            for item in objects(body.get("times"))
            if (start := as_text(item.get("startTime")))
        ),
        key=lambda pair: _moment(pair[0]),
    )
    approval = as_text(body.get("approvalType"))
    return Webinar(
        key=key,
        subject=as_text(body.get("subject")) or "(no subject)",
        starts=times[0][0] if times else None,
        time_zone=as_text(body.get("timeZone")),
        times=tuple(times),
        approval=approval.upper() if approval else None,
        # a limit of 0 would take nobody: read as no limit stated (GoTo does not say)
        registration_limit=as_size(body.get("registrationLimit")),
        registrant_count=as_count(body.get("numberOfRegistrants")),
        kind=_kind(body),
    )


#: the spec's webinar types; the one webinar says ``type``, the organizer's list
#: ``recurrenceType``, and ``recurrencePeriod`` is named for them too
_KINDS = frozenset({"single_session", "series", "sequence"})


def _kind(body: dict[str, Any]) -> str | None:
    """``single_session``, ``series`` or ``sequence``, from whichever field says it."""
    for name in ("type", "recurrenceType", "recurrencePeriod"):
        text = (as_text(body.get(name)) or "").lower().replace("-", "_").replace(" ", "_")
        if text in _KINDS:
            return text
    return None


def _moment(text: str) -> float:
    """Seconds since the epoch of an ISO-8601 time, for ordering; unreadable ones last."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return float("inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def describe(response: httpx.Response) -> str:
    """The API's own one-line explanation of an error answer, whatever its shape: a JSON
    message (GoTo's, the gateway's, or problem+json), else the first line of a text or HTML
    body. The credentials the request carried are never part of it, even when echoed back."""
    try:
        body = _parsed(response)
    except ValueError:
        body = None
    said = ""
    if isinstance(body, dict):
        said = next(
            (
                " ".join(value.split())
                for key in _MESSAGE_KEYS
                if isinstance(value := body.get(key), str) and value.strip()
            ),
            "",
        )
    elif response.content:
        text = _TAGS.sub("\n", response.text)
        said = next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")
    said = scrub(said, _credentials_of(response.request))[:200]  # cut after: no half secret
    return clean(said) or f"HTTP {response.status_code} {response.reason_phrase}".strip()


def token_refused(response: httpx.Response) -> bool:
    """Whether a 403 is the gateway refusing the token itself (``InvalidToken``)."""
    body = json_object(response)
    if body.get("int_err_code") == "InvalidToken":
        return True
    message = str(body.get("msg") or body.get("description") or "").lower()
    return "invalid token" in message or "token expired" in message


def _credentials_of(request: httpx.Request) -> list[str]:
    """The secrets a request carried in its Authorization header."""
    value = request.headers.get("Authorization", "")
    scheme, _, secret = value.partition(" ")
    found = [secret.strip()] if secret.strip() else []
    if scheme.lower() == "basic" and found:
        with contextlib.suppress(ValueError):
            found += base64.b64decode(found[0]).decode("utf-8", "replace").split(":", 1)
    return found


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _parsed(response: httpx.Response) -> Any:
    """The body as JSON; ValueError for anything else, including what JSON allows only
    loosely (NaN, Infinity) and nesting deep enough to exhaust the parser."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is no JSON value")

    try:
        return json.loads(response.content, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8") from exc


def json_body(response: httpx.Response) -> Any:
    try:
        return _parsed(response)
    except ValueError as exc:
        raise ServerError(
            f"the API answered HTTP {response.status_code} with something other than JSON",
            status=response.status_code,
        ) from exc


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; empty when it is empty, not JSON, or not an object."""
    if not response.content:
        return {}
    try:
        body = _parsed(response)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def registrants(items: list[Any]) -> list[ListedRegistrant]:
    listed = []
    for item in items:
        if not isinstance(item, dict):
            continue
        key, address = key_text(item.get("registrantKey")), as_text(item.get("email"))
        if key is None or address is None:
            continue
        answers = (
            tuple(
                (question, as_text(entry.get("answer")) or "")
                for entry in objects(item.get("responses"))
                if (question := as_text(entry.get("question")))
            )
            if isinstance(item.get("responses"), list)
            else None
        )
        listed.append(
            ListedRegistrant(
                key,
                address,
                link_text(item.get("joinUrl")),
                as_text(item.get("status")),
                as_text(item.get("firstName")) or "",
                as_text(item.get("lastName")) or "",
                as_text(item.get("registrationDate")),
                answers,
            )
        )
    return listed


def objects(value: object, *, dict_only: bool = True) -> list[Any]:
    """A JSON array, keeping only objects unless told otherwise; anything else is empty."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) or not dict_only]


def as_count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def as_size(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def as_text(value: object) -> str | None:
    """A JSON scalar as text; integers keep every digit."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


_KEY = re.compile(r"[0-9]{1,19}")
#: the largest int64: GoTo's keys are positive int64 numbers (g2w-api.md)
_KEY_MAX = 2**63 - 1


def key_text(value: object) -> str | None:
    """A registrant key as text, if it is one: a positive 64-bit number, as GoTo's keys are.
    One rule for every answer that carries a key: a 201, a 409, the registrant list."""
    if isinstance(value, float):  # a JSON number that lost digits is no key
        return None
    text = as_text(value)
    if text is None or not _KEY.fullmatch(text) or not 0 < int(text) <= _KEY_MAX:
        return None
    return text.lstrip("0")


def link_text(value: object) -> str | None:
    """A join URL as text, if it is a web address (with a host)."""
    text = as_text(value)
    if text is None or not text.lower().startswith(("https://", "http://")):
        return None
    return text if urllib.parse.urlsplit(text).hostname else None


def choices(item: dict[str, Any]) -> tuple[str, ...]:
    """A form field's listed answers (a state, a country), as text."""
    listed = objects(item.get("answers"), dict_only=False)
    return tuple(text for answer in listed if (text := as_text(answer)))
