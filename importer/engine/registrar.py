"""Register people for one webinar, keeping the journal: the create call on the exactly-once
engine (:mod:`importer.engine.exactly_once`: workers, attempts, parking, settling from the
registrant list).

* Each person is committed to the journal as ``sending`` before the create call leaves and
  settled after the answer (in batches: :class:`~importer.engine.journal.Journal`), so a
  crash at any instant leaves an exact record.
* A create whose outcome is unknown (the answer was lost, timed out, or was a 5xx from a gateway
  that may have passed the request on) is *parked*, never re-sent blindly: GoTo has no
  idempotency key. When the queue runs dry, one read of the registrant list settles every parked
  row; only those not in the list are sent again. A 409 that does not say as whom, and a 201
  without a join URL, are settled the same way.
* One row's failure never touches another; an answer that makes every further call pointless
  stops the session, and rows not yet settled stay pending.
* Nothing an answer says is taken on trust where it could belong to someone else: a registrant
  key or join URL that another row of the run or of the journal holds is no answer (a stray
  answer on a kept-alive connection, a broken proxy), and the row is settled from the list; a
  registration of unknown outcome counts as this tool's only when proven
  (:mod:`importer.goto.provenance`). Once sending ends, :meth:`Registrar.verify` reads the list once
  more and checks every registered row's key, join URL and approval against it: GoTo's list wins.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from importer.engine.exactly_once import SETTLE_DELAY, Engine, Parked
from importer.engine.journal import Journal
from importer.errors import AnswersDropped, ConnectFailed, RateLimited, RequestRejected, RunStopped
from importer.goto import provenance
from importer.goto.client import G2WClient, Registration
from importer.goto.session import ApiSession
from importer.model import ListedRegistrant, Registrant, Result, Status

log = logging.getLogger(__name__)

#: how many people with answers are sent one by one, at most, to find one to read back
VERIFY_TRIES = 5
#: the notes of a row whose key or join URL GoTo's registrant list corrected: after an answer
#: of this run, and for a registration an earlier run had settled
CORRECTED = (
    "corrected from GoTo's registrant list: the answer to this row's call carried another "
    "registrant key or join URL (key {key})"
)
REPLACED = (
    "corrected from GoTo's registrant list: the registration g2w-import made (key {key}) is "
    "gone, and this one was made since by someone else"
)
UNHELD = (
    "corrected from GoTo's registrant list: the answer to this row's call carried key {key}, "
    "which the list holds for nobody; the registration it holds is not proven to be "
    "g2w-import's, so undo leaves it alone"
)
#: the notes of a row settled as registered that GoTo's list does not show: the row is kept
#: as GoTo's answer had it (a list can lag behind, or be cut short by a server), not sent again
NOT_LISTED = (
    "GoTo's registrant list does not show this person (yet); the key and join URL are those "
    "of GoTo's answer"
)
NO_LONGER = (
    "GoTo's registrant list no longer shows this person (cancelled in GoTo Webinar?); "
    "g2w-import export lists who is registered"
)
UNLISTED = (NOT_LISTED, NO_LONGER)

OnResult = Callable[[Registrant, Result], None]


@dataclass(frozen=True)
class Preparation:
    """Who still needs sending after the journal and the registrant list had their say."""

    to_send: list[Registrant]
    #: rows settled before any create call, by input line
    settled: dict[int, Result]
    #: of those, how many an earlier run had settled
    resumed: int
    #: and how many the registrant list showed as registered already
    found: int


#: the kinds of a parked row besides "unknown": GoTo said "already registered" without saying
#: as whom; registered (the row's ``key``), but the answer gave no join URL
CONFLICT = "conflict"
CREATED = "created"


class Registrar(Engine[Registrant, Registration, Result]):
    """Registers one webinar's people; several registrars may share one session (one pace)."""

    doing = "registering"

    def __init__(
        self,
        session: ApiSession,
        client: G2WClient,
        *,
        journal: Journal | None = None,
        resend: bool = False,
        concurrency: int = 4,
        settle_delay: float = SETTLE_DELAY,
        manual_approval: bool | None = False,
        owners: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(
            session, client, journal, concurrency=concurrency, settle_delay=settle_delay
        )
        self.resend = resend
        #: the organizer approves registrants by hand: a new one waits (the spec's 201 does
        #: not say so itself); None while unknown: the first new registrant is read back
        self.manual_approval = manual_approval
        #: e-mail keys whose create this run sent without learning the outcome
        self._maybe_ours: set[str] = set()
        #: when the last create of this run for each person left (this computer's clock)
        self._sent_at: dict[str, float] = {}
        #: the people whose "sending" this run staged, by e-mail key
        self._staged: dict[str, Registrant] = {}
        #: registrant keys and join URLs given to a person: (webinar key, e-mail key) by key or
        #: URL, shared by the registrars of one run (an answer may stray across webinars)
        self._owners = owners if owners is not None else {}
        self._owners_read = False
        #: answers refused because another row holds their key or join URL
        self.strays = 0
        #: creates sent since the registrant list was last read
        self._sent_since_read = 0

    async def prepare(
        self,
        registrants: list[Registrant],
        listed: Mapping[str, ListedRegistrant] | None = None,
    ) -> Preparation:
        """Sort out who still needs sending, before the first create call.

        Rows the journal holds as settled are not sent again. When an earlier run may have
        registered some of the rest without learning it (``sending`` in the journal), the
        webinar's registrant list settles them first (``listed``, when already read), and
        anyone else it shows is not sent either. Otherwise nothing is read: people registered
        by another channel are found by GoTo's 409, and settled from one read of the list once
        the rest are sent.
        """
        if self.journal is None:
            return Preparation(list(registrants), {}, 0, 0)
        admission = self.journal.admit(registrants)
        if listed is None and not admission.unknown:
            settled = admission.settled
            return Preparation(admission.to_send, settled, len(settled), 0)
        if listed is None:
            listed = await self.directory.read()
        else:
            self.directory.known = dict(listed)
        still, found = self.journal.reconcile(admission.to_send, listed, self.client.clock)
        return Preparation(
            still, {**admission.settled, **found}, len(admission.settled), len(found)
        )

    async def _start(self, queue: collections.deque[Registrant], on_result: OnResult) -> None:
        """Read the first registrant back first, when the webinar leaves something to learn."""
        if self.manual_approval is None or any(r.responses for r in queue):
            await self._read_back_first(queue, on_result)

    def _finish(self) -> None:
        """Rows whose "sending" a group commit carried, but whose call never left, go back to
        ``todo``; then the journal is committed."""
        if self.journal is not None:
            for key, registrant in self._staged.items():
                if key not in self._sent_at:
                    self.journal.stage_unsent(registrant)
        super()._finish()

    def unsettled(self) -> set[int]:
        """Lines sent without a clear answer and not settled yet: the journal holds them as
        ``sending``, and the next run looks them up before sending again."""
        return {registrant.line for registrant in self._unknown()}

    async def _read_back_first(
        self, queue: collections.deque[Registrant], on_result: OnResult
    ) -> None:
        """Send the first people one by one until one is newly registered, and read that one
        back, before the rest are sent: if GoTo kept none of the answers to custom questions
        (as its "basic" create does), stop; and when the webinar did not say whether its
        organizer approves registrants by hand, the registrant's own status says it (the spec's
        201 need not carry one)."""
        answers = any(registrant.responses for registrant in queue)
        first = [r for r in queue if r.responses or not answers][:VERIFY_TRIES]
        for registrant in first:
            if self.session.stopping:
                return
            queue.remove(registrant)
            result = await self._attempt(registrant)
            if result is None:
                continue
            if not result.by_us or not result.registrant_key:
                self._settle(registrant, result, on_result)
                continue
            try:
                stored = await self.session.call(
                    functools.partial(self.client.get_registrant, result.registrant_key),
                    what="reading back the first registrant",
                    optional=True,  # what it would tell the check at the end tells too
                )
            except RunStopped:
                if self.session.stopping:
                    self._settle(registrant, result, on_result)
                    return
                stored = None
            if stored is not None and self.manual_approval is None:
                self.manual_approval = stored.status == "WAITING"
            if stored is not None and stored.status and stored.status != result.approval:
                key, url = result.registrant_key, result.join_url
                result = Result.settled(result.line, Status.REGISTERED, key, url, stored.status)
            self._settle(registrant, result, on_result)
            kept = stored is None or stored.responses is None or stored.responses
            if registrant.responses and not kept:
                self.session.stop(
                    AnswersDropped(
                        f"GoTo registered row {registrant.line} but kept none of its answers "
                        "to the webinar's questions; nothing more was sent. Check the "
                        "webinar's registration questions in GoTo Webinar, then run again"
                    )
                )
            return

    def _key(self, registrant: Registrant) -> str:
        return registrant.email_key

    def _call(self, registrant: Registrant, attempt: int) -> Callable[[], Awaitable[Registration]]:
        """The create call; the first attempt stages "sending", committed before it leaves."""
        key = registrant.email_key
        journal = self.journal
        batch = None
        clock = self.client.clock
        if journal is not None and attempt == 1:
            batch = journal.stage_sending(registrant, clock.low)
            self._staged[key] = registrant
        tries = 0

        async def create() -> Registration:
            # when the call that may register the person leaves, every attempt: a registration
            # dated before it is not this tool's (importer.goto.provenance)
            nonlocal tries
            tries += 1
            self._sent_at[key] = provenance.now()
            if journal is not None and batch is not None and tries == 1:
                journal.commit(batch)  # "sending" is on disk before the call leaves
                # another worker's commit may have carried it, before this call's turn came:
                # the moment it leaves goes to disk with the next commit
                journal.stage_leaving(registrant, clock.low)
            elif journal is not None:
                journal.commit(journal.stage_leaving(registrant, clock.low))
            self._sent_since_read += 1
            try:
                return await self.client.create_registrant(registrant, resend=self.resend)
            except (RateLimited, ConnectFailed):
                # refused, or never sent: this attempt registered nobody, and the journal says
                # so before the wait for the next one (a run that ends meanwhile leaves "todo")
                if journal is not None:
                    journal.commit(journal.stage_unsent(registrant))
                raise

        return create

    def _refused(self, registrant: Registrant, error: RequestRejected) -> Result:
        return _failed(registrant, f"GoTo refused this row: {error}")

    def _gave_up(self, registrant: Registrant, note: str) -> Result:
        return _failed(registrant, note, retryable=True)

    def _answered(self, registrant: Registrant, got: Registration) -> Result | None:
        """What GoTo's answer to a create proves; None when only the list can tell."""
        key = registrant.email_key
        if self._taken(key, got.registrant_key, got.join_url):
            # another row's key or join URL: an answer meant for another call (a stray answer
            # on a kept-alive connection, a proxy that mixed them up), so no answer for this one
            self.strays += 1
            self._park_unknown(registrant, "the answer belonged to another registrant")
            return None
        approval = got.approval
        if got.status is Status.ALREADY_REGISTERED and key in self._maybe_ours:
            # "already registered" after a call of this run went unanswered: whether that call
            # registered the person, only the list can prove
            self._park_unknown(registrant, "already registered after an unanswered call")
            return None
        if got.status is Status.ALREADY_REGISTERED and (
            got.registrant_key is None or approval is None
        ):
            # a 409 that does not say as whom, or whether the organizer declined the person:
            # the registrant list says both (one read for all such rows)
            known = self.directory.known.get(key)
            if known is None:
                self._parked[key] = Parked(registrant, CONFLICT)
                return None
            got = got.with_keys(known.registrant_key, known.join_url)
            approval = known.status
        elif approval is None and self.manual_approval:
            approval = "WAITING"
        if got.join_url is None and got.registrant_key is not None:
            # registered, but the answer did not carry the join URL: the list has it; the key
            # is proof that the registration is this tool's, should the run end first
            self._maybe_ours.add(key)
            self._parked[key] = Parked(registrant, CREATED, key=got.registrant_key)
            if self.journal is not None:
                self.journal.stage_key_seen(registrant, got.registrant_key)
            return None
        assert got.registrant_key is not None
        return Result.settled(
            registrant.line, got.status, got.registrant_key, got.join_url, approval
        )

    def _park_unknown(self, registrant: Registrant, why: str) -> None:
        """Set a row aside for the registrant list: its create may or may not have gone
        through, so it may be this tool's registration."""
        self._maybe_ours.add(registrant.email_key)
        super()._park_unknown(registrant, why)

    def _taken(self, email: str, registrant_key: str | None, join_url: str | None) -> bool:
        """Whether another person (of any webinar) of the run or of the journal holds this key
        or join URL."""
        webinar = self.client.webinar_key
        if not self._owners_read:
            self._owners_read = True
            entries = self.journal.entries() if self.journal is not None else {}
            for entry in entries.values():
                for value in (entry.registrant_key, entry.join_url):
                    if value:
                        self._owners[value] = (webinar, entry.email_key)
        me = (webinar, email)
        return any(
            value is not None and self._owners.get(value, me) != me
            for value in (registrant_key, join_url)
        )

    async def _listing(self) -> dict[str, ListedRegistrant]:
        """The registrant list by e-mail key, read for about as many people as were sent."""
        self._sent_since_read = 0
        return await self.directory.read(max(self.directory.expected, len(self._sent_at)))

    def _proven(self, row: Parked[Registrant], found: ListedRegistrant | None) -> Result | None:
        """A parked row as the list shows it: registered (by this tool only when proven), or
        for a row GoTo answered, what the answer said; None when the create did not arrive."""
        registrant = row.item
        key = registrant.email_key
        if found is not None:
            status = Status.ALREADY_REGISTERED
            if key in self._maybe_ours:
                sent_at = self._sent_at.get(key)
                proof = provenance.verdict(
                    found,
                    sent_at,
                    self.client.clock,
                    key_seen=row.key,
                    names=provenance.names_of(registrant.first_name, registrant.last_name),
                )
                status = Status.REGISTERED if proof.ours else Status.ALREADY_REGISTERED
            result = Result.settled(
                registrant.line, status, found.registrant_key, found.join_url, found.status
            )
            if result.join_url is None and result.status is not Status.DENIED:
                result = replace(result, error=NO_JOIN_URL)
            return result
        if row.kind == CREATED:
            assert row.key is not None
            return Result(registrant.line, Status.REGISTERED, row.key, None, NO_JOIN_URL)
        if row.kind == CONFLICT:
            return _failed(
                registrant,
                "GoTo says this e-mail is already registered, but it is not in the "
                "webinar's registrant list; check it in GoTo Webinar",
            )
        return None

    async def verify(
        self, registrants: Iterable[Registrant], results: Mapping[int, Result], expected: int = 0
    ) -> dict[int, Result]:
        """Check every row settled as registered (by this run or an earlier one) against one
        read of the registrant list: its key, join URL and approval must be GoTo's for that
        e-mail. Where they are not, GoTo's list wins: the journal is corrected and the row's
        note says so. Returns the corrected rows by line.

        The list read after the last create is used when there was one; a person the list
        does not show is looked for once more after a pause (a list that lags behind).
        ``expected`` is about how many people the list holds, when known. A list that cannot
        be read whole raises why (a :class:`RunStopped`), without stopping the run.
        """
        rows = [
            (registrant, result)
            for registrant in registrants
            if (result := results.get(registrant.line)) is not None and result.registered
        ]
        if not rows:
            return {}
        self._commit()
        expected = max(expected, len(rows))
        fresh = self.directory.reads and not self._sent_since_read
        read = functools.partial(self.directory.read, expected, optional=True)
        listed = self.directory.known if fresh else await read()
        if any(registrant.email_key not in listed for registrant, _ in rows):
            await self.session.pause(self.settle_delay)
            listed = await read()
        corrected: dict[int, Result] = {}
        held = {entry.registrant_key for entry in listed.values()}
        for registrant, result in rows:
            # only this run's own call can make a registration under another key its own: one
            # an earlier run settled, found under another key, was cancelled and made again
            sent_at = self._sent_at.get(registrant.email_key)
            found = listed.get(registrant.email_key)
            checked = _checked(result, found, sent_at, self.client.clock, held)
            if checked != result:
                corrected[registrant.line] = checked
                if self.journal is not None:
                    self.journal.stage_settled(registrant, checked)
        self._commit()
        return corrected

    def _settle(self, registrant: Registrant, result: Result, on_result: OnResult) -> None:
        """Stage the row's outcome in the journal (committed with the next call, or at the
        end) and note whose key and join URL these are."""
        if self.journal is not None:
            self.journal.stage_settled(registrant, result)
        for value in (result.registrant_key, result.join_url):
            if value:
                self._owners[value] = (self.client.webinar_key, registrant.email_key)
        on_result(registrant, result)


NO_JOIN_URL = "GoTo gave no join URL for this person; find it in GoTo Webinar"


def _checked(
    result: Result,
    found: ListedRegistrant | None,
    sent_at: float | None,
    clock: provenance.ServerClock,
    held: Collection[str],
) -> Result:
    """A registered row as GoTo's registrant list shows it; ``sent_at`` is when this run's
    create for the person left (None: the row was settled by an earlier run), ``held`` every
    registrant key the list holds."""
    if found is None:
        return replace(result, error=NOT_LISTED if sent_at is not None else NO_LONGER)
    ours = result.by_us
    if found.registrant_key != result.registrant_key:
        # the answer's key is another person's: it was no answer to this call, and whether the
        # call registered the person is for the date to prove; a key nobody holds was this
        # person's, and the registration now listed was made since by someone else
        stray = sent_at is not None and result.registrant_key in held
        if ours:
            ours = stray and provenance.verdict(found, sent_at, clock).ours
        status = Status.REGISTERED if ours else Status.ALREADY_REGISTERED
        fixed = Result.settled(
            result.line, status, found.registrant_key, found.join_url, found.status
        )
        said = CORRECTED if stray else UNHELD if sent_at is not None else REPLACED
        note = said.format(key=result.registrant_key)
        return replace(fixed, error=f"{note}; {fixed.error}" if fixed.error else note)
    # the same registration: the join URL and the approval as GoTo's list has them
    url = found.join_url or result.join_url
    approval = found.status or result.approval
    same = url == result.join_url and result.error not in UNLISTED
    if same and (approval or "APPROVED") == (result.approval or "APPROVED"):
        return result
    status = Status.REGISTERED if ours else Status.ALREADY_REGISTERED
    fixed = Result.settled(result.line, status, result.registrant_key or "", url, approval)
    keep = result.error if result.status in (Status.REGISTERED, Status.ALREADY_REGISTERED) else None
    if keep and keep != NO_JOIN_URL and keep not in UNLISTED and fixed.status is result.status:
        fixed = replace(fixed, error=keep)
    return fixed


def _failed(registrant: Registrant, error: str, *, retryable: bool = False) -> Result:
    return Result(registrant.line, Status.FAILED, error=error, retryable=retryable)
