"""What a decision reads besides the exposure, and the automatic halts on loss and drawdown.

Everything here comes from, and goes to, the risk store (and Redis for the order rate): quotes,
the UTC day's traded notional and realised P&L, the equity peak and the order-rate window. A
replica or a restarted service therefore decides exactly as any other would.

Quotes and position changes move an account's equity and realised P&L. When one takes the account
past its daily realised loss limit or its drawdown limit, the account is HALTED automatically
(only ever tightened, see :func:`ordo.risk.domain.state.tighten`), and the
``TradingStateChanged`` on ``risk.state.v1`` is the alert. A breach halts once (``breaches``):
an operator who then lets the account reduce its exposure is not overruled on the next quote or
fill of the same breach; the checks still deny whatever would add to it. A drawdown that recovers
and breaches again, or a daily loss on a new UTC day, halts again.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.enums import TradingState
from ordo.contracts.envelope import Message
from ordo.contracts.orders import OrderProposed, OrderSpec, PositionView
from ordo.contracts.risk import DenialReason
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Transaction
from ordo.risk import store
from ordo.risk.domain.checks import RiskContext
from ordo.risk.domain.equity import Equity, UnknownEquity, drawdown_percent
from ordo.risk.domain.exposure import Exposure, Instrument
from ordo.risk.domain.limits import AccountLimits, RiskLimits
from ordo.risk.domain.pricing import notional, valuation_price
from ordo.risk.domain.quotes import Quote
from ordo.risk.domain.state import tighten
from ordo.risk.governance import AUTOMATIC_ACTOR, limits_in_force, switch_state
from ordo.risk.rate import OrderRate
from ordo.risk.store import AccountState

log = get_logger(__name__)


async def decision_context(
    session: AsyncSession,
    proposal: OrderProposed,
    account: AccountState,
    in_force: AccountLimits,
    exposure: Exposure,
    order_rate: OrderRate,
    now: datetime,
) -> RiskContext:
    """Everything the checks read about the account (its lock is held)."""
    limits = in_force.limits_for(proposal.account)
    instruments = exposure.instruments() | {Instrument(o.venue, o.symbol) for o in proposal.orders}
    return RiskContext(
        limits=limits,
        exposure=exposure,
        trading_state=account.state,
        strategy_limits=in_force.strategy_limits_for(proposal.account),
        quotes=await store.load_quotes(session, instruments),
        now=now,
        today=await store.load_daily_activity(session, proposal.account, now.date()),
        peak_equity=await store.load_equity_peak(session, proposal.account),
        recent_orders=await order_rate.recent(session, proposal.orders, in_force, now),
    )


def decision_inputs(ctx: RiskContext) -> dict[str, Any]:
    """What the decision read besides its limits and exposure, for the audit (exact strings)."""
    equity = ctx.equity
    return {
        "now": ctx.now.isoformat(),
        "strategy_limits": {
            name: limits.model_dump(mode="json") for name, limits in ctx.strategy_limits.items()
        },
        "quotes": [
            {
                "venue": q.venue,
                "symbol": q.symbol,
                "bid": _text(q.bid),
                "ask": _text(q.ask),
                "last": _text(q.last),
                "quoted_at": q.quoted_at.isoformat(),
            }
            for q in ctx.quotes.values()
        ],
        "equity": _text(equity.value) if isinstance(equity, Equity) else None,
        "peak_equity": _text(ctx.peak_equity),
        "today": {
            "traded_notional": _text(ctx.today.traded_notional),
            "realised_pnl": _text(ctx.today.realised_pnl),
        },
        "recent_orders": {
            "account": ctx.recent_orders.account,
            "by_strategy": dict(ctx.recent_orders.by_strategy),
        },
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


async def count_approved(
    session: AsyncSession,
    orders: Iterable[OrderSpec],
    in_force: AccountLimits,
    order_rate: OrderRate,
    now: datetime,
) -> DenialReason | None:
    """Count approved orders in the rate window and the day's traded notional.

    A denial when another replica filled the rate window meanwhile (Redis): nothing is counted
    then, and the proposal is denied after all.
    """
    approved = list(orders)
    refused = await order_rate.admit(session, approved, in_force, now)
    if refused is not None:
        return refused
    traded = sum(
        (notional(o.quantity, price) for o in approved if (price := valuation_price(o))),
        Decimal(0),
    )
    await store.add_daily_activity(session, approved[0].account, now.date(), traded_notional=traded)
    return None


DAILY_LOSS = "daily_realised_loss"
DRAWDOWN = "drawdown"


@dataclass(frozen=True)
class Breach:
    """A limit an account is past: ``episode`` tells one breach of the cause from the next."""

    account: str
    cause: str
    episode: str = ""


class AccountWatch:
    """Follows equity and realised P&L as quotes and position changes arrive; halts on breach."""

    def __init__(self, configured: AccountLimits) -> None:
        self._configured = configured

    async def quote_received(
        self, quote: Quote, cause: Message, tx: Transaction, now: datetime
    ) -> bool:
        """Keep the quote if it is the newest; re-value the accounts that hold it."""
        if not await store.save_quote(tx.session, quote):
            return False
        for account in await store.accounts_holding(tx.session, quote.venue, quote.symbol):
            await self._follow_equity(account, cause, tx, now)
        return True

    async def position_moved(
        self,
        view: PositionView,
        realised_before: Decimal,
        cause: Message,
        tx: Transaction,
        now: datetime,
    ) -> None:
        """Add the change's realised P&L to its UTC day; halt when the day's loss is too big."""
        realised = view.realised_pnl - realised_before
        if realised:
            today = await store.add_daily_activity(
                tx.session, view.account, view.updated_at.date(), realised_pnl=realised
            )
            limits = await self._limits(tx.session, view.account)
            limit = limits.max_daily_realised_loss
            loss = -today.realised_pnl
            day = view.updated_at.date()
            # A late change of an earlier day is counted there, but no longer halts anything.
            if limit is not None and loss > limit and day == now.date():
                breach = Breach(view.account, DAILY_LOSS, day.isoformat())
                reason = f"daily realised loss {loss} on {day} (UTC) is above the limit of {limit}"
                await self._halt(breach, reason, cause, tx, now)
        await self._follow_equity(view.account, cause, tx, now)

    async def _follow_equity(
        self, account: str, cause: Message, tx: Transaction, now: datetime
    ) -> None:
        limits = await self._limits(tx.session, account)
        if limits.starting_capital is None:
            return
        equity = await account_equity_now(tx.session, account, limits, now)
        if equity is None:
            return
        # The account started at its capital: the peak is never below it.
        highest = max(equity.value, limits.starting_capital)
        peak = await store.raise_equity_peak(tx.session, account, highest, now)
        limit = limits.max_drawdown_percent
        drawdown = drawdown_percent(peak, equity.value)
        if limit is None or drawdown <= limit:
            await store.end_breach(tx.session, account, DRAWDOWN)
            return
        reason = (
            f"equity {equity.value} is {drawdown:.6g}% below its peak of {peak}, more than "
            f"the drawdown limit of {limit}%"
        )
        await self._halt(Breach(account, DRAWDOWN), reason, cause, tx, now)

    async def _halt(
        self, breach: Breach, reason: str, cause: Message, tx: Transaction, now: datetime
    ) -> None:
        current = await store.lock_account(tx.session, breach.account, now)
        if not await store.start_breach(
            tx.session, breach.account, breach.cause, breach.episode, now
        ):
            return  # halted for this breach already: an operator has had the last word since
        change = tighten(current.state, TradingState.HALTED, reason, AUTOMATIC_ACTOR)
        if change is None:
            return  # halted already (by an operator, or for another cause)
        await switch_state(tx, current, change, cause, reason=reason, now=now)

    async def _limits(self, session: AsyncSession, account: str) -> RiskLimits:
        in_force = await limits_in_force(session, self._configured, account)
        return in_force.limits_for(account)


async def account_equity_now(
    session: AsyncSession, account: str, limits: RiskLimits, now: datetime
) -> Equity | None:
    """The account's equity at its last trusted marks; None when it cannot be valued."""
    exposure = await store.load_exposure(session, account)
    quotes = await store.load_quotes(session, exposure.instruments())
    ctx = RiskContext(limits, exposure, quotes=quotes, now=now)
    equity = ctx.equity
    if isinstance(equity, UnknownEquity):
        log.info("equity not followed", account=account, why=str(equity))
        return None
    return equity
