"""What the real GoTo API does, through the command against a sandbox as strict as it is."""

from __future__ import annotations

import collections
import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from importer.sandbox import (
    KICKOFF_KEY,
    ORGANIZER_KEY,
    SUMMIT_KEY,
    WEBINAR_KEY,
    WORKSHOP_KEY,
)
from tests import helpers
from tests.helpers import (
    TOKEN,
    ThreadedServer,
    invoke,
    people,
    sheet_rows,
    status_counts,
    write_csv,
)

#: no organizer key: the API is asked whose token it is; the webinar's key is given at each call
register = functools.partial(helpers.register, rate=500, keys=False)


def test_a_504_from_the_gateway_is_settled_from_the_list_not_sent_again(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    # GoTo's gateway answers 504 after ~29 s while the registration goes through; without
    # dedupe, a blind re-send would register the person a second time
    server = loopback_sandbox(rate=0, gateway_timeout_rate=0.1, dedupe=False, seed=4)
    source = write_csv(tmp_path / "guests.csv", people(500))
    result = register(server, source, "--webinar-key", WEBINAR_KEY)
    assert result.exit_code == 0, result.output
    timeouts = server.sandbox.stats["gateway_timeouts"]
    assert timeouts > 20
    emails = collections.Counter(entry["email"] for entry in server.sandbox.registrants())
    assert len(emails) == 500
    assert max(emails.values()) == 1
    # registered by this run, though the list had to say so
    assert status_counts(tmp_path / "guests-joinurls.xlsx") == {"registered": 500}
    rows = {row["email"]: row for row in sheet_rows(tmp_path / "guests-joinurls.xlsx")}
    for entry in server.sandbox.registrants():
        assert rows[entry["email"]]["registrantKey"] == entry["registrantKey"]
    # parked rows are settled together: a handful of list reads, not one per 504
    list_reads = server.sandbox.stats["list_reads"]
    assert list_reads <= 3 * 2  # at most three rounds of a two-page list


def test_a_full_webinar_stops_resumably_with_gotos_words(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0, registration_limit=5)
    source = write_csv(tmp_path / "guests.csv", people(12))
    first = register(server, source, "--webinar-key", WEBINAR_KEY, "--concurrency", "1")
    assert first.exit_code == 3, first.output
    assert (
        "Stopped early: GoTo refused the registration for webinar 8325357307900339981: "
        "Registration is closed: the webinar is full (5 registrants)"
    ) in first.stderr
    assert "sign in again" not in first.stderr
    assert status_counts(tmp_path / "guests-joinurls.xlsx") == {"registered": 5, "pending": 7}
    server.sandbox.config.registration_limit = None  # the organizer made room
    second = register(server, source, "--webinar-key", WEBINAR_KEY)
    assert second.exit_code == 0, second.output
    assert status_counts(tmp_path / "guests-joinurls.xlsx") == {"registered": 12}
    assert len(server.sandbox.registrants()) == 12


@pytest.mark.parametrize("style", ["array", "data", "spec", "plain"])
def test_people_already_registered_get_their_join_urls_in_every_list_shape(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer], style: str
) -> None:
    # 409s carry no keys, so every join URL must come from the registrant list, which pages
    # (or not) in the configured shape; 450 people are more than two pages of 200
    server = loopback_sandbox(rate=0, list_style=style)
    everyone = people(500)
    for first, last, email in everyone[1:451]:
        server.sandbox.add_registrant({"firstName": first, "lastName": last, "email": email})
    source = write_csv(tmp_path / "guests.csv", everyone)
    result = register(server, source, "--webinar-key", WEBINAR_KEY)
    assert result.exit_code == 0, result.output
    rows = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    by_email = {entry["email"]: entry for entry in server.sandbox.registrants()}
    assert len(by_email) == 500
    for row in rows:
        assert row["joinUrl"] == by_email[row["email"]]["joinUrl"], row
    assert collections.Counter(row["status"] for row in rows) == {
        "already_registered": 450,
        "registered": 50,
    }


