"""Text as people type and paste it: trimming, invisible characters, and safe display.

Normalising happens here and only here, so that the reader, the checks, the journal and the
report all agree on what a cell says.
"""

from __future__ import annotations

import re
import unicodedata

# Characters that hide in copied-and-pasted cells. At the edges they are trimmed; inside a value
# they are reported, because silently dropping them could change a name or address.
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
INVISIBLE_INSIDE = {
    "\u00a0": "a non-breaking space",
    "\u2007": "a non-breaking space",
    "\u202f": "a narrow non-breaking space",
    "\u200b": "a zero-width space",
    "\u200c": "a zero-width character",
    "\u200d": "a zero-width character",
    "\u2060": "a zero-width character",
    "\ufeff": "a zero-width character",
    "\u00ad": "a soft hyphen",
    **{
        chr(c): "a bidirectional control character"
        for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
    },
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a line break",
}
_INSIDE_PATTERN = re.compile(
    "[" + re.escape("".join(INVISIBLE_INSIDE)) + r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)
_EDGE_CHARACTERS = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + _ZERO_WIDTH


def normalise(value: str) -> str:
    """Trim whitespace of every kind, and zero-width characters, from both ends of a cell."""
    return value.strip(_EDGE_CHARACTERS)


def hidden_character(value: str) -> str | None:
    """A description of the first invisible character inside ``value``, or None."""
    if value.isascii() and value.isprintable():  # the common case, at C speed
        return None
    found = _INSIDE_PATTERN.search(value)
    return INVISIBLE_INSIDE.get(found.group(), "a control character") if found else None


def printable(value: str) -> str:
    """``value`` with invisible characters shown as ``<U+00A0>``, so the user can find them."""
    return "".join(
        f"<U+{ord(ch):04X}>" if ch in INVISIBLE_INSIDE or unicodedata.category(ch) == "Cc" else ch
        for ch in value
    )


# C0 and C1 controls (ESC starts the terminal's escape sequences) and the bidirectional
# embeddings, overrides and isolates that can make text read differently from what it is
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """``text`` safe to show on a terminal or a page: control characters (escape sequences
    among them) and bidirectional overrides removed, so it cannot clear a screen, set a window
    title, or read differently from what it is."""
    return _UNSAFE.sub("", text)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,200 rows``; ``1 person``, ``3 people`` with ``plural``."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def are(count: int) -> str:
    """``is`` for one, ``are`` for more."""
    return "is" if count == 1 else "are"


def article(noun: str) -> str:
    """``a`` or ``an`` before ``noun``, by its first letter."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def repeated(first: int, of: str = "") -> str:
    """Why a row that repeats the e-mail of row ``first`` (``of`` another file) is not sent."""
    return f"same e-mail as row {first}{f' of {of}' if of else ''}; not sent again"
