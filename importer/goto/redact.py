"""Secrets never leave the process: access tokens, refresh tokens, PATs and client secrets are
scrubbed out of any text before it is printed, logged, stored or written."""

from __future__ import annotations

import contextlib
import logging
import unicodedata
from collections.abc import Callable, Iterator

from importer.text import clean

HIDDEN = "<hidden>"
#: shorter strings are not secrets worth hiding (and would hide ordinary words)
MIN_LENGTH = 4

Secrets = Callable[[], list[str]]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret in it replaced by ``<hidden>``.

    Control and invisible format characters go first (they are shown to nobody anyway): a
    secret spelt out with them between its letters would otherwise pass here whole, and come
    back together when the text is cleaned for the terminal.
    """
    text = "".join(c for c in clean(text) if unicodedata.category(c) != "Cf")
    for secret in secrets:
        if len(secret) >= MIN_LENGTH and secret in text:
            text = text.replace(secret, HIDDEN)
    return text


class Redact(logging.Filter):
    """Second line of defence: no secret survives into a log line, renewed tokens included."""

    def __init__(self, secrets: Secrets) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = scrub(message, self.secrets())
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


@contextlib.contextmanager
def hidden_in_logs(secrets: Secrets) -> Iterator[None]:
    """While the block runs, every handler of the root logger hides these secrets."""
    handlers = list(logging.getLogger().handlers)
    guard = Redact(secrets)
    for handler in handlers:
        handler.addFilter(guard)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(guard)
