"""The rebalance planner: target weights and a cash reserve become sells, then buys.

The portfolio is one strategy's positions on one venue plus the account's configured capital:

    equity = capital + realised P&L (after fees) + unrealised P&L at marks
    cash   = equity - Σ quantity x mark

(``capital`` is the money the strategy started with; the realised P&L already holds every fee
paid.) Each target symbol should hold ``weight x equity`` at its mark; the reserve fraction of the
equity stays in cash. Symbols held but not named keep their holdings. Every value comes from a
mark: a symbol held or named without one refuses the plan (:class:`RebalanceRefused`), never a
guessed price.

Quantities floor to the venue's step (whole units where the step is 1): a sell never sells more
than its symbol is over, a buy never spends more than planned. The buys together never cost more,
fees included, than the cash the sells free plus the cash there is, less the reserve; when they
would, every buy shrinks by the same factor. A trade below the configured minimum amount (or the
venue's minimum quantity or notional) is skipped, with its reason.

The planner is the same before the sells (the buys it plans then count on the sells' proceeds) and
after them (the OMS plans again on the filled positions, and takes its buys).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from ordo.contracts.enums import Side
from ordo.order.domain.errors import RebalanceRefused
from ordo.order.domain.market import MarketRules
from ordo.order.domain.marks import unrealised_pnl

ZERO = Decimal(0)


@dataclass(frozen=True)
class Holding:
    """One symbol's net position of the strategy (signed quantity), as the planner needs it."""

    symbol: str
    quantity: Decimal
    average_entry: Decimal | None
    realised_pnl: Decimal


@dataclass(frozen=True)
class Trade:
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal  # the mark it was sized at
    reduce_only: bool = False

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True)
class Skipped:
    symbol: str
    reason: str


@dataclass(frozen=True)
class RebalancePlan:
    equity: Decimal
    cash: Decimal
    sells: tuple[Trade, ...] = ()
    buys: tuple[Trade, ...] = ()
    skipped: tuple[Skipped, ...] = field(default=())


@dataclass(frozen=True)
class RebalanceRequest:
    targets: Mapping[str, Decimal]  # symbol → weight
    reserve: Decimal
    capital: Decimal
    min_trade_notional: Decimal


def plan_rebalance(
    request: RebalanceRequest,
    holdings: Sequence[Holding],
    marks: Mapping[str, Decimal],
    rules: Mapping[str, MarketRules],
) -> RebalancePlan:
    """Sells and buys that bring the holdings to the target weights; see the module's rules."""
    held = {holding.symbol: holding for holding in holdings}
    _check_inputs(request, held, marks, rules)
    equity = _equity(request.capital, held.values(), marks)
    if equity <= ZERO:
        raise RebalanceRefused(f"the portfolio is worth {equity}: there is nothing to rebalance")
    cash = equity - sum((h.quantity * marks[h.symbol] for h in held.values()), ZERO)
    sells: list[Trade] = []
    buys: list[Trade] = []
    skipped: list[Skipped] = []
    for symbol, weight in sorted(request.targets.items()):
        current = held[symbol].quantity if symbol in held else ZERO
        trade, reason = _trade(symbol, current, weight * equity, marks[symbol], rules[symbol])
        if trade is None:
            if reason is not None:
                skipped.append(Skipped(symbol, reason))
        elif (minimum := _below_minimum(trade, rules[symbol], request)) is not None:
            skipped.append(Skipped(symbol, minimum))
        else:
            (sells if trade.side is Side.SELL else buys).append(trade)
    fundable, shrunk = _fund(buys, sells, cash, equity * request.reserve, rules, request, skipped)
    return RebalancePlan(equity, cash, tuple(sells), tuple(fundable), tuple(shrunk))


def _check_inputs(
    request: RebalanceRequest,
    held: Mapping[str, Holding],
    marks: Mapping[str, Decimal],
    rules: Mapping[str, MarketRules],
) -> None:
    if request.capital < ZERO:
        raise RebalanceRefused(f"the configured capital {request.capital} is negative")
    if not ZERO <= request.reserve < 1:
        raise RebalanceRefused(f"a cash reserve of {request.reserve} is not a fraction below 1")
    total = sum(request.targets.values(), ZERO)
    if any(weight < ZERO for weight in request.targets.values()) or total + request.reserve > 1:
        raise RebalanceRefused(
            f"the weights ({total}) and the reserve ({request.reserve}) must be non-negative "
            "and add up to at most 1"
        )
    valued = set(request.targets) | {s for s, h in held.items() if h.quantity != ZERO}
    unmarked = sorted(symbol for symbol in valued if symbol not in marks)
    if unmarked:
        raise RebalanceRefused(
            f"no mark for {', '.join(unmarked)}: the portfolio cannot be valued without a quote "
            "(is execution publishing market.quote.v1?)"
        )
    unruled = sorted(symbol for symbol in request.targets if symbol not in rules)
    if unruled:
        raise RebalanceRefused(f"no market rules for {', '.join(unruled)} at this venue")