def test_a_form_field_with_a_name_the_importer_does_not_know(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    plain = write_csv(tmp_path / "plain.csv", people(3))
    refused = register(server, plain, "--webinar-key", SUMMIT_KEY)
    assert refused.exit_code == 2
    assert "plain.csv: no 'Company' or 'department' column" in refused.stderr
    assert "add columns named 'Company' and 'department', or rename the ones" in refused.stderr
    assert server.sandbox.stats["created"] == 0
    rows = [
        [*row, "department", "Company"] if i == 0 else [*row, "Sales", "Acme"]
        for i, row in enumerate(people(3))
    ]
    source = write_csv(tmp_path / "guests.csv", rows)
    done = register(server, source, "--webinar-key", SUMMIT_KEY)
    assert done.exit_code == 0, done.output
    stored = server.sandbox.registrants(SUMMIT_KEY)
    assert [entry["fields"]["department"] for entry in stored] == ["Sales"] * 3


def test_an_ended_webinar_is_named_with_its_date(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(2))
    result = register(server, source, "--webinar-key", KICKOFF_KEY)
    assert result.exit_code == 0
    ended = server.sandbox.webinars[KICKOFF_KEY].start.date()
    assert f"Warning: this webinar is over: its last session ended on {ended}" in result.stderr
    gone = register(server, source, "--webinar-key", "1111111111111111111")
    assert gone.exit_code == 4
    assert "webinar 1111111111111111111 was not found" in gone.stderr


def test_the_dry_run_asks_the_webinar_with_read_only_calls(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = [
        [*row, "Your role?"] if i == 0 else [*row, "Developer"] for i, row in enumerate(people(3))
    ]
    rows[2][3] = "Astronaut"
    source = write_csv(tmp_path / "guests.csv", rows)
    result = register(server, source, "--webinar-key", WORKSHOP_KEY, "--dry-run")
    assert result.exit_code == 1, result.output
    assert "As:       organizer@sandbox.invalid" in result.stderr
    assert "Webinar:  Customer workshop (sandbox) (4617712963571298411, starts " in result.stderr
    assert "row 3, Your role?: 'Astronaut' is not one of the answers" in result.stderr
    assert "2 rows would be sent to 'Customer workshop (sandbox)'" in result.stderr
    assert server.sandbox.stats["created"] == 0
    assert not (tmp_path / "user-data").exists()  # no journal: nothing but reads
    missing = write_csv(tmp_path / "plain.csv", people(2))
    refused = register(server, missing, "--webinar-key", WORKSHOP_KEY, "--dry-run")
    assert refused.exit_code == 2  # as the real run would
    assert "no 'Your role?' column" in refused.stderr
    offline = invoke("register", str(source), "--dry-run", env={})
    assert offline.exit_code == 0
    assert "Dry run of the file alone" in offline.stderr
    assert "Not checked without a sign-in: the webinar itself" in offline.stderr
    assert (
        "Columns:  'Your role?': no standard field; whether it answers the webinar's questions "
        "is not checked without a sign-in" in offline.stderr
    )
    assert "match no field" not in offline.stderr


def test_answers_gotos_create_dropped_stop_the_run_before_the_rest(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0, drop_answers=True)
    rows = [
        [*row, "Your role?"] if i == 0 else [*row, "Developer"] for i, row in enumerate(people(20))
    ]
    source = write_csv(tmp_path / "guests.csv", rows)
    result = register(server, source, "--webinar-key", WORKSHOP_KEY)
    assert result.exit_code == 4, result.output
    assert "GoTo registered row 2 but kept none of its answers" in result.stderr
    assert len(server.sandbox.registrants(WORKSHOP_KEY)) == 1
    assert status_counts(tmp_path / "guests-joinurls.xlsx") == {"registered": 1, "pending": 19}


def test_the_sandbox_refuses_what_goto_refuses(
    loopback_sandbox: Callable[..., ThreadedServer],
) -> None:
    import httpx

    server = loopback_sandbox(rate=0, pats=("a-pat",))
    base = server.api_url.split("/G2W/")[0]
    path = f"{server.api_url}/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}"
    for headers in ({"Authorization": "Bearer made-up"}, {"Authorization": "Bearer a-pat"}, {}):
        answer = httpx.get(path, headers=headers)
        assert answer.status_code == 403
        assert answer.json()["int_err_code"] == "InvalidToken"
    exchanged = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "personal_access_token", "pat": "a-pat"},
        auth=("client", "secret"),
    ).json()
    assert "refresh_token" not in exchanged
    good = httpx.get(path, headers={"Authorization": f"Bearer {exchanged['access_token']}"})
    assert good.status_code == 200
    wrong_pat = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "personal_access_token", "pat": "other"},
        auth=("client", "secret"),
    )
    assert wrong_pat.status_code == 400
    no_client = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "personal_access_token", "pat": "a-pat"}
    )
    assert no_client.status_code == 401
    me = httpx.get(f"{base}/admin/rest/v1/me", headers={"Authorization": f"Bearer {TOKEN}"})
    assert me.status_code == 403
    assert "int_err_code" not in me.json()  # not a token refusal: a scope one
    who = httpx.get(f"{base}/identity/v1/Users/me", headers={"Authorization": f"Bearer {TOKEN}"})
    assert who.json()["id"] == ORGANIZER_KEY
    since = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    listing = httpx.get(
        f"{server.api_url}/organizers/{ORGANIZER_KEY}/webinars",
        params={"fromTime": f"{since}T00:00:00Z"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert listing.status_code == 400  # toTime is required
