"""Contracts in → the risk domain → contracts out.

Every handler first locks the account it touches (:func:`store.lock_account`): a decision reads
the account's positions and reservations and then reserves its orders, and nothing else may
change them in between, or two proposals could each use the same room under a limit. The
handlers keep no state of their own; replicas and restarts rebuild everything from the store.

How a fill reaches the exposure from two subjects, in either order, is explained in
:mod:`ordo.risk.domain.reservations`: the reservation keeps a fill counted until both the order
update and the position change have shown it, so the exposure is never under-counted and ends
exact whatever arrives first.
"""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from opentelemetry import trace
from prometheus_client import CollectorRegistry
from structlog.contextvars import bound_contextvars

from ordo.contracts.enums import TradingState
from ordo.contracts.envelope import Message
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import OrderProposed, OrderUpdated, PositionChanged, PositionView
from ordo.contracts.risk import OrderApproved, OrderDenied, SetTradingState
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Transaction
from ordo.risk import store
from ordo.risk.domain.checks import Decision, RiskContext, evaluate
from ordo.risk.domain.limits import AccountLimits
from ordo.risk.domain.quotes import Quote
from ordo.risk.domain.reservations import fill_between
from ordo.risk.domain.state import InvalidStateChange, StateChange, StateUnchanged, change_state
from ordo.risk.evaluation import (
    AccountWatch,
    count_approved,
    decision_context,
    decision_inputs,
)
from ordo.risk.governance import apply_state_change, limits_in_force
from ordo.risk.metrics import RiskMetrics
from ordo.risk.rate import OrderRate, StoreOrderRate
from ordo.risk.store import StateChangeOutcome

PRODUCER = "risk"

log = get_logger(__name__)
tracer = trace.get_tracer(__name__)

Clock = Callable[[], datetime]


