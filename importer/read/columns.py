"""Which input column holds which registrant field.

Headers are compared ignoring case, spaces, ``_``, ``-``, ``.`` and a trailing ``*`` or ``:``, so
``First Name``, ``first_name`` and ``FIRSTNAME *`` are all ``firstName``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

REQUIRED = ("firstName", "lastName", "email")

#: API field name → header spellings people use (already in folded form, see :func:`fold`).
ALIASES: dict[str, tuple[str, ...]] = {
    "firstName": ("firstname", "first", "givenname", "forename", "vorname", "prenom"),
    "lastName": ("lastname", "last", "surname", "familyname", "nachname", "nom"),
    "email": (
        "email",
        "emailaddress",
        "emailadresse",
        "mail",
        "mailaddress",
        "emailadres",
        "courriel",
        "correo",
        "correoelectronico",
    ),
    "organization": ("organization", "organisation", "company", "companyname", "firma", "employer"),
    "jobTitle": ("jobtitle", "title", "position", "jobposition"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "telefon", "mobile"),
    "address": ("address", "streetaddress", "street", "strasse"),
    "city": ("city", "town", "ort", "stadt"),
    "state": ("state", "province", "region", "stateprovince", "county"),
    "zipCode": ("zipcode", "zip", "postcode", "postalcode", "plz"),
    "country": ("country", "land"),
    "industry": ("industry", "branche"),
    "numberOfEmployees": ("numberofemployees", "employees", "companysize"),
    "purchasingTimeFrame": ("purchasingtimeframe",),
    "purchasingRole": ("purchasingrole",),
    "questionsAndComments": ("questionsandcomments", "questionsorcomments", "comments"),
    "source": ("source",),
}

OPTIONAL = tuple(name for name in ALIASES if name not in REQUIRED)

_LOOKUP = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
#: spaces, separators, and the invisible characters a header can carry from another program
#: (a second byte-order mark, zero-width spaces and joiners, a word joiner, a soft hyphen)
_NOISE = re.compile(r"[\s_\-.\u00ad\u200b-\u200d\u2060\ufeff]+")
_ACCENTS = str.maketrans("éèêáàäöüß", "eeeaaaous")
#: the template's mark of a required column (``email *``), however it was spaced
_MARK = re.compile(r"\s*\*+\s*$")


def fold(header: str) -> str:
    """A header in the form the alias table uses: ``E-Mail Adresse *`` → ``emailadresse``."""
    return _NOISE.sub("", header).rstrip("*:").casefold().translate(_ACCENTS)


def field_for(header: str) -> str | None:
    """The API field a header stands for, or None."""
    return _LOOKUP.get(fold(header))


def near_field(
    header: str, among: Iterable[str] = (), fields: Collection[str] | None = None
) -> str | None:
    """The field (or one of ``among``, a webinar's question texts and other names) that a
    header is most likely a misspelling of: ``Compnay`` → ``organization``, ``Emial`` →
    ``email``. ``fields``: only these standard fields are candidates (None: all of them).
    None when nothing is close, or when the closest is what the header already says."""
    folded = fold(header)
    if len(folded) < 4:
        return None
    names = {
        alias: name
        for alias, name in _LOOKUP.items()
        if len(alias) >= 4 and (fields is None or name in fields)
    }
    names.update({fold(text): text for text in among})
    close = difflib.get_close_matches(folded, list(names), n=1, cutoff=0.8)
    if not close:
        return None
    which = names[close[0]]
    return None if fold(which) == folded or _LOOKUP.get(folded) == which else which


def unmarked(header: str) -> str:
    """A header without the template's mark of a required column: ``email *`` → ``email``.
    Messages, reports and the page show headers so."""
    return _MARK.sub("", header)


@dataclass(frozen=True)
class ColumnMap:
    """Where each API field sits in a header row: field name → column index."""

    positions: dict[str, int]

    @classmethod
    def from_headers(cls, headers: Sequence[str]) -> ColumnMap:
        """Map each known field to the first column whose header names it."""
        positions: dict[str, int] = {}
        for index, header in enumerate(headers):
            name = field_for(header)
            if name is not None and name not in positions:
                positions[name] = index
        return cls(positions)


def looks_like_header(cells: Sequence[str]) -> bool:
    """Whether a row can be the header: it names an e-mail column."""
    return any(field_for(cell) == "email" for cell in cells if cell)
