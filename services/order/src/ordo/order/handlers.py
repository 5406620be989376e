"""Contract messages in → the order domain → contract messages out.

Each consumer runs in the kit's unit of work (``tx``): what it saves, the inbox id of the message
and the messages it publishes commit together. A consumer raises only for what a retry can
cure (a concurrent update, an unreachable database). A message that no retry can make sense of
is logged and acknowledged, or dead-lettered at once (:class:`PoisonMessage`) when it is corrupt.
"""

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from opentelemetry import trace
from opentelemetry.trace import Span
from structlog.contextvars import bound_contextvars

from ordo.contracts.enums import SignalOutcome
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.execution import ExecutionReport
from ordo.contracts.orders import OrderProposed, OrderSpec, OrderUpdated, PositionChanged
from ordo.contracts.queries import (
    OrdersView,
    PositionsView,
    QueryOrders,
    QueryPositions,
    QueryRebalances,
    QuerySignals,
    RebalancesView,
    SignalsView,
)
from ordo.contracts.risk import OrderApproved, OrderDenied
from ordo.contracts.signals import SignalAccepted, SignalRequest
from ordo.contracts.subjects import Service
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.messaging import PoisonMessage
from ordo.kit.outbox import Transaction
from ordo.kit.store import Database
from ordo.order import store
from ordo.order.domain import (
    AppliedReport,
    InvalidTransition,
    MarketRules,
    Order,
    OrderChanged,
    OrderFilled,
    PlanningError,
    Position,
    ReportMismatch,
    plan_orders,
)
from ordo.order.domain.marks import marked, totals
from ordo.order.domain.strategy import StrategyPlan
from ordo.order.group_handlers import GroupManagement, Placement, record_outcome, trading_refusal
from ordo.order.market_handlers import OrderPlacement
from ordo.order.market_store import all_marks, find_rebalances
from ordo.order.store import Repositories

log = get_logger(__name__)
tracer = trace.get_tracer(__name__)

PRODUCER = str(Service.ORDER)
Clock = Callable[[], datetime]
MarketBook = Mapping[str, Mapping[str, MarketRules]]
"""venue → symbol → the rules orders are sized to"""
OrderFollower = Callable[[Order, Repositories, Message, Transaction, datetime], Awaitable[None]]


def _attributes(**ids: str | None) -> dict[str, str]:
    return {f"ordo.{name}": value for name, value in ids.items() if value is not None}


def _annotate(**ids: str | None) -> None:
    """Put ids on the current span: the kit's consume span of the message being handled."""
    trace.get_current_span().set_attributes(_attributes(**ids))


def _order_attributes(order: Order) -> dict[str, str]:
    return _attributes(
        signal_id=order.signal_id,
        order_id=order.order_id,
        client_order_id=order.order_id,  # the OMS order id is the client order id at the venue
        venue_order_id=order.venue_order_id,
        account=order.account,
    )


@contextmanager
def _order_step(name: str, order: Order) -> Iterator[Span]:
    """A span and log context for one step of one order."""
    with (
        tracer.start_as_current_span(name, attributes=_order_attributes(order)) as span,
        bound_contextvars(order_id=order.order_id, signal_id=order.signal_id),
    ):
        yield span


def _denial_text(denial: OrderDenied) -> str:
    # The codes lead each part: people and tests look for them in the order's reason.
    return "; ".join(f"{reason.code}: {reason.message}" for reason in denial.reasons)


def _report_detail(report: ExecutionReport, applied: AppliedReport) -> str:
    detail = f"venue reported {report.status.value}, cumulative {report.cumulative_quantity}"
    if applied.new_fill is not None:
        fill = applied.new_fill
        detail += f"; fill {fill.fill_id}: {fill.quantity} @ {fill.price}, fee {fill.fee}"
    if applied.ignored_status is not None:
        detail += f"; status {applied.ignored_status.value} ignored as stale"
    if report.reconciliation:
        detail += " (reconciliation)"
    return detail


