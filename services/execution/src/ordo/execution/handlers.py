"""Approved orders → venue → execution reports; cancels; resting paper orders; venue health.

Creating an order is the one side effect that cannot be rolled back, so it always goes: record
the attempt (PENDING) and commit it; call the venue once; record the outcome, its reports and the
paper books in one transaction. An attempt found PENDING (a crash, or a failure before the venue
answered) is resolved by looking the order up by its client order id before anything else, and
created only if the venue does not hold it. An attempt found UNKNOWN (the create timed out) is
only ever looked up: the venue may have taken it without showing it yet.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime

from structlog.contextvars import bound_contextvars

from ordo.contracts.enums import BreakerState
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.execution import (
    ExecutionReport,
    RequestVenueSnapshot,
    VenueOpenOrder,
    VenueSnapshot,
    VenueStatusChanged,
)
from ordo.contracts.orders import CancelOrder, OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.execution import store
from ordo.execution.books import PaperBooks
from ordo.execution.domain.reports import ReportDraft, rejection, reports_due, withdrawal
from ordo.execution.errors import (
    AuthenticationFailed,
    BusinessVenueError,
    OrderNotFound,
    TransientVenueError,
    UnknownVenue,
    VenueTimeout,
)
from ordo.execution.gateway import VenueGateway, parse_breaker_name
from ordo.execution.store import ConcurrentUpdate, Submission, SubmissionStatus
from ordo.execution.venues.base import VenueOrder
from ordo.execution.venues.paper import VENUE_NAME as PAPER_VENUE
from ordo.execution.venues.paper import PaperVenue
from ordo.kit.breaker import CircuitOpenError
from ordo.kit.logs import get_logger
from ordo.kit.messaging import PoisonMessage
from ordo.kit.outbox import Outbox, Transaction

PRODUCER = "execution"
log = get_logger(__name__)

Clock = Callable[[], datetime]

_BREAKER_REASONS = {
    BreakerState.OPEN: "the venue keeps failing: calls are refused until it recovers",
    BreakerState.HALF_OPEN: "trying the venue again after a pause",
    BreakerState.CLOSED: "the venue answers normally again",
}


class OutcomeUnknown(Exception):
    """Whether the venue holds the order is not known yet: retry the message later."""


class Execution:
    """The execution service's handlers, responder and periodic job."""

    def __init__(
        self, gateway: VenueGateway, outbox: Outbox, books: PaperBooks, clock: Clock
    ) -> None:
        self._gateway = gateway
        self._outbox = outbox
        self._books = books
        self._clock = clock
        # Publishes of breaker changes in flight; kept so that they are not garbage collected.
        self._status_tasks: set[asyncio.Task[None]] = set()

    # -- risk.approved.v1 ----------------------------------------------------------------------

    async def on_approved(self, approved: OrderApproved, tx: Transaction) -> None:
        for spec in approved.orders:
            with bound_contextvars(order_id=spec.order_id, account=spec.account, venue=spec.venue):
                await self._place(approved, spec, tx)

    async def _place(self, approved: OrderApproved, spec: OrderSpec, tx: Transaction) -> None:
        submission = await store.get_submission(tx.session, spec.order_id)
        if submission is None:
            submission = await store.insert_submission(
                tx.session, approved, spec, SubmissionStatus.PENDING, attempts=1
            )
        elif submission.status.is_settled:
            # Its reports are in the outbox already: a repeat approval changes nothing.
            log.info(
                "order already handled; the venue is not called again", status=submission.status
            )
            return
        else:
            # An earlier attempt may have created the order before it crashed or timed out.
            order = await self._look_up(submission)
            if order is not None:
                await self._report(tx, submission, order, cause=approved)
                await self._save_books(tx, submission)
                return
            if submission.status is SubmissionStatus.UNKNOWN:
                # The venue took a create that timed out, or not: "not found" right after it may
                # only mean the venue does not show the order yet. Creating it again could place
                # it twice, so only a lookup resolves it (or the reconciler, via an operator).
                raise OutcomeUnknown(
                    f"creating order {submission.order_id} timed out and the venue does not "
                    f"show it (yet); it is looked up again, never created a second time"
                )
            submission = await store.update_submission(
                tx.session, submission, attempts=submission.attempts + 1
            )
        # The attempt is on record before the venue hears of the order.
        await self._outbox.checkpoint(tx)
        # Read after our commit: a cancel committed before it is seen here, and one committed
        # after it sees our row (on_cancel checks in the same order), so none slips through.
        if (reason := await store.cancel_reason(tx.session, spec.order_id)) is not None:
            await self._withdraw(approved, submission, reason, tx)
            return
        await self._create(approved, spec, submission, tx)
        await self._save_books(tx, submission)

    async def _create(
        self, approved: OrderApproved, spec: OrderSpec, submission: Submission, tx: Transaction
    ) -> None:
        try:
            order = await self._gateway.create_order(spec)
        except AuthenticationFailed as exc:
            log.error("the venue refused our credentials; the order is rejected", error=str(exc))
            await self._reject(approved, submission, str(exc), tx)
        except BusinessVenueError as exc:
            log.info("the venue rejected the order", reason=str(exc))
            await self._reject(approved, submission, str(exc), tx)
        except VenueTimeout as exc:
            await self._resolve_timeout(approved, submission, exc, tx)
        except (TransientVenueError, CircuitOpenError) as exc:
            # Most likely the venue never took the order (the paper venue fails before acting);
            # either way the retry of the message looks the order up before creating it.
            log.warning("the venue could not take the order; retrying later", error=str(exc))
            raise
        else:
            await self._report(tx, submission, order, cause=approved)

    async def _resolve_timeout(
        self, approved: OrderApproved, submission: Submission, exc: VenueTimeout, tx: Transaction
    ) -> None:
        """The create timed out: the venue may hold the order. Look it up, never create again."""
        log.warning("order creation timed out; looking the order up", error=str(exc))
        submission = await store.update_submission(
            tx.session, submission, status=SubmissionStatus.UNKNOWN, last_error=str(exc)
        )
        await self._outbox.checkpoint(tx)
        order = await self._look_up(submission)
        if order is None:
            raise OutcomeUnknown(
                f"creating order {submission.order_id} timed out and the venue does not know "
                f"it (yet); the retry looks it up again, and never creates it a second time"
            )
        await self._report(tx, submission, order, cause=approved)

    async def _look_up(self, submission: Submission) -> VenueOrder | None:
        """The order as the venue holds it, or None if the venue never received it."""
        try:
            return await self._gateway.fetch_order(
                submission.venue, submission.account, submission.order_id, submission.symbol
            )
        except OrderNotFound:
            return None

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
            elif submission.status in (SubmissionStatus.PENDING, SubmissionStatus.UNKNOWN):
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
            raise PoisonMessage(f"the cancel of {cancel.order_id} was not done: {exc}") from exc
        # CANCELED, or the fill that raced the cancel and the status it left.
        await self._report(tx, submission, order, cause=cancel)
        await self._save_books(tx, submission)

    # -- exec.snapshot.v1 ----------------------------------------------------------------------

    async def snapshot(self, request: RequestVenueSnapshot) -> VenueSnapshot:
        """What the venue holds for the account, as it says (the reconciler compares it)."""
        # Reading the paper venue may fill resting orders; the match job reports and saves them.
        holdings = await self._gateway.holdings(request.venue, request.account)
        return VenueSnapshot.caused_by(
            request,
            producer=PRODUCER,
            account=request.account,
            venue=request.venue,
            taken_at=self._clock(),
            positions=tuple(holdings.positions),
            open_orders=tuple(_open_order(order) for order in holdings.open_orders),
            balances=tuple(holdings.balances),
        )

    # -- periodic: resting paper orders --------------------------------------------------------

    async def match(self) -> None:
        """Fill resting paper orders the price has reached, and report what changed."""
        now = self._clock()
        for venue, account, adapter in self._gateway.active():
            if not isinstance(adapter, PaperVenue):
                continue
            with bound_contextvars(venue=venue, account=account):
                try:
                    await self._match_account(venue, account, adapter, now)
                except Exception:
                    # One account's trouble (a concurrent write, a store hiccup) must not
                    # starve the others; the next round tries again.
                    log.exception("matching resting orders failed; trying again next round")

    async def _match_account(
        self, venue: str, account: str, adapter: PaperVenue, now: datetime
    ) -> None:
        matched = adapter.match(now)
        async with self._outbox.transaction() as tx:
            reported = False
            # Every call to the venue matches too, so fills are found by looking at the open
            # orders rather than taken from match() alone.
            for submission in await store.unsettled_or_open(tx.session, venue, account):
                reported |= await self._refresh(tx, submission)
            if matched or reported:
                await self._books.save(tx.session, account, adapter)

    async def _refresh(self, tx: Transaction, submission: Submission) -> bool:
        try:
            order = await self._gateway.fetch_order(
                submission.venue, submission.account, submission.order_id, submission.symbol
            )
        except OrderNotFound:
            if submission.status is SubmissionStatus.SUBMITTED:
                log.warning("the venue no longer knows an open order", order_id=submission.order_id)
            return False
        except (TransientVenueError, CircuitOpenError) as exc:
            log.warning("could not look the order up; trying next round", error=str(exc))
            return False
        return await self._report(tx, submission, order, cause=None)

    # -- breaker changes → exec.venue.v1 ------------------------------------------------------

    def on_breaker_change(self, name: str, state: BreakerState) -> None:
        """Breakers call listeners synchronously: the publish runs as a task of its own."""
        parsed = parse_breaker_name(name, self._gateway.venue_names())
        if parsed is None:
            return
        venue, account = parsed
        task = asyncio.get_running_loop().create_task(
            self._publish_venue_status(venue, account, state)
        )
        self._status_tasks.add(task)
        task.add_done_callback(self._status_tasks.discard)

    async def _publish_venue_status(self, venue: str, account: str, state: BreakerState) -> None:
        try:
            async with self._outbox.transaction() as tx:
                tx.publish(
                    VenueStatusChanged(
                        correlation_id=new_message_id(),
                        producer=PRODUCER,
                        venue=venue,
                        account=account,
                        breaker=state,
                        reason=_BREAKER_REASONS[state],
                    )
                )
        except Exception:
            # If the row was committed, the outbox sweeper publishes it later.
            log.exception("publishing a venue status change failed", venue=venue, state=state)

    async def drain(self) -> None:
        """Wait for venue status publishes still in flight (at shutdown)."""
        if self._status_tasks:
            await asyncio.gather(*self._status_tasks, return_exceptions=True)

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


def _open_order(order: VenueOrder) -> VenueOpenOrder:
    return VenueOpenOrder(
        order_id=order.order_id,
        venue_order_id=order.venue_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
    )
