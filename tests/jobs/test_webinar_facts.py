"""What the tool tells about a webinar: places left, its type, its times on its own clock; who
is asked whose token it is; and file names made from its subject."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

import importer.sandbox
from importer.cli.console import kind_text
from importer.goto.credentials import Credentials, FileStore
from importer.goto.decode import parse_webinar
from importer.goto.lookup import day_span
from importer.model import Webinar, local_time
from importer.report.names import named_after
from importer.sandbox import ORGANIZER_KEY, PREFIX, WEBINAR_KEY, Sandbox, SandboxConfig
from importer.serve.exchange import Answer, Request
from tests.helpers import (
    TOKEN,
    ScriptedServer,
    ThreadedServer,
    invoke,
    people,
    posix_only,
    write_csv,
)

FULL_WARNING = (
    "Warning: this webinar has 3 places left and 6 people are to be sent: GoTo will refuse the "
    "rest once it is full; the run then stops, and the same command continues after the limit "
    "is raised"
)


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[Sandbox]]:
    """Switches for the sandbox ``--sandbox`` starts in-process (answering at once), and the
    sandboxes it started; ``registered`` people are registered before the run begins."""

    def switch(*, registered: int = 0, **switches: Any) -> list[Sandbox]:
        started: list[Sandbox] = []

        def make(config: SandboxConfig) -> Sandbox:
            sandbox = Sandbox(dataclasses.replace(config, latency=0.0, rate=0, **switches))
            for first, last, email in people(registered, domain="earlier.example")[1:]:
                sandbox.add_registrant({"firstName": first, "lastName": last, "email": email})
            started.append(sandbox)
            return sandbox

        monkeypatch.setattr(importer.sandbox, "Sandbox", make)
        return started

    return switch


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set this process's time zone (``TZ``) for the test; put back afterwards."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


# --- places left --------------------------------------------------------------------------------


def test_the_plan_shows_the_places_left_and_warns_when_they_are_too_few(
    tmp_path: Path, in_process: Callable[..., list[Sandbox]]
) -> None:
    in_process(registration_limit=5, registered=2)
    source = write_csv(tmp_path / "guests.csv", people(6))
    result = invoke("register", str(source), "--sandbox")
    assert "Places:   3 of 5 left\n" in result.stderr
    assert FULL_WARNING in result.stderr
    # the warning comes before anything is sent, and the run then stops as it says
    assert result.stderr.index(FULL_WARNING) < result.stderr.index("To send:  6 registrants")
    assert result.exit_code == 3, result.output
    assert "the webinar is full (5 registrants)" in result.stderr


def test_a_dry_run_warns_of_too_few_places_too(
    tmp_path: Path, in_process: Callable[..., list[Sandbox]]
) -> None:
    in_process(registration_limit=5, registered=2)
    source = write_csv(tmp_path / "guests.csv", people(6))
    result = invoke("register", str(source), "--sandbox", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Places:   3 of 5 left\n" in result.stderr
    assert FULL_WARNING in result.stderr


def test_enough_places_or_no_limit_give_no_warning(
    tmp_path: Path, in_process: Callable[..., list[Sandbox]]
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(6))
    in_process(registration_limit=8, registered=2)
    roomy = invoke("register", str(source), "--sandbox")
    assert roomy.exit_code == 0, roomy.output
    assert "Places:   6 of 8 left\n" in roomy.stderr
    assert "places left" not in roomy.stderr
    in_process(registered=2)
    unlimited = invoke("register", str(source), "--sandbox", "--out", str(tmp_path / "b.csv"))
    assert unlimited.exit_code == 0, unlimited.output
    assert "Places:" not in unlimited.stderr
    assert "places left" not in unlimited.stderr


@pytest.mark.parametrize(
    ("body", "limit", "count", "left"),
    [
        ({"registrationLimit": 50, "numberOfRegistrants": 13}, 50, 13, 37),
        ({"registrationLimit": 50, "numberOfRegistrants": 61}, 50, 61, 0),  # over: none left
        ({"numberOfRegistrants": 13}, None, 13, None),
        ({"registrationLimit": 50}, 50, None, None),  # not knowing how many: no count
        # a limit of 0 would take nobody: no limit stated; nothing else is a number
        ({"registrationLimit": 0, "numberOfRegistrants": 0}, None, 0, None),
        ({"registrationLimit": "50", "numberOfRegistrants": True}, None, None, None),
        ({"registrationLimit": -1, "numberOfRegistrants": -3}, None, None, None),
    ],
)
def test_the_limit_and_the_count_are_read_from_the_webinar(
    body: dict[str, Any], limit: int | None, count: int | None, left: int | None
) -> None:
    webinar = parse_webinar({"subject": "Launch", **body}, WEBINAR_KEY)
    assert (webinar.registration_limit, webinar.registrant_count) == (limit, count)
    assert webinar.places_left == left


def test_the_sandbox_says_its_limit_only_when_it_has_one() -> None:
    def served(sandbox: Sandbox) -> Any:
        target = f"{PREFIX}/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}"
        headers = {"authorization": f"Bearer {TOKEN}"}
        answer = asyncio.run(sandbox.handle(Request("GET", target, headers, b"")))
        assert answer.status == 200
        return json.loads(answer.body)

    limited = Sandbox(SandboxConfig(tokens=(TOKEN,), registration_limit=50))
    limited.add_registrant({"firstName": "A", "lastName": "B", "email": "a@example.com"})
    assert served(limited)["registrationLimit"] == 50
    assert served(limited)["numberOfRegistrants"] == 1
    plain = served(Sandbox(SandboxConfig(tokens=(TOKEN,))))
    assert "registrationLimit" not in plain
    assert plain["numberOfRegistrants"] == 0


# --- the webinars command: types, local days, times on the webinar's clock ----------------------


@pytest.mark.parametrize(
    ("moment", "zone", "shown"),
    [
        ("2027-01-13T09:00:00Z", "Europe/Berlin", "Wed 13 Jan 2027, 10:00 CET"),
        ("2027-07-13T08:30:00Z", "Europe/Berlin", "Tue 13 Jul 2027, 10:30 CEST"),
        ("2027-01-13T02:00:00Z", "America/New_York", "Tue 12 Jan 2027, 21:00 EST"),
        ("2027-01-13T09:00:00Z", None, "Wed 13 Jan 2027, 09:00 UTC"),
        ("2027-01-13T09:00:00Z", "Mars/Olympus_Mons", "Wed 13 Jan 2027, 09:00 UTC"),
        ("2027-01-13T09:00:00Z", "../../etc/passwd", "Wed 13 Jan 2027, 09:00 UTC"),
        ("2027-01-13T09:00:00", "Europe/Berlin", "Wed 13 Jan 2027, 10:00 CET"),  # no Z: UTC
        ("soon", "Europe/Berlin", "soon"),
    ],
)
def test_a_time_is_shown_on_the_webinars_own_clock(
    moment: str, zone: str | None, shown: str
) -> None:
    assert local_time(moment, zone) == shown


def test_the_plan_and_the_report_name_the_start_as_the_webinar_list_does() -> None:
    webinar = Webinar("1", "Launch", "2027-01-13T09:00:00Z", "Europe/Berlin")
    assert webinar.describe() == "Launch (1, starts Wed 13 Jan 2027, 10:00 CET)"


def test_series_and_sequences_are_told_apart() -> None:
    times = tuple((f"2027-01-{day}T09:00:00Z", None) for day in (13, 20, 27))
    sequence = parse_webinar({"subject": "Course", "type": "sequence", "times": []}, "1")
    assert kind_text(dataclasses.replace(sequence, times=times)) == "sequence of 3 sessions"
    # the organizer's list says recurrenceType; older answers recurrencePeriod, any case
    assert kind_text(parse_webinar({"recurrenceType": "series"}, "2")) == "series"
    assert kind_text(parse_webinar({"recurrencePeriod": "SINGLE_SESSION"}, "3")) == (
        "single session"
    )
    assert kind_text(parse_webinar({"type": "weekly"}, "4")) == ""


def test_from_and_to_are_whole_days_in_the_zone_given() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    span = day_span(dt.date(2027, 1, 13), dt.date(2027, 7, 14), berlin)
    assert span == ("2027-01-12T23:00:00Z", "2027-07-14T21:59:59Z")  # CET, then CEST
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    assert day_span(dt.date(2027, 1, 13), dt.date(2027, 1, 13), tokyo) == (
        "2027-01-12T15:00:00Z",
        "2027-01-13T14:59:59Z",
    )
    # the ends of the calendar do not overflow
    east = day_span(dt.date.min, dt.date.max, dt.timezone(dt.timedelta(hours=14)))
    assert east == ("0001-01-01T00:00:00Z", "9999-12-31T09:59:59Z")
    west = day_span(dt.date.min, dt.date.max, dt.timezone(dt.timedelta(hours=-11)))
    assert west == ("0001-01-01T11:00:00Z", "9999-12-31T23:59:59Z")


@posix_only
def test_from_and_to_are_whole_days_in_this_computers_time_zone(
    local_zone: Callable[[str], None],
) -> None:
    local_zone("America/Los_Angeles")
    assert day_span(dt.date(2027, 1, 13), dt.date(2027, 1, 14)) == (
        "2027-01-13T08:00:00Z",
        "2027-01-15T07:59:59Z",
    )


def organizer_webinars(asked: list[dict[str, str]]) -> Callable[[Request], Any]:
    """An API that lists a series session and a three-session sequence, noting each query."""
    listed = [
        {
            "webinarKey": "1111111111111111111",
            "subject": "Weekly demo",
            "times": [{"startTime": "2027-01-13T09:00:00Z", "endTime": "2027-01-13T10:00:00Z"}],
            "timeZone": "Europe/Berlin",
            "recurrenceType": "series",
        },
        {
            "webinarKey": "2222222222222222222",
            "subject": "Onboarding course",
            "times": [
                {"startTime": f"2027-01-{day}T15:00:00Z", "endTime": f"2027-01-{day}T16:00:00Z"}
                for day in (14, 21, 28)
            ],
            "timeZone": "America/New_York",
            "recurrenceType": "sequence",
        },
    ]

    async def handle(request: Request) -> Answer:
        url = urlsplit(request.target)
        assert url.path.endswith(f"/organizers/{ORGANIZER_KEY}/webinars"), url.path
        asked.append(dict(parse_qsl(url.query)))
        page = {"size": 200, "totalElements": 2, "totalPages": 1, "number": 0}
        body = {"_embedded": {"webinars": listed}, "page": page}
        return Answer(200, json.dumps(body).encode())

    return handle


@posix_only
def test_webinars_lists_types_and_local_times_for_the_users_days(
    local_zone: Callable[[str], None],
) -> None:
    local_zone("Asia/Tokyo")
    asked: list[dict[str, str]] = []
    with ScriptedServer(organizer_webinars(asked)) as server:
        args = ["webinars", "--api-url", server.api_url, "--organizer-key", ORGANIZER_KEY]
        args += ["--from", "2027-01-01", "--to", "2027-01-31"]
        env = {"G2W_ACCESS_TOKEN": TOKEN}
        table = invoke(*args, env=env)
        as_json = invoke(*args, "--json", env=env)
    assert table.exit_code == 0, table.output
    # Tokyo is 9 hours ahead of UTC: its 1 January begins on 31 December in UTC
    assert asked[0]["fromTime"] == "2026-12-31T15:00:00Z"
    assert asked[0]["toTime"] == "2027-01-31T14:59:59Z"
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["key", "starts", "type", "places", "approval", "subject"]
    assert lines[2].split("  ")[0] == "1111111111111111111"
    assert "Wed 13 Jan 2027, 10:00 CET" in lines[2]
    assert " series " in lines[2]
    assert "Thu 14 Jan 2027, 10:00 EST" in lines[3]
    assert "sequence of 3 sessions" in lines[3]
    data = json.loads(as_json.stdout)
    assert data[0]["type"] == "series"
    assert data[1]["type"] == "sequence"
    assert data[1]["times"][0]["startTime"] == "2027-01-14T15:00:00Z"  # as the API says
    assert data[1]["timeZone"] == "America/New_York"
    assert {"registrationLimit", "numberOfRegistrants"} <= set(data[0])


# --- whose token: not asked when the organizer key is known ------------------------------------


def test_a_dry_run_with_the_sandboxs_key_does_not_ask_whose_token_it_is(
    tmp_path: Path, in_process: Callable[..., list[Sandbox]]
) -> None:
    started = in_process()
    source = write_csv(tmp_path / "guests.csv", people(2))
    args = ["register", str(source), "--sandbox", "--organizer-key", ORGANIZER_KEY]
    result = invoke(*args, "--dry-run")
    assert result.exit_code == 0, result.output
    assert started[0].stats["who_asked"] == 0
    assert "As:" not in result.stderr
    assert started[0].stats["authorized"] > 0  # the webinar and its form were read


@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_given_organizer_key_is_never_checked_against_the_account_apis(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer], given: str
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(2))
    env = {"G2W_ACCESS_TOKEN": TOKEN}
    key: list[str] = []
    if given == "option":
        key = ["--organizer-key", ORGANIZER_KEY]
    else:
        env["G2W_ORGANIZER_KEY"] = ORGANIZER_KEY
    at = ["--api-url", server.api_url, *key]
    out = tmp_path / "export.csv"
    for args in (
        ["register", str(source), "--webinar-key", WEBINAR_KEY, "--dry-run", *at],
        ["fields", "--webinar-key", WEBINAR_KEY, *at],
        ["webinars", *at],
        ["export", "--webinar-key", WEBINAR_KEY, "--dry-run", "--out", str(out), *at],
    ):
        result = invoke(*args, env=env)
        assert result.exit_code == 0, (args, result.output)
    assert server.sandbox.stats["who_asked"] == 0


def test_without_a_key_the_api_is_asked_whose_token_it_is(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(2))
    args = ["register", str(source), "--webinar-key", WEBINAR_KEY, "--api-url", server.api_url]
    asked = invoke(*args, "--dry-run", env={"G2W_ACCESS_TOKEN": TOKEN})
    assert asked.exit_code == 0, asked.output
    assert server.sandbox.stats["who_asked"] >= 1
    assert "As:       organizer@sandbox.invalid" in asked.stderr


def test_a_stored_login_shows_its_account_without_asking(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    FileStore(tmp_path / "user-config" / "credentials.json").save(
        Credentials(
            TOKEN, organizer_key=ORGANIZER_KEY, account="ann@example.com", api_url=server.api_url
        )
    )
    source = write_csv(tmp_path / "guests.csv", people(2))
    result = invoke("register", str(source), "--webinar-key", WEBINAR_KEY, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "As:       ann@example.com" in result.stderr
    assert server.sandbox.stats["who_asked"] == 0


# --- file names from a subject -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        # a right-to-left override would show "Q3xslx.stnartsiger-exe.jpg"
        ("Q3\u202egpj.exe", "Q3gpj.exe-registrants.xlsx"),
        ("Launch\u2066 EMEA\u2069\u200e\u200f\u061c", "Launch EMEA-registrants.xlsx"),
        ("Zero\u200bwidth\u200c\u200d\u2060\ufeff", "Zerowidth-registrants.xlsx"),
        ("C1\x85control\x9b", "C1 control-registrants.xlsx"),
        ("lone\ud800half", "lonehalf-registrants.xlsx"),
        ("\u202d\u202a", "8325357307900339981-registrants.xlsx"),
    ],
)
def test_a_file_named_after_a_webinar_hides_no_invisible_characters(
    subject: str, name: str
) -> None:
    assert named_after(Webinar(WEBINAR_KEY, subject, None, None), "registrants.xlsx") == Path(name)
