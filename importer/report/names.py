"""Where reports go: names made from an input file or a webinar's subject."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from pathlib import Path

from importer.model import Webinar

SUFFIXES = (".xlsx", ".csv")
#: characters no file name may hold on Windows, macOS or Linux, and the other controls
_NOT_IN_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f-\x9f]+')
#: Unicode categories dropped from a file name: format characters (bidirectional controls,
#: zero-width ones) and surrogates
_HIDDEN = frozenset({"Cf", "Cs"})


def stamp(moment: dt.datetime) -> str:
    """A moment as a report's Summary shows it."""
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def named_after(webinar: Webinar, ending: str) -> Path:
    """``<subject>-<ending>`` in the current folder, the subject made safe for a file name (the
    webinar key when nothing is left of it). Invisible format characters go too: after a
    right-to-left override (U+202E) the rest of the name reads backwards, so that a subject
    could pass the file off as a ``.jpg`` or ``.exe``; and lone surrogates, which no file
    system takes."""
    visible = "".join(ch for ch in webinar.subject if unicodedata.category(ch) not in _HIDDEN)
    stem = " ".join(_NOT_IN_NAMES.sub(" ", visible).split())[:80].strip(" .")
    return Path(f"{stem or webinar.key}-{ending}")


def beside(source: Path, ending: str) -> Path:
    """``people.csv`` → ``people-<ending>``, in the same folder."""
    return source.with_name(f"{source.stem}-{ending}")
