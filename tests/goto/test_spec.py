"""What GoTo's own v2 spec says: answers shaped exactly as its schemas, and the behaviour that
follows from them (approval status, questions named like fields, question types)."""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from importer.checks.validate import validate
from importer.errors import InputError
from importer.goto.client import G2WClient
from importer.model import Form, Question, Registrant, Status
from importer.sandbox import SUMMIT_KEY, WEBINAR_KEY
from tests import helpers
from tests.helpers import DATA, ThreadedServer, mock_client, people, sheet_rows, table, write_csv

SPEC = DATA / "spec"
ANN = Registrant(2, "Ann", "Lee", "ann@example.com")


def answered(name: str, status: int = 200) -> httpx.MockTransport:
    content = (SPEC / name).read_bytes()
    return httpx.MockTransport(lambda request: httpx.Response(status, content=content))


def client_call(transport: httpx.MockTransport, call: Callable[[G2WClient], Any]) -> Any:
    async def go() -> Any:
        async with mock_client(transport, token="t0ken") as http:
            return await call(G2WClient(http, "111", "222"))

    return asyncio.run(go())


def test_a_spec_registrant_created_has_no_status() -> None:
    got = client_call(
        answered("registrant_created.json", 201),
        lambda c: c.create_registrant(ANN, resend=False),
    )
    assert (got.status, got.registrant_key, got.approval) == (
        Status.REGISTERED,
        "8325357307900339981",
        None,
    )


def test_a_spec_registrant_list_keeps_keys_exact_and_statuses() -> None:
    page = client_call(answered("registrants.json"), lambda c: c.list_registrants_page(0))
    assert page.style == "array"
    assert [(e.registrant_key, e.status) for e in page.entries] == [
        ("5071418929213466883", "APPROVED"),
        ("9223372036854775807", "WAITING"),
        ("1000000000000000001", "DENIED"),
    ]
    assert page.entries[0].registered_at == "2026-11-02T09:15:00Z"


def test_spec_registration_fields_and_one_registrant() -> None:
    form = client_call(answered("registration_fields.json"), lambda c: c.get_form())
    assert [f.name for f in form.fields] == ["firstName", "lastName", "email", "numberOfEmployees"]
    title = next(q for q in form.questions if q.text == "Title")
    assert (title.kind, title.multiple_choice, [a.text for a in title.answers]) == (
        "shortAnswer",
        False,
        ["Dr."],
    )
    one = client_call(answered("registrant_detailed.json"), lambda c: c.get_registrant("5"))
    assert one.responses == (("Company", "Acme"), ("Your role?", "Developer"))


def test_the_question_type_decides_how_it_is_answered() -> None:
    form = client_call(answered("registration_fields.json"), lambda c: c.get_form())
    plan = validate(
        table(
            ("Ann", "Lee", "ann@example.com", "Acme", "Chief", "developer", "CTO"),
            headers=("First", "Last", "Email", "Company", "Title", "Your role?", "Job title"),
        ),
        form,
    )
    registrant = plan.registrants[0]
    bodies = [response.body() for response in registrant.responses]
    assert bodies == [
        {"questionKey": 7101, "responseText": "Acme"},
        {"questionKey": 7102, "responseText": "Chief"},  # a short answer, though it lists one
        {"questionKey": 7001, "answerKey": 9001},
    ]
    # organization and jobTitle are not fields of this form: not claimed by their aliases
    assert registrant.fields == {}
    assert [(plan.table.headers[i], why) for i, why in plan.unsent.items()] == [
        ("Job title", "not a field of this webinar")
    ]


def test_a_required_multiple_choice_question_without_answers_is_a_form_problem() -> None:
    broken = Form(questions=(Question("1", "Track", True, "multipleChoice"),))
    with pytest.raises(InputError, match="required question 'Track' is multiple choice but lists"):
        validate(
            table(("A", "B", "a@b.de", "x"), headers=("First", "Last", "Email", "Track")), broken
        )


#: no organizer key: the API is asked whose token it is; the webinar's key is given at each call
register = functools.partial(helpers.register, rate=500, keys=False)


def statuses(path: Path) -> list[tuple[str, str, str]]:
    # what was wrong, or else what to know: a person waiting for approval is no error
    return [
        (str(row["email"]), str(row["status"]), str(row["error"] or row["note"] or ""))
        for row in sheet_rows(path)
    ]


def test_denied_and_waiting_people_are_reported_as_they_stand(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    everyone = people(4)
    for (first, last, email), status in zip(everyone[1:3], ("DENIED", "WAITING"), strict=True):
        server.sandbox.add_registrant(
            {"firstName": first, "lastName": last, "email": email}, status=status
        )
    source = write_csv(tmp_path / "guests.csv", everyone)
    first = register(server, source, "--webinar-key", WEBINAR_KEY)
    assert first.exit_code == 1, first.output  # a denied person is not done
    assert "1 denied" in first.stderr
    expected = [
        ("person0@example.com", "denied", "the organizer declined this person in GoTo Webinar"),
        ("person1@example.com", "waiting_approval", "GoTo e-mails the join link once"),
        ("person2@example.com", "registered", ""),
        ("person3@example.com", "registered", ""),
    ]
    report = tmp_path / "guests-joinurls.xlsx"
    got = statuses(report)
    assert [(e, s) for e, s, _ in got] == [(e, s) for e, s, _ in expected]
    for (_, _, error), (_, _, wanted) in zip(got, expected, strict=True):
        assert error.startswith(wanted)
    attention = tmp_path / "guests-needs-attention.csv"
    assert not attention.exists()  # re-sending cannot change an organizer's decision
    created = server.sandbox.stats["created"]
    again = register(server, source, "--webinar-key", WEBINAR_KEY)
    assert again.exit_code == 1
    assert server.sandbox.stats["created"] == created  # the denied person is not sent again
    assert statuses(report)[0][1] == "denied"


def test_a_new_registrant_of_a_webinar_with_approval_waits(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    rows = [["firstName", "lastName", "email", "department", "Company", "Title", "Organization"]]
    rows += [["Ann", "Lee", "ann@example.com", "Sales", "Acme", "Dr.", "Ignored Inc"]]
    source = write_csv(tmp_path / "guests.csv", rows)
    result = register(server, source, "--webinar-key", SUMMIT_KEY)
    assert result.exit_code == 0, result.output
    # the 201 says nothing of approval (the spec's RegistrantCreated), nor does the webinar's
    # own answer: the organizer's webinar list does
    assert statuses(tmp_path / "guests-joinurls.xlsx") == [
        (
            "ann@example.com",
            "waiting_approval",
            "GoTo e-mails the join link once the organizer approves this person",
        )
    ]
    assert "this webinar approves registrants by hand" in result.stderr
    assert "Not sent: column 'Organization': not a field of this webinar" in result.stderr
    stored = server.sandbox.registrants(SUMMIT_KEY)[0]
    assert stored["fields"] == {
        "firstName": "Ann",
        "lastName": "Lee",
        "email": "ann@example.com",
        "department": "Sales",
    }
    assert collections.Counter(
        (r["questionKey"], r.get("responseText")) for r in stored["responses"]
    ) == {(7101, "Acme"): 1, (7102, "Dr."): 1}