class RiskHandlers:
    """The risk service's consumers: proposals, order and position changes, operator commands."""

    def __init__(
        self,
        limits: AccountLimits,
        *,
        clock: Clock = utc_now,
        metrics: RiskMetrics | None = None,
        order_rate: OrderRate | None = None,
    ) -> None:
        self._limits = limits
        self._clock = clock
        # Redis when the service has it (app.py), else the store's window.
        self._order_rate = order_rate or StoreOrderRate()
        self._watch = AccountWatch(limits)
        # The service exports them (app.py); alone, the handlers count into a registry of their own.
        self._metrics = metrics or RiskMetrics(CollectorRegistry())

    # -- order.proposed ------------------------------------------------------------------------

    async def order_proposed(self, proposal: OrderProposed, tx: Transaction) -> None:
        """Approve or deny a whole proposal, reserve what is approved, audit the decision."""
        attributes = {
            "ordo.account": proposal.account,
            "ordo.order_id": proposal.orders[0].order_id,
            "ordo.signal_id": proposal.signal_id,
            "ordo.proposal_id": proposal.proposal_id,
        }
        with (
            tracer.start_as_current_span("risk.decide", attributes=attributes),
            bound_contextvars(
                proposal_id=proposal.proposal_id,
                account=proposal.account,
                signal_id=proposal.signal_id,
            ),
        ):
            await self._decide(proposal, tx)

    async def _decide(self, proposal: OrderProposed, tx: Transaction) -> None:
        now = self._clock()
        account = await store.lock_account(tx.session, proposal.account, now)
        if await store.decision_exists(tx.session, proposal.proposal_id):
            # The same proposal sent again: its decision is already published (outbox).
            log.info("proposal already decided; repeat ignored")
            return
        # The configured limits with the operators' run-time changes on top (governance.py).
        in_force = await limits_in_force(tx.session, self._limits, proposal.account)
        limits = in_force.limits_for(proposal.account)
        exposure = await store.load_exposure(tx.session, proposal.account)
        context = await decision_context(
            tx.session, proposal, account, in_force, exposure, self._order_rate, now
        )
        decision = _evaluate(proposal, context)
        if decision.approved:
            refused = await count_approved(
                tx.session, proposal.orders, in_force, self._order_rate, now
            )
            decision = decision if refused is None else Decision((refused,))
        outcome = _outcome(proposal, decision)
        if decision.approved:
            await store.reserve(tx.session, proposal.orders, now)
        else:
            self._metrics.count_denial(tx.session, decision.reasons)
        tx.publish(outcome)
        audit = store.DecisionRecord(
            decision_id=outcome.message_id,
            proposal=proposal,
            reasons=decision.reasons,
            trading_state=account.state,
            limits=limits,
            exposure=exposure,
            decided_at=now,
            inputs=decision_inputs(context),
        )
        await store.record_decision(tx.session, audit)

    # -- order.updated -------------------------------------------------------------------------

    async def order_updated(self, message: OrderUpdated, tx: Transaction) -> None:
        """Shrink the order's reservation as it fills; release it once it ended and is shown."""
        view = message.order
        _tag_current_span(account=view.account, order_id=view.order_id)
        with bound_contextvars(order_id=view.order_id, account=view.account):
            now = self._clock()
            await store.lock_account(tx.session, view.account, now)
            reserved = await store.find_reservation(tx.session, view.order_id)
            if reserved is None or reserved.account != view.account:
                # Not approved here, or already settled: a late or repeated update.
                log.debug("order update without a reservation", status=view.status.value)
                return
            if view.version <= reserved.order_version:
                log.info("stale order update ignored", version=view.version)
                return
            fills = reserved.fills.reported(view.filled_quantity, ended=view.status.is_terminal)
            await store.save_reservation(
                tx.session, reserved, fills, now, order_version=view.version
            )
            log.info(
                "reservation updated",
                status=view.status.value,
                filled=str(fills.filled_reported),
                counted=str(fills.counted),
            )

    # -- position.changed ----------------------------------------------------------------------

    async def position_changed(self, message: PositionChanged, tx: Transaction) -> None:
        """Move the positions projection forward, and tell the fill's reservation it is shown."""
        view = message.position
        _tag_current_span(account=view.account, order_id=message.order_id)
        with bound_contextvars(
            account=view.account, order_id=message.order_id, fill_id=message.fill_id
        ):
            now = self._clock()
            await store.lock_account(tx.session, view.account, now)
            held = await store.held_position(tx.session, view)
            if held is not None and view.version <= held.version:
                # Older than what is held: the newer view already includes this fill.
                log.info("stale position change ignored", version=view.version)
                return
            await store.save_position(tx.session, view, held)
            fill = fill_between(
                held.version if held else 0,
                held.quantity if held else Decimal(0),
                view.version,
                view.quantity,
            )
            if fill is None:
                await self._stop_attributing_fills(view, tx, now)
            else:
                await self._fill_shown(message, fill, tx, now)
            realised_before = held.realised_pnl if held else Decimal(0)
            await self._watch.position_moved(view, realised_before, message, tx, now)

    async def position_synced(self, view: PositionView, cause: Message, tx: Transaction) -> bool:
        """The OMS's own view of a position, asked for at start-up: taken if newer than held.

        The projection lacks what the stream no longer holds (a store restored or replaced, a
        position last changed before the stream's retention). Returns whether it was taken.
        """
        now = self._clock()
        await store.lock_account(tx.session, view.account, now)
        held = await store.held_position(tx.session, view)
        if held is not None and view.version <= held.version:
            return False
        await store.save_position(tx.session, view, held)
        await self._stop_attributing_fills(view, tx, now)
        # Realised P&L of a position never seen cannot be dated: none of it counts for today.
        realised_before = held.realised_pnl if held else view.realised_pnl
        await self._watch.position_moved(view, realised_before, cause, tx, now)
        return True

    # -- market.quote --------------------------------------------------------------------------

    async def market_quote(self, message: MarketQuote, tx: Transaction) -> None:
        """Keep the newest quote per instrument; halt accounts it takes past their drawdown."""
        with bound_contextvars(venue=message.venue, symbol=message.symbol):
            kept = await self._watch.quote_received(Quote.of(message), message, tx, self._clock())
            if not kept:
                log.debug("older quote ignored", quoted_at=message.quoted_at.isoformat())

    async def _fill_shown(
        self, message: PositionChanged, fill: Decimal, tx: Transaction, now: datetime
    ) -> None:
        view = message.position
        reserved = await store.find_reservation(tx.session, message.order_id)
        if reserved is None or not reserved.is_for(view):
            return  # not approved here, already settled, or not this position's order
        fills = reserved.fills.in_positions(fill)
        await store.save_reservation(tx.session, reserved, fills, now)

    async def _stop_attributing_fills(
        self, view: PositionView, tx: Transaction, now: datetime
    ) -> None:
        # A skipped version: the fills since the last one held cannot be told apart, so the
        # reservations on this position stop waiting for positions and follow the order updates.
        log.info("position version skipped; its reservations follow the order updates alone")
        for reserved in await store.reservations_of_position(tx.session, view):
            fills = reserved.fills.all_in_positions()
            if fills != reserved.fills:
                await store.save_reservation(tx.session, reserved, fills, now)

    # -- ops.risk.set_state --------------------------------------------------------------------

    async def set_trading_state(self, command: SetTradingState, tx: Transaction) -> None:
        """An operator halts, reduces or resumes an account. Every request is audited.

        A request that changes nothing or lacks a reason is logged and audited, not raised:
        bad operator input would fail the same way on every retry.
        """
        _tag_current_span(account=command.account)
        with bound_contextvars(account=command.account, operator=command.operator):
            now = self._clock()
            current = await store.lock_account(tx.session, command.account, now)
            outcome, change = _judge_state_change(current.state, command)
            await store.record_state_change(
                tx.session,
                account=command.account,
                from_state=current.state,
                to_state=command.state,
                outcome=outcome,
                reason=change.reason if change else command.reason,
                actor=change.actor if change else command.operator,
                command_id=command.message_id,
                now=now,
            )
            if change is not None:
                await apply_state_change(tx, current, change, command, now)