class OrderManagement:
    """The OMS's consumers: signals become orders; risk decisions and venue reports move them."""

    def __init__(
        self,
        markets: MarketBook,
        *,
        clock: Clock = utc_now,
        strategies: Mapping[str, StrategyPlan] | None = None,
        max_open_groups: Callable[[str], int] = lambda _account: 10,
        capital: Mapping[str, Decimal] | None = None,
    ) -> None:
        self._markets = markets
        self._clock = clock
        self._followers: list[OrderFollower] = []
        # Signals of a strategy with a plan become position groups (group_handlers.py).
        self._groups = GroupManagement(
            strategies or {},
            max_open_groups=max_open_groups,
            capital=capital or {},
            settle=self._settle,
            rules_for=self._rules_for,
        )
        # Until the service wires its venues in, every venue takes every type natively.
        self._placement: Placement = OrderPlacement({}, self._settle)

    def use_placement(self, placement: Placement) -> None:
        """Place every order, a plain signal's and a group's, through ``placement``: checked
        against its venue, DAY given its session close, held where the venue lacks the type."""
        self._placement = placement
        self._groups.use_placement(placement)

    @property
    def groups(self) -> GroupManagement:
        return self._groups

    def follow_orders(self, follower: "OrderFollower") -> None:
        """Call ``follower`` after every order change is settled (rebalances follow theirs)."""
        self._followers.append(follower)

    async def settle_order(
        self,
        order: Order,
        repos: Repositories,
        cause: Message,
        tx: Transaction,
        now: datetime,
        detail: str,
    ) -> None:
        """Save an order that another consumer of this service changed (quotes, rebalances)."""
        await self._settle(order, repos, cause, tx, now, detail)

    async def settle_order_and_group(
        self,
        order: Order,
        repos: Repositories,
        cause: Message,
        tx: Transaction,
        now: datetime,
        detail: str,
    ) -> None:
        """Save an order the quotes or the clock changed, then move its group on: a held order
        that expired may have been the group's last open order."""
        await self._settle(order, repos, cause, tx, now, detail)
        await self._groups.after_order_change(
            order, filled=False, repos=repos, cause=cause, tx=tx, now=now
        )

    # --- signal.accepted.v1 -------------------------------------------------------------------

    async def on_signal_accepted(self, signal: SignalAccepted, tx: Transaction) -> None:
        request = signal.signal
        _annotate(signal_id=signal.signal_id, account=request.account)
        repos = Repositories(tx.session)
        with bound_contextvars(signal_id=signal.signal_id):
            done = await repos.signals.get(signal.signal_id)
            if done is not None:
                log.info("signal already handled; nothing to do", outcome=done.outcome.value)
                return
            now = self._clock()
            refusal = await trading_refusal(request, repos)
            if refusal is not None:
                await record_outcome(signal, SignalOutcome.REFUSED, repos, now, reason=refusal)
                log.warning("signal refused by the account's trading state", reason=refusal)
                return
            if self._groups.manages(request.strategy):
                if request.order is not None:
                    # A group's orders follow its strategy's plan; the block would be ignored.
                    reason = (
                        f"strategy {request.strategy} places its orders by its plan "
                        "(order.strategies): a signal's order block is not applied to it"
                    )
                    await self._record_unplannable(signal, reason, repos, now)
                    return
                if await self._groups.on_signal(signal, repos, tx, now):
                    return
            try:
                specs = await self._plan(signal, repos, now)
            except PlanningError as exc:
                await self._record_unplannable(signal, str(exc), repos, now)
                return
            await self._propose(signal, specs, repos, tx, now)

    async def _plan(
        self, signal: SignalAccepted, repos: Repositories, now: datetime
    ) -> list[OrderSpec]:
        request = signal.signal
        attributes = {
            **_attributes(signal_id=signal.signal_id, account=request.account),
            "ordo.intent": request.intent.value,
        }
        with tracer.start_as_current_span("oms.plan", attributes=attributes) as span:
            rules = self._rules_for(request)
            key = (request.account, request.strategy, request.venue, request.symbol)
            position = await repos.positions.get(*key)
            # Only exits on their way change a plan; loading every working entry as well made
            # each plan slower the more entries were in flight, under load a spiral.
            working = await repos.orders.working_orders_of(*key, reducing=True)
            # The order id is the client order id the venue sees, so it must never change for
            # an order nor be made twice for a signal. A fresh uuid7 is enough for that here:
            # the ids are stored in this transaction together with the inbox id of this message
            # (a redelivery is refused by the inbox) and the signal's outcome row (the same
            # signal in another message is refused by its key), so no second order can come of
            # this signal; every later step reuses the stored id.
            planned = plan_orders(
                signal,
                position,
                rules,
                new_order_id=new_message_id,
                working=working,
                equity=await self._groups.equity(request.account, repos),
            )
            # An impossible order, or DAY at a venue without a session close, is refused like
            # any other plan (InvalidOrderSpec is a PlanningError); DAY gets its expiry here.
            specs = self._placement.prepare(planned, now)
            if position is not None and not position.is_flat:
                # The orders are sized to this version of the open position and its working
                # exits: a concurrent plan or fill on it must not size a second close (or
                # reverse) from the same.
                await repos.positions.claim(position)
            order_ids = [spec.order_id for spec in specs]
            ids: str | list[str] = order_ids[0] if len(order_ids) == 1 else order_ids
            span.set_attributes({"ordo.order_id": ids, "ordo.client_order_id": ids})
            return specs

    def _rules_for(self, request: SignalRequest) -> MarketRules:
        rules = (self._markets.get(request.venue) or {}).get(request.symbol)
        if rules is None:
            raise PlanningError(
                f"no market rules for {request.symbol} at {request.venue}: add them to the "
                f"order service's markets.{request.venue}"
            )
        return rules

    async def _record_unplannable(
        self, signal: SignalAccepted, reason: str, repos: Repositories, now: datetime
    ) -> None:
        # Not an exception: the same signal against the same position fails the same way every
        # time, and a retry that succeeded later (after the position moved) would trade on a
        # stale signal. Not silent either: the desk finds the reason in signal_outcomes and in
        # the log. No order is created and nothing is published (no contract carries this yet).
        await record_outcome(signal, SignalOutcome.UNPLANNABLE, repos, now, reason=reason)
        trace.get_current_span().set_attribute("ordo.signal_outcome", SignalOutcome.UNPLANNABLE)
        request = signal.signal
        log.warning(
            "signal cannot be planned; no order created",
            reason=reason,
            intent=request.intent.value,
            account=request.account,
            strategy=request.strategy,
            venue=request.venue,
            symbol=request.symbol,
        )

    async def _propose(
        self,
        signal: SignalAccepted,
        specs: list[OrderSpec],
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> None:
        proposal_id = new_message_id()
        await record_outcome(signal, SignalOutcome.PLANNED, repos, now, proposal_id=proposal_id)
        detail = f"planned from signal {signal.signal_id} ({signal.signal.intent.value})"
        # Orders of a type the venue lacks are held (emulated); only the rest go to risk now.
        sent = await self._placement.place(
            specs,
            signal_id=signal.signal_id,
            proposal_id=proposal_id,
            cause=signal,
            repos=repos,
            tx=tx,
            now=now,
            detail=detail,
        )
        if sent:
            tx.publish(
                OrderProposed.caused_by(
                    signal,
                    producer=PRODUCER,
                    proposal_id=proposal_id,
                    signal_id=signal.signal_id,
                    account=signal.signal.account,
                    orders=tuple(sent),
                )
            )
        log.info(
            "orders proposed",
            proposal_id=proposal_id,
            order_ids=[spec.order_id for spec in sent],
            held=[spec.order_id for spec in specs if spec not in sent],
        )

    # --- risk.approved.v1 / risk.denied.v1 ------------------------------------------------------

    async def on_order_approved(self, approval: OrderApproved, tx: Transaction) -> None:
        _annotate(account=approval.account, proposal_id=approval.proposal_id)
        repos = Repositories(tx.session)
        now = self._clock()
        for spec in approval.orders:
            order = await self._decided_order(repos, spec.order_id, approval.proposal_id)
            if order is None:
                continue
            with _order_step("oms.submit", order):
                try:
                    changed = order.submit(now)
                except InvalidTransition as exc:
                    # The risk gate approved what it had denied. No retry changes that; the
                    # order stays DENIED, and should execution place it anyway, its reports
                    # still reach the order and their fills the position.
                    log.error("approval contradicts the order's state; ignored", error=str(exc))
                    continue
                if changed:
                    detail = f"approved in proposal {approval.proposal_id}"
                    await self._settle(order, repos, approval, tx, now, detail)
                    await self._groups.after_order_change(
                        order, filled=False, repos=repos, cause=approval, tx=tx, now=now
                    )

    async def on_order_denied(self, denial: OrderDenied, tx: Transaction) -> None:
        _annotate(account=denial.account, proposal_id=denial.proposal_id)
        repos = Repositories(tx.session)
        now = self._clock()
        reason = _denial_text(denial)
        for order_id in denial.order_ids:
            order = await self._decided_order(repos, order_id, denial.proposal_id)
            if order is None:
                continue
            with _order_step("oms.deny", order):
                try:
                    changed = order.deny(reason, now)
                except InvalidTransition as exc:
                    # Denied after it was approved (or after the venue already reported on it):
                    # the order is out of the risk gate's hands; leave it to the venue's reports.
                    log.error("denial contradicts the order's state; ignored", error=str(exc))
                    continue
                if changed:
                    log.info("order denied", reason=reason)
                    await self._settle(order, repos, denial, tx, now, reason)
                    await self._groups.after_order_change(
                        order, filled=False, repos=repos, cause=denial, tx=tx, now=now
                    )

    @staticmethod
    async def _decided_order(repos: Repositories, order_id: str, proposal_id: str) -> Order | None:
        order = await repos.orders.get(order_id)
        if order is None:
            # Every order is committed before its proposal is published, so the risk gate
            # cannot decide on an order that is not visible yet: this one was never ours.
            log.error(
                "risk decision for an unknown order; ignored",
                order_id=order_id,
                proposal_id=proposal_id,
            )
        return order

    # --- exec.report.v1 -------------------------------------------------------------------------

    async def on_execution_report(self, report: ExecutionReport, tx: Transaction) -> None:
        _annotate(
            order_id=report.order_id,
            client_order_id=report.order_id,
            venue_order_id=report.venue_order_id,
            account=report.account,
        )
        repos = Repositories(tx.session)
        order = await repos.orders.get(report.order_id)
        if order is None:
            # Not a race to wait out: the order row commits before its proposal is published,
            # and the venue only sees orders the risk gate approved from a proposal. An unknown
            # client order id is an order we never made (placed by hand at the venue, or by
            # another system); adopting or cancelling it is reconciliation's job, and retrying
            # here would not help. Its status is news to nobody; its fill is money that moved
            # on the account, and must not vanish with an acknowledgement: it goes to the
            # dead-letter stream, kept for an operator to replay once the order is adopted.
            if report.fill is not None:
                raise PoisonMessage(
                    f"fill {report.fill.fill_id} ({report.fill.quantity} {report.symbol} @ "
                    f"{report.fill.price}) reported for unknown order {report.order_id} "
                    f"(venue order {report.venue_order_id}) at {report.account}/{report.venue}"
                )
            log.error(
                "execution report for an unknown order; ignored",
                order_id=report.order_id,
                venue_order_id=report.venue_order_id,
                status=report.status.value,
            )
            return
        _annotate(signal_id=order.signal_id)
        now = self._clock()
        with _order_step("oms.apply_report", order) as span:
            span.set_attribute("ordo.report_status", report.status.value)
            try:
                applied = order.apply_report(report, now)
            except ReportMismatch as exc:
                raise PoisonMessage(str(exc)) from exc  # corrupt: no retry can fix it
            if applied.ignored_status is not None:
                log.info(
                    "stale report status ignored",
                    status=order.status.value,
                    reported=applied.ignored_status.value,
                )
            if applied.changed:
                detail = _report_detail(report, applied)
                await self._settle(order, repos, report, tx, now, detail)
                await self._groups.after_order_change(
                    order,
                    filled=applied.new_fill is not None,
                    repos=repos,
                    cause=report,
                    tx=tx,
                    now=now,
                )

    # --- the domain's events become rows and messages ------------------------------------------

    async def _settle(
        self,
        order: Order,
        repos: Repositories,
        cause: Message,
        tx: Transaction,
        now: datetime,
        detail: str,
    ) -> None:
        """Save the order, then turn what it recorded into history, fills and messages."""
        await repos.orders.save(order)
        events = list(order.events)
        order.events.clear()
        changes = [event for event in events if isinstance(event, OrderChanged)]
        for change in changes:
            await repos.orders.record_event(change, now, detail)
        if changes:
            tx.publish(OrderUpdated.caused_by(cause, producer=PRODUCER, order=order.to_view()))
        for event in events:
            if isinstance(event, OrderFilled):
                await self._apply_fill(event, repos, cause, tx, now)
        for follower in self._followers:
            await follower(order, repos, cause, tx, now)

    @staticmethod
    async def _apply_fill(
        event: OrderFilled, repos: Repositories, cause: Message, tx: Transaction, now: datetime
    ) -> None:
        """Apply a fill the order had not seen to its position: exactly once, by fill id."""
        fill = event.fill
        await repos.orders.record_fill(event.order_id, fill)
        key = (event.account, event.strategy, event.venue, event.symbol)
        position = await repos.positions.get(*key) or Position.flat(*key, now)
        trade_pnl = position.apply_fill(event.side, fill.quantity, fill.price, fill.fee, now)
        await repos.positions.save(position)
        tx.publish(
            PositionChanged.caused_by(
                cause,
                producer=PRODUCER,
                position=position.to_view(),
                order_id=event.order_id,
                fill_id=fill.fill_id,
            )
        )
        log.info(
            "position changed",
            fill_id=fill.fill_id,
            quantity=str(position.quantity),
            realised_pnl=str(position.realised_pnl),
            trade_pnl=str(trade_pnl),
        )


class OrderQueries:
    """Request/reply responders for the operator CLI and the reconciler (read-only)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def orders(self, query: QueryOrders) -> OrdersView:
        async with self._db.session() as session:
            found = await store.find_orders(
                session,
                account=query.account,
                order_id=query.order_id,
                signal_id=query.signal_id,
                status=query.status,
                limit=query.limit,
                strategy=query.strategy,
                symbol=query.symbol,
                open_only=query.open_only,
            )
        return OrdersView.caused_by(query, producer=PRODUCER, orders=tuple(found))

    async def positions(self, query: QueryPositions) -> PositionsView:
        """Positions at their marks, with P&L totals per account and per strategy."""
        async with self._db.session() as session:
            found = await store.find_positions(
                session,
                account=query.account,
                venue=query.venue,
                include_flat=query.include_flat,
                strategy=query.strategy,
            )
            marks = await all_marks(session, query.venue)
        at_marks = tuple(marked(position, marks) for position in found)
        return PositionsView.caused_by(
            query, producer=PRODUCER, positions=at_marks, totals=totals(at_marks)
        )

    async def signals(self, query: QuerySignals) -> SignalsView:
        async with self._db.session() as session:
            found = await store.find_signal_outcomes(
                session,
                signal_id=query.signal_id,
                account=query.account,
                outcome=query.outcome,
                limit=query.limit,
                after_signal_id=query.after_signal_id,
            )
        return SignalsView.caused_by(query, producer=PRODUCER, signals=tuple(found))

    async def rebalances(self, query: QueryRebalances) -> RebalancesView:
        async with self._db.session() as session:
            found = await find_rebalances(
                session, rebalance_id=query.rebalance_id, account=query.account, limit=query.limit
            )
        return RebalancesView.caused_by(query, producer=PRODUCER, rebalances=tuple(found))
