"""The sandbox's webinars: their keys, their forms, and which create calls GoTo would refuse."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

ORGANIZER_KEY = "5071418929213466883"
WEBINAR_KEY = "8325357307900339981"
WORKSHOP_KEY = "4617712963571298411"
SUMMIT_KEY = "7219004418839305214"
KICKOFF_KEY = "5550112233445566778"
JOIN_HOST = "https://sandbox.g2w-import.invalid"
MAX_FIELD = 128

STANDARD_FIELDS = (
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
REQUIRED = ("firstName", "lastName", "email")
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
#: the third sandbox webinar's questions are named like standard fields its form does not list
#: ("Company", "Title"); "Title" is a short answer that happens to list suggestions, and
#: "Track" a multiple-choice question whose answers were never filled in
SUMMIT_QUESTIONS: list[dict[str, Any]] = [
    {
        "questionKey": 7101,
        "question": "Company",
        "required": True,
        "type": "shortAnswer",
        "maxSize": 128,
        "answers": [],
    },
    {
        "questionKey": 7102,
        "question": "Title",
        "required": False,
        "type": "shortAnswer",
        "maxSize": 64,
        "answers": [{"answerKey": 9101, "answer": "Dr."}, {"answerKey": 9102, "answer": "Prof."}],
    },
    {
        "questionKey": 7103,
        "question": "Track",
        "required": False,
        "type": "multipleChoice",
        "maxSize": 128,
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


@dataclass
class SandboxWebinar:
    """One webinar of the sandbox and everyone registered for it."""

    key: str
    subject: str
    start: dt.datetime
    questions: list[dict[str, Any]] = field(default_factory=list)
    #: form fields beyond GoTo's standard ones, as the fields endpoint lists them
    extra_fields: list[dict[str, Any]] = field(default_factory=list)
    #: standard fields the form does not ask for
    omit_fields: frozenset[str] = frozenset()
    #: ``MANUAL``: the organizer approves each registrant (they wait until then)
    approval: str = "AUTOMATIC"
    registrants: list[dict[str, Any]] = field(default_factory=list)
    by_email: dict[str, dict[str, Any]] = field(default_factory=dict)

    def form(self) -> dict[str, Any]:
        """The form as the fields endpoint describes it."""
        fields = [
            {
                "field": name,
                "required": name in REQUIRED,
                "maxSize": MAX_FIELD,
                "answers": EMPLOYEE_COUNTS if name == "numberOfEmployees" else [],
            }
            for name in STANDARD_FIELDS
            if name not in self.omit_fields
        ]
        return {"fields": fields + self.extra_fields, "questions": self.questions}


def catalogue(start: dt.datetime) -> dict[str, SandboxWebinar]:
    """The sandbox's webinars, the first starting at ``start``."""
    return {
        WEBINAR_KEY: SandboxWebinar(WEBINAR_KEY, "Product launch (sandbox)", start),
        WORKSHOP_KEY: SandboxWebinar(
            WORKSHOP_KEY,
            "Customer workshop (sandbox)",
            start + dt.timedelta(days=7),
            questions=WORKSHOP_QUESTIONS,
        ),
        # a form field the importer has no alias for (sent when a column is named exactly
        # so), questions named like standard fields it does not ask for, manual approval
        SUMMIT_KEY: SandboxWebinar(
            SUMMIT_KEY,
            "Partner summit (sandbox)",
            start + dt.timedelta(days=14),
            questions=SUMMIT_QUESTIONS,
            extra_fields=[{"field": "department", "required": True, "maxSize": 64, "answers": []}],
            omit_fields=frozenset({"organization", "jobTitle"}),
            approval="MANUAL",
        ),
        # over: GoTo may still take people, as late registrants
        KICKOFF_KEY: SandboxWebinar(
            KICKOFF_KEY, "Kick-off (sandbox)", start - dt.timedelta(days=37)
        ),
    }


def body_problem(webinar: SandboxWebinar, payload: dict[str, Any]) -> str | None:
    """Why a create call's body would get a 400 from GoTo, if it would."""
    for name in REQUIRED:
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"{name} is required"
    for name in STANDARD_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and len(value) > MAX_FIELD:
            return f"{name} is longer than {MAX_FIELD}"
    value = payload.get("numberOfEmployees")
    if value is not None and value not in EMPLOYEE_COUNTS:
        return f"numberOfEmployees '{value}' is not allowed"
    address = payload["email"].strip()
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain:
        return f"Invalid email address: {address}"
    for extra in webinar.extra_fields:
        value = payload.get(extra["field"])
        if extra["required"] and (not isinstance(value, str) or not value.strip()):
            return f"{extra['field']} is required"
    return response_problem(webinar, payload)


def response_problem(webinar: SandboxWebinar, payload: dict[str, Any]) -> str | None:
    """Why the ``responses`` of a create call do not fit the webinar's questions, if they don't."""
    given = payload.get("responses", [])
    if not isinstance(given, list) or not all(isinstance(r, dict) for r in given):
        return "responses must be a list of objects"
    by_key = {question["questionKey"]: question for question in webinar.questions}
    answered = set()
    for response in given:
        key = response.get("questionKey")
        question = by_key.get(key) if isinstance(key, str | int) else None
        if question is None:
            return f"unknown questionKey {response.get('questionKey')}"
        answered.add(question["questionKey"])
        if question["type"] == "multipleChoice":
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
