"""Row checks and normalisation, before any call is made."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given
from hypothesis import strategies as st

from importer.checks.validate import email_problem, validate
from importer.errors import InputError, UsageError
from importer.model import Answer, Form, FormField, Question
from importer.read.columns import near_field, unmarked
from importer.read.settings import check_key
from importer.text import hidden_character, normalise
from tests.helpers import table


@given(st.text())
def test_normalise_is_idempotent_and_trims_every_edge_space(value: str) -> None:
    once = normalise(value)
    assert normalise(once) == once
    assert once == "" or not (once[0].isspace() or once[-1].isspace())
    assert once in value


@given(st.text())
def test_hidden_character_never_raises(value: str) -> None:
    found = hidden_character(value)
    assert found is None or isinstance(found, str)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80))
def test_email_fast_path_accepts_only_what_email_validator_accepts(address: str) -> None:
    if email_problem(address) is None:
        validate_email(address, check_deliverability=False)


@given(st.from_regex(r"[a-z0-9._%+-]{1,20}@[a-z0-9-]{1,20}\.[a-z]{2,6}", fullmatch=True))
@example("0@00--0.aa")  # a label with "--" in its third and fourth places is reserved
@example("ann@xn--bcher-kva.example")
def test_email_fast_path_agrees_with_email_validator(address: str) -> None:
    try:
        validate_email(address, check_deliverability=False)
        valid = True
    except EmailNotValidError:
        valid = False
    assert (email_problem(address) is None) == valid


def test_edges_trimmed_including_non_breaking_and_zero_width_spaces() -> None:
    plan = validate(table(("\u00a0Ann\u200b ", " Lee\t", " ann@example.com\u00a0")))
    person = plan.registrants[0]
    assert (person.first_name, person.last_name, person.email) == ("Ann", "Lee", "ann@example.com")


def test_every_problem_of_every_row_is_collected_with_its_column() -> None:
    plan = validate(
        table(
            ("", "Lee", "not-an-address"),
            ("Ann\u00a0Marie", "L" * 129, "ann@example"),
            ("Bo", "Kim", "bo@example.com"),
        )
    )
    assert len(plan.registrants) == 1
    first, second = plan.problems[2], plan.problems[3]
    assert [(p.column, p.message) for p in first] == [
        ("First", "is empty; fill in the first name"),
        (
            "E-Mail",
            "'not-an-address' is not a valid e-mail address (an email address must have an @-sign)",
        ),
    ]
    assert second[0].column == "First"
    assert second[0].message == "'Ann<U+00A0>Marie' contains a non-breaking space; retype the value"
    assert second[1].message == "is 129 characters long; GoTo accepts at most 128"
    assert second[2].column == "E-Mail"
    assert "is not a valid e-mail address" in second[2].message


def test_repeated_email_ignoring_case_is_a_duplicate_of_the_first_valid_row() -> None:
    plan = validate(
        table(
            ("", "Lee", "ann@example.com"),
            ("Ann", "Lee", "Ann@Example.com"),
            ("Ann", "Lee", "ANN@example.com"),
        )
    )
    assert [p.line for p in plan.registrants] == [3]
    assert plan.duplicates == {4: 3}
    assert 2 in plan.problems


def test_optional_fields_are_sent_and_other_columns_are_not() -> None:
    plan = validate(
        table(
            ("Ann", "Lee", "ann@example.com", " Acme ", "", "VIP"),
            headers=("First", "Last", "Email", "Company", "Job Title", "Notes"),
        )
    )
    assert plan.registrants[0].fields == {"organization": "Acme"}
    assert plan.registrants[0].body() == {
        "firstName": "Ann",
        "lastName": "Lee",
        "email": "ann@example.com",
        "organization": "Acme",
    }
    assert plan.ignored_headers == ("Notes",)


def test_missing_required_column_names_it_and_the_fix() -> None:
    with pytest.raises(InputError) as caught:
        validate(table(("Ann", "ann@example.com"), headers=("Vorname", "Email")))
    assert str(caught.value) == (
        "people.csv: no 'lastName' column (the header in line 1 has 'Vorname', 'Email'); add a "
        "column named 'lastName', or rename the one that holds it"
    )
    with pytest.raises(
        InputError, match=r"no 'firstName' or 'lastName' column .*add columns named "
    ):
        validate(table(("Ann", "ann@example.com"), headers=("Person", "Email")))
    many = ("Vorname", "Email", *(f"Extra {n}" for n in range(1, 10)))
    with pytest.raises(InputError, match=r"'Extra 5', 'Extra 6' and 3 more\); add a column"):
        validate(table(("Ann", "ann@example.com", *[""] * 9), headers=many))


@pytest.mark.parametrize("header", ["Name", "Full name", "Vollständiger Name"])
def test_a_full_name_column_is_split_at_the_last_space(header: str) -> None:
    plan = validate(
        table(
            ("Anna Maria Schmidt", "anna@example.com"),
            ("Cher", "cher@example.com"),
            (" Jean-Luc  Picard ", "jl@example.com"),
            headers=(header, "Email"),
        )
    )
    names = [(p.first_name, p.last_name) for p in plan.registrants]
    assert names == [("Anna Maria", "Schmidt"), ("Jean-Luc", "Picard")]
    assert plan.problems[3][0].message.startswith("'Cher' is one word; the column is split")
    assert plan.rules[0].sent_as == "firstName and lastName (split at the last space)"


@pytest.mark.parametrize("key", ["8325357307900339981", " 123456789 ", "9223372036854775807"])
def test_keys_are_kept_as_exact_digits(key: str) -> None:
    assert check_key("--webinar-key", key) == key.strip()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("8.32536E+18", "is a number rounded by Excel"),
        ("8,32536E+18", "is a number rounded by Excel"),
        ("8325357307900330000", "ends in zeros after digit 15"),
        ("832-535-730", "is not a key"),
        ("9223372036854775808", "too long for a key"),
        ("", "is not a key"),
    ],
)
def test_mangled_keys_are_refused_with_the_fix(key: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_key("--webinar-key", key)


def summit(*, company_required: bool = True) -> Form:
    """A form like the sandbox's partner summit: no organization or jobTitle, a field the
    importer has no alias for, and questions named like the standard fields it leaves out."""
    return Form(
        fields=(
            FormField("firstName", True),
            FormField("lastName", True),
            FormField("email", True),
            FormField("phone", False),
            FormField("department", True),
        ),
        questions=(
            Question("1", "Company", company_required, "shortAnswer"),
            Question("2", "Title", False, "shortAnswer", answers=(Answer("9", "Dr."),)),
            Question("3", "Track", False, "multipleChoice"),
        ),
    )


def test_a_column_the_webinar_does_not_ask_for_is_never_suggested_as_itself() -> None:
    headers = (
        *("First", "Last", "Email", "department", "Company"),
        *("organization", "jobTitle", "Titel", "Organisaton", "Phon", "Trak", "Notes"),
    )
    plan = validate(table(("Ann", "Lee", "a@example.com", *["x"] * 9), headers=headers), summit())
    assert {headers[i]: why for i, why in plan.unsent.items()} == {
        "organization": "not a field of this webinar",
        "jobTitle": (
            "this webinar asks for it as the question 'Title'; rename the column to 'Title' to "
            "answer it"
        ),
    }
    # a misspelling of what the webinar asks for and no column fills; not of organization
    # (not asked for) nor of Track (multiple choice without answers: nothing can answer it)
    assert plan.near == (("Titel", "Title"), ("Phon", "phone"))


def test_a_field_whose_meaning_a_question_asks_for_is_offered_the_rename() -> None:
    headers = ("First", "Last", "Email", "department", "organization")
    plan = validate(
        table(("Ann", "Lee", "a@example.com", "Sales", "Acme"), headers=headers),
        summit(company_required=False),
    )
    assert dict(plan.unsent) == {
        4: (
            "this webinar asks for it as the question 'Company'; rename the column to 'Company' "
            "to answer it"
        )
    }
    with pytest.raises(InputError) as caught:
        validate(
            table(("Ann", "Lee", "a@example.com", "Acme"), headers=headers[:3] + headers[4:]),
            summit(),
        )
    assert str(caught.value) == (
        "people.csv: no 'Company' or 'department' column (the header in line 1 has 'First', "
        "'Last', 'Email', 'organization'); add a column named 'department', or rename the one "
        "that holds it; and rename the column 'organization' to 'Company' (this webinar asks "
        "for it as a question)"
    )


def test_near_field_suggests_only_what_differs_from_the_header() -> None:
    assert near_field("Compnay") == "organization"
    assert near_field("Emial") == "email"
    assert near_field("organization") is None  # what it already says
    assert near_field("Organisation") is None  # an alias of it
    assert near_field("Compnay", ["Company"], fields=()) == "Company"
    assert near_field("Compnay", fields=("email",)) is None


@pytest.mark.parametrize(
    ("header", "shown"),
    [("email *", "email"), ("Your role? *", "Your role?"), ("Notes*", "Notes"), ("a*b", "a*b")],
)
def test_the_templates_mark_is_not_part_of_a_header(header: str, shown: str) -> None:
    assert unmarked(header) == shown