def _judge_state_change(
    current: TradingState, command: SetTradingState
) -> tuple[StateChangeOutcome, StateChange | None]:
    try:
        change = change_state(current, command.state, command.reason, command.operator)
    except StateUnchanged:
        log.info("trading state unchanged", state=current.value)
        return StateChangeOutcome.UNCHANGED, None
    except InvalidStateChange as exc:
        log.warning("trading state change refused", error=str(exc))
        return StateChangeOutcome.REFUSED, None
    log.warning(
        "trading state changed",
        state=change.state.value,
        previous=change.previous.value,
        reason=change.reason,
    )
    return StateChangeOutcome.APPLIED, change


def _evaluate(proposal: OrderProposed, ctx: RiskContext) -> Decision:
    with tracer.start_as_current_span("risk.evaluate") as span:
        decision = evaluate(proposal, ctx)
        span.set_attributes(
            {
                "ordo.account": proposal.account,
                "ordo.trading_state": ctx.trading_state.value,
                "ordo.order_count": len(proposal.orders),
                "ordo.decision": "approved" if decision.approved else "denied",
            }
        )
        if decision.denied:
            span.set_attribute("ordo.denial_codes", [reason.code for reason in decision.reasons])
    if decision.approved:
        log.info("proposal approved", orders=len(proposal.orders))
    else:
        log.info("proposal denied", codes=[reason.code for reason in decision.reasons])
    return decision


def _outcome(proposal: OrderProposed, decision: Decision) -> Message:
    if decision.approved:
        return OrderApproved.caused_by(
            proposal,
            producer=PRODUCER,
            proposal_id=proposal.proposal_id,
            account=proposal.account,
            orders=proposal.orders,
        )
    return OrderDenied.caused_by(
        proposal,
        producer=PRODUCER,
        proposal_id=proposal.proposal_id,
        account=proposal.account,
        order_ids=tuple(spec.order_id for spec in proposal.orders),
        reasons=decision.reasons,
    )


def _tag_current_span(*, account: str, order_id: str | None = None) -> None:
    """Put ids on the kit's span of the message being handled."""
    span = trace.get_current_span()
    span.set_attribute("ordo.account", account)
    if order_id is not None:
        span.set_attribute("ordo.order_id", order_id)
