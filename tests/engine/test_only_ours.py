"""Only ours, only true: undo never touches a registration it cannot prove it made, every key and
join URL in a report is the one GoTo holds, and a webinar that approves by hand is reported so."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from importer.engine.journal import Journal, State
from importer.goto.provenance import ServerClock, names_of, verdict
from importer.model import ListedRegistrant, Registrant
from importer.sandbox import ORGANIZER_KEY, PREFIX, SUMMIT_KEY, WEBINAR_KEY
from tests import helpers
from tests.helpers import ENV, TOKEN, LoopServer, ThreadedServer, at, people, sheet_rows, write_csv

HOUR_AGO = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
invoke = functools.partial(helpers.invoke, env=ENV)


def killed_run(journal: Path, guests: list[list[str]]) -> None:
    """A journal as a ``register`` killed with every create in flight leaves it: all
    ``sending``, none answered."""
    with Journal.open(journal, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as opened:
        sent = [
            Registrant(2 + i, first, last, email)
            for i, (first, last, email) in enumerate(guests[1:])
        ]
        opened.admit(sent)
        for person in sent:
            opened.sending(person, 0.0)  # GoTo's clock, measured then, agrees with this one


def registered_elsewhere(server: ThreadedServer, guests: list[list[str]], when: str) -> None:
    """People registered through another channel (GoTo's own page) at ``when``."""
    for first, last, email in guests[1:]:
        entry = server.sandbox.add_registrant(
            {"firstName": first, "lastName": last, "email": email}
        )
        entry["registrationDate"] = when


# --- 1. undo and cancel touch only what this tool registered ------------------------------------


def test_undo_after_a_killed_run_leaves_alone_who_was_registered_before(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    before = people(20)
    registered_elsewhere(server, before, HOUR_AGO)  # by GoTo's own page, an hour ago
    mine = [before[0], *[[f"New{i}", "Person", f"new{i}@example.com"] for i in range(5)]]
    journal = tmp_path / "journal.sqlite3"
    killed_run(journal, [before[0], *before[1:], *mine[1:]])
    for first, last, email in mine[1:]:  # these five creates did reach GoTo before the kill
        server.sandbox.add_registrant({"firstName": first, "lastName": last, "email": email})

    undone = invoke(
        "undo", *at(server), "--journal", str(journal), "--yes", "--out", str(tmp_path / "u.xlsx")
    )

    assert undone.exit_code == 0, undone.output
    assert "To cancel:  5 registrations made by g2w-import" in undone.stderr
    assert "Left alone: 20 people g2w-import did not register" in undone.stderr
    assert "of those left alone, 20 people had g2w-import's call go without" in undone.stderr
    assert "Clock:" in undone.stderr
    held = {entry["email"] for entry in server.sandbox.registrants()}
    assert held == {email for _, _, email in before[1:]}  # all 20 still registered
    report = sheet_rows(tmp_path / "u.xlsx")
    left = [row for row in report if row["status"] == "left_alone"]
    assert len(left) == 20
    assert all(row["note"].startswith("registered already: GoTo registered") for row in left)
    with Journal.open(journal, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as opened:
        states = {entry.email: entry.state for entry in opened.entries().values()}
    assert {states[email] for _, _, email in before[1:]} == {State.ALREADY_REGISTERED}
    assert {states[email] for _, _, email in mine[1:]} == {State.CANCELLED}


def test_undo_leaves_alone_a_person_registered_right_after_under_other_names(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    guests = people(2)
    journal = tmp_path / "journal.sqlite3"
    killed_run(journal, guests)  # both calls in flight when the run was killed
    first, last, email = guests[1]
    server.sandbox.add_registrant({"firstName": first.upper(), "lastName": last, "email": email})
    _, _, other = guests[2]  # never arrived; the person signed up on GoTo's page just after
    server.sandbox.add_registrant({"firstName": "Someone", "lastName": "Else", "email": other})

    undone = invoke(
        "undo", *at(server), "--journal", str(journal), "--yes", "--out", str(tmp_path / "u.xlsx")
    )

    assert undone.exit_code == 0, undone.output
    assert "To cancel:  1 registration made by g2w-import" in undone.stderr
    assert {entry["email"] for entry in server.sandbox.registrants()} == {other}
    left = [row for row in sheet_rows(tmp_path / "u.xlsx") if row["status"] == "left_alone"]
    assert [row["email"] for row in left] == [other]
    assert "under other names than g2w-import sent" in left[0]["note"]


def test_undo_counts_as_left_alone_only_people_who_are_registered(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    guests = people(9)
    registered_elsewhere(server, guests[:4], HOUR_AGO)  # 3 people, an hour ago
    journal = tmp_path / "journal.sqlite3"
    killed_run(journal, guests)  # 9 calls in flight; 3 of them arrived, 3 never did
    for first, last, email in guests[4:7]:
        server.sandbox.add_registrant({"firstName": first, "lastName": last, "email": email})
    source = write_csv(tmp_path / "guests.csv", guests)
    out = str(tmp_path / "u.csv")
    args = ["--journal", str(journal), "--file", str(source), "--out", out]
    plan = invoke("undo", *at(server), *args, "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "Left alone: 3 people g2w-import did not register" in plan.stderr
    assert "To cancel:  3 registrations made by g2w-import" in plan.stderr
    done = invoke("undo", *at(server), *args, "--yes")
    assert done.exit_code == 0, done.output
    assert "Done: 3 cancelled, 3 not registered, 3 left alone." in done.stderr
    statuses = (tmp_path / "u.csv").read_text(encoding="utf-8-sig")
    assert statuses.count(",left_alone,") == 3
    assert statuses.count(",not_registered,") == 3


def test_a_resumed_register_does_not_claim_who_was_registered_before(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    guests = people(6)
    registered_elsewhere(server, people(3), HOUR_AGO)
    journal = tmp_path / "journal.sqlite3"
    killed_run(journal, guests)
    source = write_csv(tmp_path / "guests.csv", guests)

    again = invoke("register", str(source), *at(server), "--journal", str(journal))

    assert again.exit_code == 0, again.output
    statuses = [row["status"] for row in sheet_rows(tmp_path / "guests-joinurls.xlsx")]
    assert statuses == ["already_registered"] * 3 + ["registered"] * 3
    undone = invoke(
        "undo", *at(server), "--journal", str(journal), "--yes", "--out", str(tmp_path / "u.csv")
    )
    assert undone.exit_code == 0, undone.output
    assert "To cancel:  3 registrations made by g2w-import" in undone.stderr
    assert sorted(e["email"] for e in server.sandbox.registrants()) == [
        f"person{i}@example.com" for i in range(3)
    ]


def test_cancel_records_an_unproven_registration_as_not_ours(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    guests = people(2)
    registered_elsewhere(server, guests, HOUR_AGO)
    journal = tmp_path / "journal.sqlite3"
    killed_run(journal, guests)
    source = write_csv(tmp_path / "leaving.csv", guests)
    done = invoke("cancel", str(source), *at(server), "--journal", str(journal), "--yes")
    assert done.exit_code == 0, done.output
    with Journal.open(journal, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as opened:
        priors = {entry.prior for entry in opened.entries().values()}
    assert priors == {State.ALREADY_REGISTERED}  # so a later undo would not count them as ours


@pytest.mark.parametrize(
    ("registered", "low", "ours"),
    [
        (100.0, 0.0, True),  # registered as the call left
        (99.0, 0.0, True),  # the second it left, written to the second
        (98.5, 0.0, False),  # before it left
        (130.0, 30.0, True),  # GoTo's clock 30 s ahead: still after
        (110.0, 30.0, False),  # ... so 110 on GoTo's clock was before the call
        (80.0, -30.0, True),  # GoTo's clock 30 s behind
    ],
)
def test_the_registration_date_proves_a_registration_ours_on_gotos_clock(
    registered: float, low: float, ours: bool
) -> None:
    clock = ServerClock()
    clock.low, clock.high = low, low + 1.0
    base = 1_700_000_000  # in November 2023: a registration date in the past
    when = dt.datetime.fromtimestamp(base + registered, dt.UTC).isoformat()
    found = ListedRegistrant("1" * 19, "a@example.com", None, "APPROVED", registered_at=when)
    assert verdict(found, base + 100.0, clock).ours is ours


@pytest.mark.parametrize(
    ("written", "ours"),
    [
        ("2026-01-13T10:00:59Z", True),  # to the second: the second the call left
        ("2026-01-13T10:00:58Z", False),
        ("2026-01-13T10:00Z", True),  # to the minute: the minute the call left
        ("2026-01-13T11:00+01:00", True),  # to the minute, in another zone
        ("2026-01-13T09:59Z", False),
        ("2026-01-13T11:00:59+01:00", True),  # another zone, the same moment
        ("2026-01-13T10:00:59", False),  # a time of no stated zone proves nothing
        ("2026-01-13", False),
        ("2999-01-01T00:00:00Z", False),  # in the future: no date at all
        ("0001-01-01T00:00:00+01:00", False),  # before the calendar begins
    ],
)
def test_a_registration_date_is_read_at_its_own_resolution(written: str, ours: bool) -> None:
    sent = dt.datetime(2026, 1, 13, 10, 0, 59, 500_000, tzinfo=dt.UTC).timestamp()
    clock = ServerClock()
    clock.low, clock.high = 0.0, 1.0
    found = ListedRegistrant("1" * 19, "a@example.com", None, "APPROVED", registered_at=written)
    assert verdict(found, sent, clock).ours is ours


def test_a_registration_under_other_names_is_not_proven_ours() -> None:
    sent = 1_700_000_000.0
    clock = ServerClock()
    clock.low, clock.high = 0.0, 1.0
    when = dt.datetime.fromtimestamp(sent + 5, dt.UTC).isoformat()

    def listed(first: str, last: str) -> ListedRegistrant:
        return ListedRegistrant(
            "1" * 19, "a@example.com", None, "APPROVED", first, last, registered_at=when
        )

    sent_as = names_of("Zoë", "van der Berg")
    assert verdict(listed("ZOË ", "van  der Berg"), sent, clock, names=sent_as).ours
    assert verdict(listed("Zoe\u0308", "van der Berg"), sent, clock, names=sent_as).ours  # NFD
    other = verdict(listed("Someone", "Else"), sent, clock, names=sent_as)
    assert not other.ours
    assert "under other names" in other.reason
    assert verdict(listed("", ""), sent, clock, names=sent_as).ours  # a list without names
    seen = verdict(listed("Someone", "Else"), sent, clock, names=sent_as, key_seen="1" * 19)
    assert seen.ours  # the key in the answer to this very call proves it whatever the names


def test_a_key_seen_in_an_answer_proves_it_and_no_date_proves_nothing() -> None:
    found = ListedRegistrant("1" * 19, "a@example.com", None, "APPROVED")
    assert verdict(found, 100.0, ServerClock(), key_seen="1" * 19).ours
    assert not verdict(found, 100.0, ServerClock()).ours
    assert not verdict(found, None, ServerClock(), key_seen="2" * 19).ours


def test_a_clock_whose_answers_disagree_or_that_is_far_off_proves_nothing() -> None:
    when = dt.datetime.now(dt.UTC).isoformat()
    found = ListedRegistrant("1" * 19, "a@example.com", None, "APPROVED", registered_at=when)
    sent = time.time() - 10
    clock = ServerClock()
    assert not verdict(found, sent, clock).ours  # no Date header: nothing to compare with
    date = formatdate(time.time(), usegmt=True)
    clock.observe(date, time.time() - 0.1, time.time())
    assert verdict(found, sent, clock).ours
    clock.observe(formatdate(time.time() - 600, usegmt=True), time.time(), time.time())
    assert clock.unreliable  # one answer 10 minutes off: which is right cannot be told
    proof = verdict(found, sent, clock)
    assert not proof.ours
    assert "clock times disagree" in proof.reason
    far = ServerClock()
    far.observe("Thu, 01 Jan 1970 00:00:00 GMT", time.time() - 0.1, time.time())
    assert far.unreliable
    # the offset kept with the call, not today's: a clock set right since changes nothing
    assert not verdict(found, sent, clock, clock_low=-30.0).ours
    honest = ServerClock()
    honest.observe(formatdate(time.time(), usegmt=True), time.time() - 0.1, time.time())
    assert verdict(found, sent, honest, clock_low=0.0, measured=True).ours
    # a call of an earlier run whose clocks were not compared then: nothing proven today
    assert not verdict(found, sent, honest, measured=True).ours
    # nor a registration long after the call left: a call lasts minutes at the most
    assert not verdict(found, sent - 3600, honest, clock_low=0.0, measured=True).ours


def test_the_clock_offset_is_learnt_from_date_headers() -> None:
    clock = ServerClock()
    assert clock.offset == 0.0
    assert "sent no clock time" in clock.describe()
    # answers stamped 42 s ahead of this computer's clock, each taking 0.2 s
    for sent in (1_000.0, 1_005.3, 1_010.7):
        date = dt.datetime.fromtimestamp(sent + 42.1, dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        clock.observe(date, sent, sent + 0.2)
    assert clock.low is not None
    assert clock.high is not None
    assert clock.low <= 42.1 <= clock.high
    assert clock.high - clock.low < 1.2
    assert clock.describe() == "GoTo's clock is 42 s ahead of this computer's"


# --- 2. every key and join URL in the report is GoTo's ------------------------------------------


class HostileServer(LoopServer):
    """A GoTo on a raw socket that answers a create on a kept-alive connection with a stray
    201 (``stray``: a copy of the answer it gave before on that connection, or a made-up key)
    before the real one, as a broken proxy would. The registration itself goes through.

    Its other ways: a registrant list that leaves out the people of ``omit``, or gives their
    join URLs with ``suffix``, or answers ``list_status``; an organizer's webinar list that
    answers ``webinars_status``."""

    def __init__(
        self,
        stray: str | None = None,
        *,
        cut: bool = False,
        omit: frozenset[str] = frozenset(),
        suffix: str = "",
        list_status: int | None = None,
        webinars_status: int | None = None,
    ) -> None:
        super().__init__()
        self.stray = stray
        self.omit, self.suffix, self.cut = omit, suffix, cut
        self.list_status, self.webinars_status = list_status, webinars_status
        self.registrants: dict[str, dict[str, Any]] = {}
        self.strays = 0
        self._next = 5_000_000_000_000_000_000
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def api_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}{PREFIX}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        last: bytes | None = None
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b" ", 2)[:2]
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                body = await reader.readexactly(int(length[1])) if length else b""
                status, answer = self._answer(method.decode(), target.decode(), body)
                if method == b"POST" and status == 201 and last is not None and self.stray:
                    self.strays += 1
                    if self.stray == "copy":
                        writer.write(_http(201, last))
                    else:
                        self._next += 1
                        fake = {"registrantKey": self._next, "joinUrl": f"https://x/{self._next}"}
                        writer.write(_http(201, json.dumps(fake).encode()))
                    await writer.drain()
                    await asyncio.sleep(0.05)
                writer.write(_http(status, answer))
                await writer.drain()
                if method == b"POST" and status == 201:
                    last = answer
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, method: str, target: str, body: bytes) -> tuple[int, bytes]:
        path = target.split("?")[0][len(PREFIX) :]
        webinar = f"/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}"
        start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if path == webinar:
            return 200, json.dumps({"subject": "Hostile", "times": [{"startTime": start}]}).encode()
        if path == f"{webinar}/registrants/fields":
            fields = [{"field": n, "required": True} for n in ("firstName", "lastName", "email")]
            return 200, json.dumps({"fields": fields, "questions": []}).encode()
        if path == f"/organizers/{ORGANIZER_KEY}/webinars" and self.webinars_status:
            return self.webinars_status, b'{"description": "Not for this token"}'
        if path == f"/organizers/{ORGANIZER_KEY}/webinars":
            listed = [{"webinarKey": WEBINAR_KEY, "approvalType": "AUTOMATIC"}]
            return 200, json.dumps({"_embedded": {"webinars": listed}}).encode()
        if path == f"{webinar}/registrants" and method == "GET":
            page = int(re.search(r"page=(\d+)", target)[1]) if "page=" in target else 0  # type: ignore[index]
            if self.list_status:
                return self.list_status, b'{"description": "Invalid request"}'
            shown = [
                {**entry, "joinUrl": entry["joinUrl"] + self.suffix}
                for address, entry in self.registrants.items()
                if address not in self.omit
            ]
            if self.cut:  # a server that ignores paging and cuts the list
                page = 0
            return 200, json.dumps(shown[page * 200 : (page + 1) * 200]).encode()
        one = re.fullmatch(rf"{webinar}/registrants/(\d+)", path)
        if one and method == "GET":  # one registrant, with its answers (none: no questions)
            found = [e for e in self.registrants.values() if str(e["registrantKey"]) == one[1]]
            return (
                (200, json.dumps({**found[0], "responses": []}).encode()) if found else (404, b"{}")
            )
        if path == f"{webinar}/registrants" and method == "POST":
            person = json.loads(body)
            address = person["email"].lower()
            if address in self.registrants:
                return 409, b""
            self._next += 1
            key = self._next
            self.registrants[address] = {
                "registrantKey": key,
                "email": person["email"],
                "firstName": person["firstName"],
                "lastName": person["lastName"],
                "joinUrl": f"https://global.gotowebinar.invalid/join/{key}",
                "status": "APPROVED",
                "registrationDate": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            created = {"registrantKey": key, "joinUrl": self.registrants[address]["joinUrl"]}
            return 201, json.dumps(created).encode()
        return 404, b"{}"


def _http(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 201: "Created", 404: "Not Found", 409: "Conflict"}.get(status, "Error")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
    head += f"Date: {formatdate(time.time(), usegmt=True)}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.fixture(params=["copy", "made-up"])
def hostile(request: pytest.FixtureRequest) -> Iterator[HostileServer]:
    with HostileServer(request.param) as server:
        yield server


def test_a_stray_answer_never_gives_a_person_a_key_that_is_not_theirs(
    tmp_path: Path, hostile: HostileServer
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(30))
    journal = tmp_path / "journal.sqlite3"
    args = ["--journal", str(journal), "--rate", "50", "--concurrency", "3"]
    result = invoke("register", str(source), *at(hostile), *args)
    assert hostile.strays > 0
    assert result.exit_code == 0, result.output
    truth = {address: entry for address, entry in hostile.registrants.items()}
    report = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert len(report) == 30
    for row in report:
        held = truth[row["email"].lower()]
        assert (row["registrantKey"], row["joinUrl"]) == (
            str(held["registrantKey"]),
            held["joinUrl"],
        ), row
        # a copied answer is another person's: the date proves the registration this tool's;
        # a made-up key is nobody's, so nothing proves whose the listed registration is
        mine = "which the list holds for nobody" not in (row["note"] or "")
        assert row["status"] == ("registered" if mine else "already_registered"), row
    with Journal.open(journal, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as opened:
        keys = {e.email_key: e.registrant_key for e in opened.entries().values()}
    assert keys == {address: str(e["registrantKey"]) for address, e in truth.items()}


def test_after_a_stray_answer_every_row_is_checked_even_with_no_verify(tmp_path: Path) -> None:
    with HostileServer("copy") as server:
        source = write_csv(tmp_path / "guests.csv", people(20))
        args = ["--rate", "50", "--concurrency", "3", "--no-verify"]
        result = invoke("register", str(source), *at(server), *args)
        truth = {a: str(e["registrantKey"]) for a, e in server.registrants.items()}
    assert result.exit_code == 0, result.output
    assert "belonged to another registrant" in result.stderr
    assert "--no-verify notwithstanding" in result.stderr
    report = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert {row["email"]: row["registrantKey"] for row in report} == truth
    assert "Check:" not in result.stderr  # the plan promised no check


def test_a_person_the_list_leaves_out_keeps_gotos_answer_and_is_not_sent_again(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(3))
    journal = tmp_path / "journal.sqlite3"
    with HostileServer(omit=frozenset({"person1@example.com"})) as server:
        args = ["--journal", str(journal)]
        result = invoke("register", str(source), *at(server), *args)
        row = sheet_rows(tmp_path / "guests-joinurls.xlsx")[1]
        again = invoke("register", str(source), *at(server), *args)
        created = len(server.registrants)
    assert result.exit_code == 0, result.output
    assert "1 row not in the list" in result.stderr
    assert row["status"] == "registered"
    assert row["registrantKey"]
    assert "does not show this person" in row["note"]
    assert again.exit_code == 0, again.output
    assert created == 3  # nobody sent again
    with Journal.open(journal, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as opened:
        person = opened.entries()["person1@example.com"]
    assert (person.state, person.registrant_key) == (State.REGISTERED, row["registrantKey"])


def test_a_join_url_written_otherwise_keeps_the_registration_ours(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    with HostileServer(suffix="?source=list") as server:
        result = invoke("register", str(source), *at(server))
    assert result.exit_code == 0, result.output
    report = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert [row["status"] for row in report] == ["registered"] * 2
    assert all(row["joinUrl"].endswith("?source=list") for row in report)  # GoTo's list wins


@pytest.mark.parametrize("status", [400, 403, 500])
def test_the_check_or_the_approval_refused_stops_nothing(tmp_path: Path, status: int) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    with HostileServer(list_status=status, webinars_status=status) as server:
        result = invoke("register", str(source), *at(server), "--give-up-after", "600")
    # without the webinar list's word on approval the first person is read back: a webinar
    # without questions has no answers to keep, which is no reason to stop
    assert result.exit_code == 0, result.output
    assert "Done: 2 registered." in result.stderr
    assert "Not checked against GoTo's registrant list (" in result.stderr
    assert "Traceback" not in result.output


def test_a_list_cut_short_decides_nothing(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(250))
    with HostileServer(cut=True) as server:
        args = ["--rate", "500", "--journal", str(tmp_path / "j.sqlite3")]
        result = invoke("register", str(source), *at(server), *args)
        undone = invoke("undo", *at(server), *args[2:], "--yes", "--out", str(tmp_path / "u.csv"))
        held = len(server.registrants)
    assert result.exit_code == 0, result.output
    assert "Not checked against GoTo's registrant list (the registrant list could not be read" in (
        result.stderr
    )
    assert {row["status"] for row in sheet_rows(tmp_path / "guests-joinurls.xlsx")} == {
        "registered"
    }
    assert undone.exit_code == 3, undone.output  # stopped: resumable, nothing decided
    assert "could not be read whole" in undone.stderr
    assert held == 250  # nobody was cancelled on the strength of a list cut short


def test_the_plan_says_what_the_check_costs(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    registered_elsewhere(server, people(450, domain="other.example"), HOUR_AGO)
    source = write_csv(tmp_path / "guests.csv", people(10))
    result = invoke("register", str(source), *at(server))
    assert result.exit_code == 0, result.output
    assert "one read, about 3 calls; --no-verify skips it" in result.stderr  # ⌈460 / 200⌉
    assert "every key and join URL matches" in result.stderr


def test_a_registration_replaced_since_an_earlier_run_is_corrected_and_not_claimed(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(3))
    journal = tmp_path / "journal.sqlite3"
    first = invoke("register", str(source), *at(server), "--journal", str(journal))
    assert first.exit_code == 0, first.output
    # person1's registration was cancelled and made again by someone else: another key
    entry = server.sandbox.registrants()[1]
    entry["registrantKey"], entry["joinUrl"] = "7" * 19, "https://sandbox.invalid/join/7"
    entry["registrationDate"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    again = invoke("register", str(source), *at(server), "--journal", str(journal))
    assert again.exit_code == 0, again.output
    assert "1 row corrected" in again.stderr
    row = sheet_rows(tmp_path / "guests-joinurls.xlsx")[1]
    assert (row["registrantKey"], row["joinUrl"]) == ("7" * 19, "https://sandbox.invalid/join/7")
    assert row["status"] == "already_registered"  # GoTo's, but not this tool's
    assert "is gone, and this one was made since by someone else" in row["note"]
    with Journal.open(journal, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as opened:
        person = opened.entries()["person1@example.com"]
    assert (person.registrant_key, person.state) == ("7" * 19, State.ALREADY_REGISTERED)
    undone = invoke(
        "undo", *at(server), "--journal", str(journal), "--yes", "--out", str(tmp_path / "u.csv")
    )
    assert undone.exit_code == 0, undone.output
    assert [e["email"] for e in server.sandbox.registrants()] == ["person1@example.com"]


@pytest.mark.parametrize("key", [-5, 0, "12ab", 2**63, 1.5e18, True])
def test_a_key_that_is_no_positive_int64_is_no_key_anywhere(key: object) -> None:
    from importer.goto.decode import key_text, registrants

    assert key_text(key) is None
    assert registrants([{"registrantKey": key, "email": "a@example.com"}]) == []


# --- 3. manual approval: waiting is not registered ----------------------------------------------


def summit_guests(folder: Path, count: int) -> Path:
    """A file of ``count`` people for the sandbox's "Partner summit", which approves by hand
    (its form requires a department and the question "Company")."""
    rows = [["firstName", "lastName", "email", "department", "Company"]]
    rows += [[f"F{i}", f"L{i}", f"p{i}@example.com", "Sales", "Acme"] for i in range(count)]
    return write_csv(folder / "guests.csv", rows)


def test_waiting_people_are_reported_as_waiting_and_the_plan_says_why(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = summit_guests(tmp_path, 8)
    result = invoke("register", str(source), *at(server, SUMMIT_KEY))
    assert result.exit_code == 0, result.output
    assert "this webinar approves registrants by hand" in result.stderr
    assert "Done: 8 registered, 8 of them await approval." in result.stderr
    report = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert {row["status"] for row in report} == {"waiting_approval"}


def test_without_the_webinar_list_the_read_back_says_they_wait(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    server.sandbox.webinars[SUMMIT_KEY].start += dt.timedelta(days=900)  # past the days asked
    source = summit_guests(tmp_path, 4)
    result = invoke("register", str(source), *at(server, SUMMIT_KEY), "--no-verify")
    assert result.exit_code == 0, result.output
    report = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert [row["status"] for row in report] == ["waiting_approval"] * 4


def test_undo_cancels_its_own_waiting_registrations(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = summit_guests(tmp_path, 3)
    assert invoke("register", str(source), *at(server, SUMMIT_KEY)).exit_code == 0
    undone = invoke("undo", *at(server, SUMMIT_KEY), "--yes", "--out", str(tmp_path / "u.csv"))
    assert undone.exit_code == 0, undone.output
    assert server.sandbox.registrants(SUMMIT_KEY) == []


def test_the_sandbox_serves_the_one_webinar_answer_as_the_spec_does(
    loopback_sandbox: Callable[..., ThreadedServer],
) -> None:
    import httpx

    server = loopback_sandbox(rate=0)
    path = f"organizers/{ORGANIZER_KEY}/webinars"
    with httpx.Client(
        base_url=server.api_url + "/", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        one = http.get(f"{path}/{SUMMIT_KEY}")
        listed = http.get(
            path, params={"fromTime": "2000-01-01T00:00:00Z", "toTime": "2100-01-01T00:00:00Z"}
        )
        created = http.post(
            f"{path}/{WEBINAR_KEY}/registrants",
            json={"firstName": "A", "lastName": "B", "email": "a@example.com"},
        )
    assert "approvalType" not in one.json()
    assert one.headers["date"]
    summit = next(
        w for w in listed.json()["_embedded"]["webinars"] if w["webinarKey"] == SUMMIT_KEY
    )
    assert summit["approvalType"] == "MANUAL"
    assert set(created.json()) == {"registrantKey", "joinUrl"}