def _equity(capital: Decimal, held: Iterable[Holding], marks: Mapping[str, Decimal]) -> Decimal:
    holdings = list(held)
    realised = sum((h.realised_pnl for h in holdings), ZERO)
    unrealised = sum((_unrealised(h, marks[h.symbol]) for h in holdings if h.quantity), ZERO)
    return capital + realised + unrealised


def _unrealised(holding: Holding, mark: Decimal) -> Decimal:
    return unrealised_pnl(holding.quantity, holding.average_entry, mark)


def _trade(
    symbol: str, current: Decimal, target_value: Decimal, mark: Decimal, rules: MarketRules
) -> tuple[Trade | None, str | None]:
    target = _floor(target_value / mark, rules.step_size)
    delta = target - current
    if delta < ZERO:
        # Weights are never negative, so only a long is ever over its target: it is sold down
        # in whole steps, never through zero (reduce-only says so to the venue too).
        quantity = min(_floor(-delta, rules.step_size), current)
        if quantity <= ZERO:
            return None, f"less than one step ({rules.step_size}) over its target"
        return Trade(symbol, Side.SELL, quantity, mark, reduce_only=True), None
    quantity = _floor(delta, rules.step_size)
    if quantity <= ZERO:
        return None, None if delta == ZERO else f"less than one step ({rules.step_size}) short"
    return Trade(symbol, Side.BUY, quantity, mark), None


def _below_minimum(trade: Trade, rules: MarketRules, request: RebalanceRequest) -> str | None:
    if trade.notional < request.min_trade_notional:
        return (
            f"{trade.side} of {trade.quantity} (~{trade.notional}) is below the minimum trade "
            f"amount {request.min_trade_notional}"
        )
    if trade.quantity < rules.min_quantity or trade.notional < rules.min_notional:
        return (
            f"{trade.side} of {trade.quantity} (~{trade.notional}) is below the venue's minimum "
            f"(quantity {rules.min_quantity}, notional {rules.min_notional})"
        )
    return None


def _fund(
    buys: list[Trade],
    sells: list[Trade],
    cash: Decimal,
    reserve: Decimal,
    rules: Mapping[str, MarketRules],
    request: RebalanceRequest,
    skipped: list[Skipped],
) -> tuple[list[Trade], list[Skipped]]:
    """The buys the cash pays for, fees included; all shrunk alike when it does not."""
    proceeds = sum((t.notional * (1 - rules[t.symbol].taker_fee_rate) for t in sells), ZERO)
    available = cash + proceeds - reserve
    cost = sum((_cost(t, rules[t.symbol]) for t in buys), ZERO)
    if not buys or cost <= available:
        return buys, skipped
    factor = max(available, ZERO) / cost
    funded = []
    for trade in buys:
        step = rules[trade.symbol].step_size
        smaller = Trade(trade.symbol, Side.BUY, _floor(trade.quantity * factor, step), trade.price)
        reason = None if smaller.quantity > ZERO else "no cash left for it above the reserve"
        reason = reason or _below_minimum(smaller, rules[trade.symbol], request)
        if reason is None:
            funded.append(smaller)
        else:
            skipped.append(Skipped(trade.symbol, reason))
    return funded, skipped


def _cost(trade: Trade, rules: MarketRules) -> Decimal:
    return trade.notional * (1 + rules.taker_fee_rate + rules.expected_slippage)


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


class RebalancePhase(StrEnum):
    SELLING = "selling"  # the sells are proposed; the buys wait for them to finish
    BUYING = "buying"  # the sells are done (filled, or ended otherwise); the buys are proposed
    DONE = "done"
    REFUSED = "refused"  # could not be planned: the detail says why

    @property
    def is_final(self) -> bool:
        return self in (RebalancePhase.DONE, RebalancePhase.REFUSED)


REBALANCE_SIGNAL_PREFIX = "rebalance:"


@dataclass
class Rebalance:
    """One rebalance command and how far it got. Its orders carry :attr:`signal_id`."""

    rebalance_id: str
    account: str
    strategy: str
    venue: str
    targets: dict[str, Decimal]
    reserve: Decimal
    phase: RebalancePhase
    created_at: datetime
    updated_at: datetime
    detail: str | None = None
    version: int = 1

    @property
    def signal_id(self) -> str:
        return signal_id_of(self.rebalance_id)

    def move_to(self, phase: RebalancePhase, now: datetime, detail: str | None = None) -> None:
        self.phase = phase
        if detail is not None:
            self.detail = detail
        self.touch(now)

    def touch(self, now: datetime) -> None:
        """A new version: one of its orders moved (two replicas then cannot both move it on)."""
        self.version += 1
        self.updated_at = now


def signal_id_of(rebalance_id: str) -> str:
    return f"{REBALANCE_SIGNAL_PREFIX}{rebalance_id}"


def rebalance_id_of(signal_id: str) -> str | None:
    """The rebalance an order's signal id names, or None for an order of a signal."""
    if not signal_id.startswith(REBALANCE_SIGNAL_PREFIX):
        return None
    return signal_id[len(REBALANCE_SIGNAL_PREFIX) :]


def describe_skipped(skipped: Iterable[Skipped]) -> str | None:
    parts = [f"{each.symbol}: {each.reason}" for each in skipped]
    return "skipped " + "; ".join(parts) if parts else None
