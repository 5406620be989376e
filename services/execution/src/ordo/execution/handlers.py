"""Approved orders → venue → execution reports; cancels; following orders; snapshots.

Creating an order is the one side effect that cannot be rolled back, so it always goes: record
the attempt (PENDING) with a lease on it and commit; call the venue once; record the outcome,
its reports and the paper books in one transaction, and let the lease go. Whoever meets an
attempt that holds its lease (another replica given the same approval) waits for it rather
than create the order too. An attempt found PENDING and free (a crash, or a failure before the
venue acted) is resolved by looking the order up by its client order id before anything else,
and created only if the venue does not hold it. An attempt found UNKNOWN (the create failed in
a way that may have placed it) is only ever looked up: the venue may hold it without showing it
yet. One found HELD (the venue refused the create as a duplicate: it holds the order) is only
ever looked up, and never rejected, whatever a lookup says.

A create the breaker refuses is rejected at once (it was not sent): a market order is not held
back to go out late. Refused credentials halt new orders to the venue account (see ``health``).
A refusal the venue does not explain (an error code ccxt does not know) is rejected only once a
lookup shows that the venue does not hold the order.

An approval is never left to the dead-letter stream while its order could be settled: on its last
delivery attempt (``tx.last_attempt``) a failure to place the order, or to resolve an unknown
outcome, ends in a lookup (tried until the lease's time is up): the venue holds the order, and
what it says is reported; it does not, and the order is rejected. A create that fails with an
unknown outcome on that attempt is looked up until the lease's time is up even while the venue
says "not found": a venue may still be taking the order, or show it late. Only an order that
cannot even be looked up is left to the dead letter, and to the follow-up job, which gives it up
once the venue says it does not hold it.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from structlog.contextvars import bound_contextvars

from ordo.contracts.envelope import Message
from ordo.contracts.execution import (
    ExecutionReport,
    RequestVenueSnapshot,
    VenueFillRecord,
    VenueOpenOrder,
    VenueSnapshot,
)
from ordo.contracts.orders import CancelOrder, OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.execution import store
from ordo.execution.books import PaperBooks
from ordo.execution.domain.reports import ReportDraft, rejection, reports_due, withdrawal
from ordo.execution.errors import (
    AuthenticationFailed,
    BusinessVenueError,
    DuplicateOrder,
    OrderNotFound,
    TransientVenueError,
    UnexplainedRefusal,
    UnknownOutcome,
    UnknownVenue,
)
from ordo.execution.gateway import VenueGateway
from ordo.execution.health import VenueHealth
from ordo.execution.store import ConcurrentUpdate, Submission, SubmissionStatus
from ordo.execution.venues.base import FollowedVenue, Venue, VenueFill, VenueOrder
from ordo.execution.venues.paper import VENUE_NAME as PAPER_VENUE
from ordo.execution.venues.paper import PaperVenue
from ordo.kit.breaker import CircuitOpenError
from ordo.kit.logs import get_logger
from ordo.kit.messaging import PoisonMessage
from ordo.kit.outbox import Outbox, Transaction
from ordo.kit.store import Database

PRODUCER = "execution"
log = get_logger(__name__)

Clock = Callable[[], datetime]
_CLAIM_POLL_SECONDS = 0.1
# How often the last attempt tries again a lookup the venue or the open breaker turned away.
_LOOKUP_RETRY_SECONDS = 0.5


class OutcomeUnknown(Exception):
    """Whether the venue holds the order is not known yet: retry the message later."""


class Execution:
    """The execution service's handlers, responder and periodic jobs."""

    def __init__(
        self,
        gateway: VenueGateway,
        outbox: Outbox,
        books: PaperBooks,
        health: VenueHealth,
        db: Database,
        clock: Clock,
        *,
        create_lease: timedelta,
        snapshot_fills: timedelta,
        give_up_pending: timedelta,
    ) -> None:
        self._gateway = gateway
        self._outbox = outbox
        self._books = books
        self._health = health
        self._db = db
        self._clock = clock
        self._lease = create_lease
        self._snapshot_fills = snapshot_fills
        self._give_up_pending = give_up_pending
        # When each venue account was last polled (event loop time); one entry per account.
        self._polled: dict[tuple[str, str], float] = {}

    # -- risk.approved.v1 ----------------------------------------------------------------------

    async def on_approved(self, approved: OrderApproved, tx: Transaction) -> None:
        for spec in approved.orders:
            with bound_contextvars(order_id=spec.order_id, account=spec.account, venue=spec.venue):
                await self._place(approved, spec, tx, self._patience(tx))

    def _patience(self, tx: Transaction) -> float | None:
        """Until when (event loop time) an order of the approval's last attempt is looked up.

        A lease's time from the start of the order's placing: one order stays under the NATS ack
        wait. Each order has its own, so an order that took long does not cut the next one's
        lookups short (an approval of several orders may outlast the ack wait on its last
        attempt: a dead letter of a settled approval beats a rejection of a placed order).
        """
        if not tx.last_attempt:
            return None
        return asyncio.get_running_loop().time() + self._lease.total_seconds()

    async def _place(
        self, approved: OrderApproved, spec: OrderSpec, tx: Transaction, patience: float | None
    ) -> None:
        submission = await store.get_submission(tx.session, spec.order_id)
        if submission is None:
            submission = await store.insert_submission(
                tx.session,
                approved,
                spec,
                SubmissionStatus.PENDING,
                attempts=1,
                claimed_until=self._lease_end(),
            )
        elif submission.status.is_settled:
            # Its reports are in the outbox already: a repeat approval changes nothing.
            log.info(
                "order already handled; the venue is not called again", status=submission.status
            )
            return
        elif submission.claimed_at(self._clock()):
            await self._wait_for_claim(submission)
        else:
            # An earlier attempt may have created the order before it crashed or timed out.
            order = await self._look_up(submission, patience)
            if order is not None:
                await self._report(tx, submission, order, cause=approved)
                await self._save_books(tx, submission)
                return
            if submission.status is SubmissionStatus.UNKNOWN and patience is not None:
                await self._reject(approved, submission, _not_held(submission), tx)
                return
            if submission.status in (SubmissionStatus.UNKNOWN, SubmissionStatus.HELD):
                # The venue took a create that timed out, or not: "not found" right after it may
                # only mean the venue does not show the order yet. Creating it again could place
                # it twice, so only a lookup resolves it (or the reconciler, via an operator).
                raise OutcomeUnknown(
                    f"creating order {submission.order_id} timed out and the venue does not "
                    f"show it (yet); it is looked up again, never created a second time"
                )
            # Taking the lease bumps the version: of two replicas here, one goes on.
            submission = await store.update_submission(
                tx.session,
                submission,
                attempts=submission.attempts + 1,
                claimed_until=self._lease_end(),
            )
        # The attempt and its lease are on record before the venue hears of the order.
        await self._outbox.checkpoint(tx)
        # Read after our commit: a cancel committed before it is seen here, and one committed
        # after it sees our row (on_cancel checks in the same order), so none slips through.
        if (reason := await store.cancel_reason(tx.session, spec.order_id)) is not None:
            await self._withdraw(approved, submission, reason, tx)
            return
        if (halt := self._health.halted(spec.venue, spec.account)) is not None:
            log.warning("the venue is halted for the account; the order is rejected", halt=halt)
            await self._reject(approved, submission, f"not sent: venue halted ({halt})", tx)
            return
        await self._create(approved, spec, submission, tx, patience)
        await self._save_books(tx, submission)

    def _lease_end(self) -> datetime:
        return self._clock() + self._lease

    async def _wait_for_claim(self, submission: Submission) -> None:
        """Another attempt is creating the order: wait until it is done, then look again."""
        log.info("the order is being created by another attempt; waiting for it")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lease.total_seconds()
        while loop.time() < deadline:
            claimed_until = await store.claim_of(self._db, submission.order_id)
            if claimed_until is None or claimed_until <= self._clock():
                break
            await asyncio.sleep(_CLAIM_POLL_SECONDS)
        # Handled again on fresh data: settled by then, or free to be looked up and resolved.
        raise ConcurrentUpdate(f"order {submission.order_id} was being created by another attempt")

    async def _create(
        self,
        approved: OrderApproved,
        spec: OrderSpec,
        submission: Submission,
        tx: Transaction,
        patience: float | None,
    ) -> None:
        try:
            order = await self._gateway.create_order(spec)
        except AuthenticationFailed as exc:
            log.error("the venue refused our credentials; the order is rejected", error=str(exc))
            await self._health.halt(spec.venue, spec.account, exc)
            await self._reject(approved, submission, str(exc), tx)
        except DuplicateOrder as exc:
            await self._resolve_unknown(approved, submission, exc, tx, patience)
        except UnexplainedRefusal as exc:
            await self._confirm_refusal(approved, submission, exc, tx, patience)
        except BusinessVenueError as exc:
            log.info("the venue rejected the order", reason=str(exc))
            await self._reject(approved, submission, str(exc), tx)
        except CircuitOpenError as exc:
            # Not sent: the venue keeps failing. An answer now beats a market order going out
            # seconds later at another price; the OMS may propose it again.
            log.warning("the venue's breaker is open; the order is rejected", error=str(exc))
            await self._reject(approved, submission, f"not sent: {exc}", tx)
        except UnknownOutcome as exc:
            await self._resolve_unknown(approved, submission, exc, tx, patience)
        except TransientVenueError as exc:
            # The venue turned the request away before acting on it (rate limit, clock): free
            # the order for the retry of the message, which looks it up before creating it.
            log.warning("the venue could not take the order; retrying later", error=str(exc))
            submission = await store.update_submission(
                tx.session, submission, last_error=str(exc), claimed_until=None
            )
            await self._outbox.checkpoint(tx)
            if patience is None:
                raise
            await self._settle(approved, submission, exc, tx, patience)
        else:
            await self._report(tx, submission, order, cause=approved)

    async def _confirm_refusal(
        self,
        approved: OrderApproved,
        submission: Submission,
        refusal: UnexplainedRefusal,
        tx: Transaction,
        patience: float | None,
    ) -> None:
        """The venue said no without saying why: reject the order only if it does not hold it.

        The venue answered, so "not found" is believed at once; a lookup that fails leaves the
        outcome unknown (looked up again, never created again).
        """
        log.warning("the venue refused the order unexplained; looking it up", error=str(refusal))
        try:
            order = await self._look_up(submission, patience)
        except (TransientVenueError, CircuitOpenError):
            await self._resolve_unknown(approved, submission, refusal, tx, patience)
            return
        if order is None:
            await self._reject(approved, submission, str(refusal), tx)
        else:
            await self._report(tx, submission, order, cause=approved)

    async def _resolve_unknown(
        self,
        approved: OrderApproved,
        submission: Submission,
        exc: UnknownOutcome | DuplicateOrder | UnexplainedRefusal,
        tx: Transaction,
        patience: float | None,
    ) -> None:
        """The venue may hold the order: look it up, never create it again."""
        log.warning("order creation may have placed the order; looking it up", error=str(exc))
        # A venue that says it holds the order is believed over a lookup that misses it.
        held = isinstance(exc, DuplicateOrder)
        submission = await store.update_submission(
            tx.session,
            submission,
            status=SubmissionStatus.HELD if held else SubmissionStatus.UNKNOWN,
            last_error=str(exc),
            claimed_until=None,
        )
        await self._outbox.checkpoint(tx)
        order = await self._look_up(submission, patience, just_sent=True)
        if order is None and patience is not None and not held:
            await self._reject(approved, submission, _not_held(submission), tx)
            return
        if order is None:
            raise OutcomeUnknown(
                f"creating order {submission.order_id} may have placed it and the venue does "
                f"not show it (yet); the retry looks it up again, and never creates it again"
            )
        await self._report(tx, submission, order, cause=approved)

    async def _settle(
        self,
        approved: OrderApproved,
        submission: Submission,
        failure: TransientVenueError,
        tx: Transaction,
        patience: float,
    ) -> None:
        """The approval's last attempt failed to place the order: settle it rather than leave it
        to a dead letter (and the OMS waiting). The venue holds it: report what the venue says;
        it provably does not: reject it. If it cannot even be looked up, ``failure`` goes to the
        dead letter and the follow-up job gives the order up later (``_never_placed``)."""
        log.warning("the approval's last attempt failed; settling the order", error=str(failure))
        try:
            order = await self._look_up(submission, patience)
        except (TransientVenueError, CircuitOpenError) as exc:
            log.error("the order could not be looked up; left to the follow-up", error=str(exc))
            raise failure from exc
        if order is None:
            await self._reject(approved, submission, _not_held(submission), tx)
        else:
            await self._report(tx, submission, order, cause=approved)

    async def _look_up(
        self, submission: Submission, patience: float | None, *, just_sent: bool = False
    ) -> VenueOrder | None:
        """The order as the venue holds it, or None if the venue never received it.

        ``patience`` (the approval's last attempt): until then (event loop time), a lookup the
        venue or its breaker turns away is tried again; then its error is raised. ``just_sent``:
        a create that may have placed the order has just failed, and a venue may still be
        taking it, or show it late: "not found" is only believed once the patience is spent.
        """
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await self._gateway.fetch_order(
                    submission.venue, submission.account, submission.order_id, submission.symbol
                )
            except OrderNotFound:
                if not just_sent or patience is None or loop.time() >= patience:
                    return None
            except (TransientVenueError, CircuitOpenError):
                if patience is None or loop.time() >= patience:
                    raise
            await asyncio.sleep(_LOOKUP_RETRY_SECONDS)

    async def _reject(
        self, approved: OrderApproved, submission: Submission, reason: str, tx: Transaction
    ) -> None:
        draft = rejection(reason)
        submission = await store.update_submission(
            tx.session,
            submission,
            status=SubmissionStatus.REJECTED,
            venue_status=draft.status,
            last_error=reason,
            claimed_until=None,
        )
        tx.publish(self._execution_report(submission, draft, cause=approved))

    async def _withdraw(
        self, approved: OrderApproved, submission: Submission, reason: str, tx: Transaction
    ) -> None:
        log.info("the order was canceled before it was placed; it is not sent", reason=reason)
        draft = withdrawal(f"canceled before it was placed: {reason}")
        submission = await store.update_submission(
            tx.session,
            submission,
            status=SubmissionStatus.WITHDRAWN,
            venue_status=draft.status,
            attempts=submission.attempts - 1,
            claimed_until=None,
        )
        # WITHDRAWN settles the order for good, so its request has done its work.
        await store.remove_cancel_request(tx.session, submission.order_id)
        tx.publish(self._execution_report(submission, draft, cause=approved))

    # -- order.cancel.v1 -----------------------------------------------------------------------

    async def on_cancel(self, cancel: CancelOrder, tx: Transaction) -> None:
        with bound_contextvars(
            order_id=cancel.order_id, account=cancel.account, venue=cancel.venue
        ):
            submission = await store.get_submission(tx.session, cancel.order_id)
            if submission is None:
                await self._cancel_before_placement(cancel, tx)
            elif submission.status in (
                SubmissionStatus.PENDING,
                SubmissionStatus.UNKNOWN,
                SubmissionStatus.HELD,
            ):
                raise OutcomeUnknown(
                    f"placing order {cancel.order_id} is still unresolved; the cancel is "
                    f"retried once it is"
                )
            elif submission.status is SubmissionStatus.SUBMITTED:
                await self._cancel_at_venue(cancel, submission, tx)
            else:
                log.info("the order never reached the venue; nothing to cancel")

    async def _cancel_before_placement(self, cancel: CancelOrder, tx: Transaction) -> None:
        """The cancel overtook the approval (another stream): the order must never be placed."""
        await store.add_cancel_request(tx.session, cancel)
        await self._outbox.checkpoint(tx)
        # The mirror of _place: if the approval recorded the order meanwhile, it may not have
        # seen our request; handle the cancel again, against the order this time.
        if await store.get_submission(tx.session, cancel.order_id) is not None:
            raise ConcurrentUpdate(f"order {cancel.order_id} was recorded while canceled")
        log.info("cancel recorded before its order was placed; the order will not be placed")

    async def _cancel_at_venue(
        self, cancel: CancelOrder, submission: Submission, tx: Transaction
    ) -> None:
        try:
            order = await self._gateway.cancel_order(
                submission.venue, submission.account, submission.order_id, submission.symbol
            )
        except OrderNotFound:
            # Nothing is published: a report states the order's status at the venue, and "not
            # found" is none. REJECTED would tell the OMS the order was refused, when it may
            # have filled and since been forgotten by the venue. The OMS keeps it pending
            # cancel, and the reconciler flags it (ORDER_UNKNOWN_AT_VENUE) for a person.
            log.warning("the venue does not know the order it was asked to cancel")
            return
        except BusinessVenueError as exc:
            log.error("the venue refused the cancel", error=str(exc))
            return
        except AuthenticationFailed as exc:
            # Not the venue's answer about the order: our credentials are refused. Acknowledging
            # would drop the cancel and leave the order working at the venue, and no retry helps
            # before an operator fixes the credentials: dead-letter it (an alert) for a replay.
            await self._health.halt(submission.venue, submission.account, exc)
            raise PoisonMessage(f"the cancel of {cancel.order_id} was not done: {exc}") from exc
        # CANCELED, or the fill that raced the cancel and the status it left.
        await self._report(tx, submission, order, cause=cancel)
        await self._save_books(tx, submission)

    # -- exec.snapshot.v1 ----------------------------------------------------------------------

    async def snapshot(self, request: RequestVenueSnapshot) -> VenueSnapshot:
        """What the venue holds for the account, as it says (the reconciler compares it)."""
        now = self._clock()
        since = request.fills_since or now - self._snapshot_fills
        # Reading the paper venue may fill resting orders; the follow-up job reports them.
        holdings = await self._gateway.holdings(request.venue, request.account, since)
        # Many venues list a trade with their own order id only: name the order by ours.
        async with self._db.session() as session:
            ours = await store.client_order_ids(
                session,
                request.venue,
                request.account,
                (fill.venue_order_id for fill in holdings.recent_fills if fill.order_id is None),
            )
        return VenueSnapshot.caused_by(
            request,
            producer=PRODUCER,
            account=request.account,
            venue=request.venue,
            taken_at=now,
            positions=tuple(holdings.positions),
            open_orders=tuple(_open_order(order) for order in holdings.open_orders),
            balances=tuple(holdings.balances),
            recent_fills=tuple(_fill_record(fill, ours) for fill in holdings.recent_fills),
        )

    # -- periodic: following orders to their end -----------------------------------------------

    async def follow_orders(self) -> None:
        """Look up the orders still open (or of unknown outcome) and report what changed.

        Paper accounts are matched and looked at every round; a venue account is polled at its
        own interval (its websocket, when it has one, brings news sooner: ``follow_pushes``).
        """
        now = self._clock()
        for venue, account, adapter in self._gateway.active():
            if self._health.halted(venue, account) is not None or not self._due(
                venue, account, adapter
            ):
                continue
            with bound_contextvars(venue=venue, account=account):
                try:
                    await self._follow_account(venue, account, adapter, now)
                except ConcurrentUpdate as exc:
                    # An approval, a cancel or a push changed an order while this round looked
                    # at it: theirs stands (nothing of this round was published), and the next
                    # round looks again, from what they recorded.
                    log.info(
                        "an order changed meanwhile; following again next round", error=str(exc)
                    )
                except Exception:
                    # One account's trouble (a concurrent write, a store hiccup) must not
                    # starve the others; the next round tries again.
                    log.exception("following orders failed; trying again next round")

    def _due(self, venue: str, account: str, adapter: Venue) -> bool:
        if not isinstance(adapter, FollowedVenue):
            return True
        now = asyncio.get_running_loop().time()
        last = self._polled.get((venue, account))
        if last is not None and now - last < adapter.poll_interval_seconds:
            return False
        self._polled[(venue, account)] = now
        return True

    async def _follow_account(
        self, venue: str, account: str, adapter: Venue, now: datetime
    ) -> None:
        matched = adapter.match(now) if isinstance(adapter, PaperVenue) else []
        async with self._outbox.transaction() as tx:
            reported = False
            # Every call to the paper venue matches too, so fills are found by looking at the
            # open orders rather than taken from match() alone.
            for submission in await store.unsettled_or_open(tx.session, venue, account):
                if not submission.claimed_at(now):  # else its creator reports it
                    reported |= await self._refresh(tx, submission, now)
            if matched or reported:
                await self._books.save(tx.session, account, adapter)

    async def follow_pushes(self, venue: str, account: str) -> None:
        """Report each order the venue's websocket says changed, as it says so (supervised).

        Each run is a new subscription (the supervisor starts another when one fails). What
        changed while there was none is looked up as it starts, and once more with the first
        push, by when the subscription is surely live: only a change during the subscription's
        handshake on an account that then stays quiet is left to the poll.
        """
        await self._catch_up(venue, account)
        updates: AsyncIterator[str] = self._gateway.order_updates(venue, account)
        caught_up = False
        async for order_id in updates:
            if not caught_up:
                await self._catch_up(venue, account)
                caught_up = True
            with bound_contextvars(venue=venue, account=account, order_id=order_id):
                try:
                    await self.refresh_order(order_id)
                except ConcurrentUpdate:
                    log.info("the pushed order changed meanwhile; polling reports what is left")
                except Exception:
                    log.exception("reporting a pushed order change failed; polling catches up")

    async def _catch_up(self, venue: str, account: str) -> None:
        """Look every followed order of the account up once, and report what is new."""
        with bound_contextvars(venue=venue, account=account):
            try:
                adapter = self._gateway.adapter(venue, account)
                await self._follow_account(venue, account, adapter, self._clock())
            except Exception:
                log.exception("catching up on the account's orders failed; polling catches up")

    async def refresh_order(self, order_id: str) -> None:
        """Look one order up and report what is new about it."""
        async with self._outbox.transaction() as tx:
            submission = await store.get_submission(tx.session, order_id)
            if submission is None or submission.claimed_at(self._clock()):
                return  # not ours, or its creator is about to report it
            if submission.status in (SubmissionStatus.REJECTED, SubmissionStatus.WITHDRAWN):
                return
            if await self._refresh(tx, submission, self._clock()):
                await self._save_books(tx, submission)

    async def _refresh(self, tx: Transaction, submission: Submission, now: datetime) -> bool:
        try:
            order = await self._gateway.fetch_order(
                submission.venue, submission.account, submission.order_id, submission.symbol
            )
        except OrderNotFound:
            if submission.status is SubmissionStatus.SUBMITTED:
                log.warning("the venue no longer knows an open order", order_id=submission.order_id)
            elif self._never_placed(submission, now):
                await self._give_up(tx, submission)
                return True
            return False
        except AuthenticationFailed as exc:
            await self._health.halt(submission.venue, submission.account, exc)
            return False
        except (TransientVenueError, CircuitOpenError, BusinessVenueError) as exc:
            log.warning("could not look the order up; trying next round", error=str(exc))
            return False
        return await self._report(tx, submission, order, cause=None)

    def _never_placed(self, submission: Submission, now: datetime) -> bool:
        """A PENDING attempt the venue does not know, left alone for longer than any retry of
        its approval takes: the venue turned every attempt away, or the approval gave up."""
        return (
            submission.status is SubmissionStatus.PENDING
            and now - submission.updated_at > self._give_up_pending
        )

    async def _give_up(self, tx: Transaction, submission: Submission) -> None:
        """Tell the OMS the order was never placed, rather than leave it waiting for good.

        Only a PENDING attempt: the venue never acted on one (an attempt that may have placed the
        order is UNKNOWN, and only ever looked up). A late retry of its approval finds it settled.
        """
        reason = f"never placed: the venue did not take it ({submission.last_error or 'no answer'})"
        log.warning("giving up an order the venue never took", order_id=submission.order_id)
        draft = rejection(reason)
        submission = await store.update_submission(
            tx.session,
            submission,
            status=SubmissionStatus.REJECTED,
            venue_status=draft.status,
            last_error=reason,
        )
        tx.publish(self._execution_report(submission, draft, cause=None))

    async def drain(self) -> None:
        """Wait for venue status publishes still in flight (at shutdown)."""
        await self._health.drain()

    # -- start-up ------------------------------------------------------------------------------

    async def restore_paper_books(self) -> None:
        """Load the saved paper books and open their venues, so resting orders keep matching."""
        for account in await self._books.load():
            self._gateway.adapter(PAPER_VENUE, account)

    # -- reporting -----------------------------------------------------------------------------

    async def _report(
        self, tx: Transaction, submission: Submission, order: VenueOrder, *, cause: Message | None
    ) -> bool:
        """Publish what is new about ``order`` and record it; False if there was nothing."""
        reported = await store.reported_fill_ids(tx.session, submission.order_id)
        drafts = reports_due(order, last_status=submission.venue_status, reported_fill_ids=reported)
        if not drafts and submission.status is SubmissionStatus.SUBMITTED:
            return False
        submission = await store.update_submission(
            tx.session,
            submission,
            status=SubmissionStatus.SUBMITTED,
            venue_order_id=order.venue_order_id,
            venue_status=order.status,
            last_error=None,
            claimed_until=None,
        )
        await store.record_reported_fills(
            tx.session,
            submission.order_id,
            [draft.fill.fill_id for draft in drafts if draft.fill is not None],
        )
        for draft in drafts:
            tx.publish(self._execution_report(submission, draft, order=order, cause=cause))
        return bool(drafts)

    def _execution_report(
        self,
        submission: Submission,
        draft: ReportDraft,
        *,
        order: VenueOrder | None = None,
        cause: Message | None,
    ) -> ExecutionReport:
        fields = {
            "order_id": submission.order_id,
            "venue_order_id": order.venue_order_id if order else None,
            "account": submission.account,
            "venue": submission.venue,
            "symbol": submission.symbol,
            "side": submission.side,
            "venue_time": order.venue_time if order else None,
            **draft.fields(),
        }
        if cause is not None:
            return ExecutionReport.caused_by(cause, producer=PRODUCER, **fields)
        # News the venue made on its own (a resting order filled) continues the flow of the
        # approval that placed the order.
        return ExecutionReport(
            correlation_id=submission.correlation_id,
            causation_id=submission.approved_message_id,
            producer=PRODUCER,
            **fields,
        )

    async def _save_books(self, tx: Transaction, submission: Submission) -> None:
        try:
            adapter = self._gateway.adapter(submission.venue, submission.account)
        except UnknownVenue:
            return
        await self._books.save(tx.session, submission.account, adapter)


def _not_held(submission: Submission) -> str:
    """Why an order is rejected on its approval's last attempt, when the venue does not hold it.

    An unknown outcome of an earlier attempt is seconds old by then (the kit's back-off spaces
    the attempts), and one of this attempt was looked up until its lease's time was up: a venue
    that took the create shows the order by its client order id by then, so "not found" means
    it never took it.
    """
    return (
        f"never placed: the venue does not hold the order after {submission.attempts} "
        f"attempt(s) to place it ({submission.last_error or 'no answer'})"
    )


def _fill_record(venue_fill: VenueFill, ours: dict[str, str]) -> VenueFillRecord:
    return VenueFillRecord(
        order_id=venue_fill.order_id or ours.get(venue_fill.venue_order_id),
        venue_order_id=venue_fill.venue_order_id,
        symbol=venue_fill.symbol,
        side=venue_fill.side,
        fill=venue_fill.fill,
    )


def _open_order(order: VenueOrder) -> VenueOpenOrder:
    return VenueOpenOrder(
        order_id=order.order_id,
        venue_order_id=order.venue_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
    )
