"""The webinar's registrant list, read whole: the one source that settles an item whose call
may or may not have gone through, and the check of every registered row after sending."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping

from importer.errors import (
    ApiUnavailable,
    RunStopped,
)
from importer.goto.client import PAGE_LIMIT, G2WClient, Page
from importer.goto.session import ApiSession
from importer.model import ListedRegistrant, email_key

log = logging.getLogger(__name__)

#: the most pages of the registrant list read at once: 200,000 people, more than a webinar holds
MAX_PAGES = 1000


class Directory:
    """The webinar's registrant list by e-mail key, read whole (every page) when asked."""

    def __init__(self, session: ApiSession, client: G2WClient, expected: int = 0) -> None:
        self._session = session
        self._client = client
        #: about how many people the list holds, when known (the webinar's own count)
        self.expected = expected
        self.known: dict[str, ListedRegistrant] = {}
        #: how many whole reads were made
        self.reads = 0

    async def read(
        self, expected: int | None = None, *, optional: bool = False
    ) -> dict[str, ListedRegistrant]:
        """Everyone registered now, by e-mail key (the first entry of a repeated address).

        Pages are read until the answer's own shape says the list is over: the total of a
        ``{data, total}`` answer, the page count of a ``{_embedded, page}`` one, and for bare
        arrays a page shorter than asked for, or one with nobody new (a server that ignores
        paging sends the same people again). Entries are told apart by registrant key; the
        reading is bounded, and stops with the run. An ``optional`` read raises what keeps
        it from the whole list without stopping the run.

        The pages that ``expected`` people fill are asked for side by side, each in its own slot
        of the pace, rather than one answer's time after another, and so are the pages the
        list's shape then says are left. They are asked for as both documented shapes read
        them (``page`` and ``limit``); a server of the spec's ``{_embedded, page}`` shape that
        ignores ``limit`` has its first page asked again, alone, and the rest after it.
        """
        log.debug("reading the webinar's registrant list")
        expected = self.expected if expected is None else expected
        by_key: dict[str, ListedRegistrant] = {}
        # the pages ``expected`` people fill, page 0 among them, asked for with ``limit``: what
        # both documented shapes read (a bare array, and {data, total})
        numbers = range(min(_filled(expected), AHEAD))
        pages = list(zip(numbers, await self._pages(numbers, None, optional), strict=True))
        first = pages[0][1]
        if first.style == "spec" and first.size not in (None, PAGE_LIMIT):
            first = await self._page(0, "spec", optional)  # it ignored "limit": full pages
            pages = [(0, first)]
        style = first.style
        full = False  # whether the page before was a full one
        while True:
            for number, answer in pages:
                new = [entry for entry in answer.entries if entry.registrant_key not in by_key]
                by_key.update((entry.registrant_key, entry) for entry in new)
                wrong = _absurd(answer.total, answer.pages)
                if wrong is None and _last_page(answer, number, len(by_key), bool(new)):
                    wrong = _cut_short(answer, number, len(by_key), bool(new), full)
                    if wrong is None:
                        return self._found(by_key)
                if wrong is not None:
                    if not optional:  # nobody may be sent again without the whole list
                        self._session.stop(wrong)
                    raise wrong
                full = len(answer.entries) >= PAGE_LIMIT
            number, answer = pages[-1]
            after = number + 1
            if after > MAX_PAGES:
                endless = ApiUnavailable(
                    f"the registrant list did not end after {MAX_PAGES:,} pages; run again later"
                )
                if not optional:  # nobody may be sent again without the whole list
                    self._session.stop(endless)
                raise endless
            numbers = range(after, min(after + _ahead(answer, after, expected), MAX_PAGES + 1))
            pages = list(zip(numbers, await self._pages(numbers, style, optional), strict=True))

    async def _page(self, number: int, style: str | None, optional: bool) -> Page:
        return await self._session.call(
            functools.partial(self._client.list_registrants_page, number, PAGE_LIMIT, style=style),
            what="reading the registrant list",
            optional=optional,
        )

    async def _pages(self, numbers: range, style: str | None, optional: bool) -> list[Page]:
        """Pages of the list, asked for side by side; the first stop raises why."""
        tasks: list[asyncio.Task[Page]] = []
        try:
            async with asyncio.TaskGroup() as group:
                tasks += [
                    group.create_task(self._page(number, style, optional)) for number in numbers
                ]
        except* RunStopped as stopped:
            raise stopped.exceptions[0] from None
        return [task.result() for task in tasks]

    def _found(self, by_key: Mapping[str, ListedRegistrant]) -> dict[str, ListedRegistrant]:
        found: dict[str, ListedRegistrant] = {}
        for entry in by_key.values():
            found.setdefault(email_key(entry.email), entry)
        self.known = found
        self.reads += 1
        return found


#: the most pages of the registrant list asked for side by side
AHEAD = 50


def _ahead(answer: Page, page: int, expected: int) -> int:
    """How many pages from ``page`` on to ask for side by side, after ``answer``: as many as
    its shape says are left, or as ``expected`` people fill; at least one."""
    if answer.style == "data" and answer.total is not None:
        wanted = -(-answer.total // PAGE_LIMIT)
    elif answer.style == "spec" and answer.pages is not None:
        wanted = answer.pages
    else:
        wanted = _filled(expected)
    return max(1, min(wanted - page, AHEAD))


def _filled(expected: int) -> int:
    """The pages a list of ``expected`` people fills, with the one that shows it has ended: a
    bare array ends with a page shorter than asked for, one past the expected."""
    return -(-(expected + 1) // PAGE_LIMIT)


def _last_page(answer: Page, page: int, seen: int, anything_new: bool) -> bool:
    """Whether this page of the registrant list is its last."""
    if not answer.entries or not anything_new:
        return True
    if answer.style == "data":
        return len(answer.entries) < PAGE_LIMIT or (
            answer.total is not None and seen >= answer.total
        )
    if answer.style == "spec":
        return answer.pages is None or page + 1 >= answer.pages
    return len(answer.entries) != PAGE_LIMIT  # a bare array: a full page means ask for more


def _cut_short(
    answer: Page, page: int, seen: int, anything_new: bool, full_before: bool
) -> ApiUnavailable | None:
    """Why a list that ends with this page was not read whole, if it was not: fewer people
    than its own count, a page of its page count repeated, or a bare array that gave a full
    page again (a server that ignores paging and cuts the list short). Nothing may be decided
    from such a list: not who is absent, not who is left to cancel."""
    why = None
    if answer.style == "data" and answer.total is not None and seen < answer.total:
        why = f"it ended after {seen:,} of the {answer.total:,} people it counts"
    elif answer.style == "spec" and answer.pages is not None and page + 1 < answer.pages:
        why = f"page {page + 1} of {answer.pages} repeated the ones before"
    elif answer.style == "array" and page and answer.entries and not anything_new and full_before:
        why = "it gave a full page again (the server ignores paging, and may cut the list)"
    if why is None:
        return None
    return ApiUnavailable(
        f"the registrant list could not be read whole ({why}); nothing was decided from it: "
        "run again later, and report it to GoTo if it persists"
    )


def _absurd(total: int | None, pages: int | None) -> ApiUnavailable | None:
    """Why a list that claims more registrants than any webinar can hold is refused."""
    if (total is not None and total > MAX_PAGES * PAGE_LIMIT) or (pages or 0) > MAX_PAGES:
        return ApiUnavailable(
            f"the registrant list claims {total or pages:,} entries or pages, more than a "
            "webinar holds; run again later, and report it to GoTo if it persists"
        )
    return None
