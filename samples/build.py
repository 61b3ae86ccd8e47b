"""Rebuild the sample files from code: ``python samples/build.py``.

- ``registrants.csv``: forty people, UTF-8, for the first try (``--sandbox``);
- ``workshop.xlsx``: the template for the sandbox's workshop webinar, filled in, custom
  questions answered;
- ``europe-semicolons.csv``: as Excel saves "CSV" in much of Europe: semicolons, Windows-1252;
- ``broken-rows.csv``: a few rows with the mistakes people make, to see how they are reported.
"""

from __future__ import annotations

import asyncio
import csv
import random
from pathlib import Path

from openpyxl import load_workbook

from importer.goto.connection import Access
from importer.jobs import webinars
from importer.report import template
from importer.sandbox import WORKSHOP_KEY

HERE = Path(__file__).parent
FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
LAST = [
    "Schmidt",
    "Müller",
    "O'Brien",
    "García",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Andersson",
    "Tanaka",
    "Okafor",
    "Silva",
]
COMPANIES = ["Acme GmbH", "Globex Ltd", "Initech", "Umbrella Corp", "Hooli", "Soylent AG"]
TITLES = ["Marketing Manager", "Event Coordinator", "CTO", "Sales Lead", "Analyst", ""]


def address(first: str, last: str, number: int) -> str:
    plain = (first + "." + last).lower()
    for old, new in (("é", "e"), ("ü", "ue"), ("í", "i"), ("'", "")):
        plain = plain.replace(old, new)
    return f"{plain}{number}@example.com"


def people(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for number in range(count):
        first, last = FIRST[number % len(FIRST)], rng.choice(LAST)
        rows.append(
            [
                first,
                last,
                address(first, last, number),
                rng.choice(COMPANIES),
                rng.choice(TITLES),
                f"+49 30 {rng.randint(1000000, 9999999)}",
            ]
        )
    return rows


def registrants_csv() -> None:
    rng = random.Random(7)
    with (HERE / "registrants.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["First Name", "Last Name", "Email Address", "Company", "Job Title", "Phone", "Notes"]
        )
        for row in people(40, seed=7):
            writer.writerow([*row, rng.choice(["", "", "VIP", "speaker"])])


def workshop_xlsx() -> None:
    # the template that `g2w-import template workshop.xlsx --sandbox --webinar-key
    # 4617712963571298411` writes: the workshop's own form, read from the built-in sandbox
    workshop, form = asyncio.run(webinars.webinar_and_form(Access(sandbox=True), WORKSHOP_KEY))
    path = HERE / "workshop.xlsx"
    template.build(path, webinar=workshop, form=form, sandbox=True)
    book = load_workbook(path)
    sheet = book["Registrants"]
    columns = [cell.value for cell in sheet[1]]
    rng = random.Random(11)
    hopes = ["", "Automation", "How others run events", "Pricing", ""]
    for number, (first, last, email, company, title, phone) in enumerate(people(12, seed=11)):
        values = {
            "firstName *": first,
            "lastName *": last,
            "email *": email,
            "organization": company,
            "jobTitle": title,
            "phone": phone,
            "Your role? *": rng.choice(["Developer", "marketing", "Management", "Other"]),
            "What do you hope to learn?": rng.choice(hopes),
        }
        for column, header in enumerate(columns, start=1):
            if values.get(header):
                sheet.cell(row=number + 2, column=column, value=values[header])
    book.save(path)


def europe_csv() -> None:
    rows = [
        ["Vorname", "Nachname", "E-Mail-Adresse", "Firma", "Position"],
        ["Jürgen", "Müller", "juergen.mueller@example.de", "Bäckerei Süß GmbH", "Inhaber"],
        ["Renée", "Lefèvre", "renee.lefevre@example.fr", "Café Crème SARL", "Gérante"],
        ["Björn", "Strauß", "bjoern.strauss@example.de", "Straßenbau AG", "Einkauf"],
        ["Zoë", "Ångström", "zoe.angstrom@example.se", "Nordljus AB", "CTO"],
    ]
    with (HERE / "europe-semicolons.csv").open("w", newline="", encoding="cp1252") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)


def broken_csv() -> None:
    rows = [
        ["firstName", "lastName", "email", "Company"],
        ["Anna", "Schmidt", "anna.schmidt@example.com", "Acme GmbH"],
        ["Ben", "", "ben.jones@example.com", "Globex Ltd"],
        ["Chloé", "Martin", "chloe.martin@example", "Initech"],
        ["David", "Lee", "ANNA.SCHMIDT@example.com", "Hooli"],
        ["Emma\u00a0Rose", "Brown", "emma.brown@example.com", "Soylent AG"],
        ["Felix", "Wagner", "felix wagner@example.com", "Acme GmbH"],
        ["Grace", "Kim", "grace.kim@example.com", '=HYPERLINK("http://example.com")'],
    ]
    with (HERE / "broken-rows.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


if __name__ == "__main__":
    registrants_csv()
    workshop_xlsx()
    europe_csv()
    broken_csv()
