"""Pre-trade checks. Each returns a denial reason or None; :func:`evaluate` judges a proposal.

A proposal passes or fails as a whole. Its orders count against the limits cumulatively: each is
checked as if the ones before it in the proposal had been approved already.

Orders that reduce exposure pass the limits that guard against losing more (position size,
gross exposure, leverage, concentration, daily traded notional, daily loss, drawdown): an account
past a limit must still be able to get out.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from ordo.contracts.enums import OrderType, TradingState
from ordo.contracts.orders import OrderProposed, OrderSpec
from ordo.contracts.risk import DenialReason
from ordo.contracts.types import utc_now
from ordo.risk.domain.equity import (
    Equity,
    UnknownEquity,
    account_equity,
    drawdown_percent,
    peak_of,
)
from ordo.risk.domain.exposure import (
    ZERO,
    Exposure,
    Instrument,
    is_stop,
    reduces_exposure,
    signed_quantity,
)
from ordo.risk.domain.limits import HUNDRED, RiskLimits
from ordo.risk.domain.pricing import notional, valuation_price
from ordo.risk.domain.quotes import Quote, UntrustedQuote, trusted_mark


class DenialCode(StrEnum):
    """The machine-readable reasons a proposal is denied."""

    ACCOUNT_MISMATCH = "ACCOUNT_MISMATCH"
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PRICE = "INVALID_PRICE"
    MISSING_REFERENCE_PRICE = "MISSING_REFERENCE_PRICE"
    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"
    REDUCE_ONLY_INCREASES_EXPOSURE = "REDUCE_ONLY_INCREASES_EXPOSURE"
    MAX_NOTIONAL_PER_ORDER = "MAX_NOTIONAL_PER_ORDER"
    MAX_POSITION_QUANTITY = "MAX_POSITION_QUANTITY"
    MAX_POSITION_NOTIONAL = "MAX_POSITION_NOTIONAL"
    MAX_POSITION_PERCENT_OF_EQUITY = "MAX_POSITION_PERCENT_OF_EQUITY"
    MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"
    MAX_GROSS_EXPOSURE = "MAX_GROSS_EXPOSURE"
    MAX_LEVERAGE = "MAX_LEVERAGE"
    MAX_SYMBOL_CONCENTRATION = "MAX_SYMBOL_CONCENTRATION"
    MAX_DAILY_TRADED_NOTIONAL = "MAX_DAILY_TRADED_NOTIONAL"
    MAX_DAILY_REALISED_LOSS = "MAX_DAILY_REALISED_LOSS"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    EQUITY_UNKNOWN = "EQUITY_UNKNOWN"
    NO_EQUITY = "NO_EQUITY"
    ORDER_RATE_ACCOUNT = "ORDER_RATE_ACCOUNT"
    ORDER_RATE_STRATEGY = "ORDER_RATE_STRATEGY"
    QUOTE_MISSING = "QUOTE_MISSING"
    QUOTE_STALE = "QUOTE_STALE"
    QUOTE_SUSPICIOUS = "QUOTE_SUSPICIOUS"
    PRICE_OUTSIDE_COLLAR = "PRICE_OUTSIDE_COLLAR"
    STOP_LOSS_REQUIRED = "STOP_LOSS_REQUIRED"


@dataclass(frozen=True)
class DailyActivity:
    """What the account did in the current UTC day, before this proposal."""

    traded_notional: Decimal = ZERO
    realised_pnl: Decimal = ZERO


@dataclass(frozen=True)
class OrderCounts:
    """Orders approved within the rate window, before this proposal."""

    account: int = 0
    by_strategy: Mapping[str, int] = field(default_factory=dict)


@dataclass
class ProposalSoFar:
    """What the orders already checked in this proposal add to the daily and rate counters."""

    orders: int = 0
    by_strategy: dict[str, int] = field(default_factory=dict)
    traded_notional: Decimal = ZERO

    def add(self, order: OrderSpec) -> None:
        self.orders += 1
        self.by_strategy[order.strategy] = self.by_strategy.get(order.strategy, 0) + 1
        price = valuation_price(order)
        if price is not None:
            self.traded_notional += notional(order.quantity, price)


@dataclass(frozen=True)
class RiskContext:
    """Everything the checks read about the account. The checks never change it.

    ``strategy_limits`` holds the limits of strategies with overrides (see
    :meth:`ordo.risk.domain.limits.AccountLimits.strategy_limits_for`); ``peak_equity`` is the
    highest equity seen so far, before this decision.
    """

    limits: RiskLimits
    exposure: Exposure
    trading_state: TradingState = TradingState.ACTIVE
    strategy_limits: Mapping[str, RiskLimits] = field(default_factory=dict)
    quotes: Mapping[Instrument, Quote] = field(default_factory=dict)
    now: datetime = field(default_factory=utc_now)
    today: DailyActivity = DailyActivity()
    peak_equity: Decimal | None = None
    recent_orders: OrderCounts = OrderCounts()
    so_far: ProposalSoFar = field(default_factory=ProposalSoFar, compare=False)

    @property
    def account(self) -> str:
        return self.exposure.account

    def limits_of(self, order: OrderSpec) -> RiskLimits:
        return self.strategy_limits.get(order.strategy, self.limits)

    def mark(self, instrument: Instrument) -> Decimal | UntrustedQuote:
        marks = self._marks
        if instrument not in marks:
            quote = self.quotes.get(instrument)
            marks[instrument] = trusted_mark(instrument, quote, self.limits, self.now)
        return marks[instrument]

    def reduces(self, order: OrderSpec) -> bool:
        """Whether the order takes its position closer to flat (asked by most checks)."""
        key = (order.order_id, self.exposure.revision)
        found = self._reducing.get(key)
        if found is None:
            found = self._reducing[key] = self.exposure.order_reduces_exposure(order)
        return found

    def gross_after(self, order: OrderSpec) -> "Decimal | DenialReason":
        """The account's gross notional with ``order`` open too (see :func:`_gross_of`)."""
        key = (order.order_id, self.exposure.revision)
        found = self._gross.get(key)
        if found is None:
            found = self._gross[key] = _gross_of(order, self)
        return found

    @property
    def equity(self) -> Equity | UnknownEquity | None:
        """The account's equity now; None when no starting capital is configured."""
        revision = self.exposure.positions_revision
        if revision not in self._equity:
            self._equity[revision] = self._value_equity()
        return self._equity[revision]

    def _value_equity(self) -> Equity | UnknownEquity | None:
        if self.limits.starting_capital is None:
            return None
        try:
            return account_equity(self.exposure, self.limits.starting_capital, self.mark)
        except UnknownEquity as unknown:
            return unknown

    # Caches of this context alone (``replace`` starts them afresh): its quotes, clock and limits
    # never change, and what depends on the exposure is keyed by the exposure's revision.
    _marks: dict[Instrument, Decimal | UntrustedQuote] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _reducing: dict[tuple[str, int], bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _gross: dict[tuple[str, int], "Decimal | DenialReason"] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _equity: dict[int, Equity | UnknownEquity | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )


@dataclass(frozen=True)
class Decision:
    """The verdict on a whole proposal: approved when there is no reason to deny it."""

    reasons: tuple[DenialReason, ...] = ()

    @property
    def approved(self) -> bool:
        return not self.reasons

    @property
    def denied(self) -> bool:
        return bool(self.reasons)


Check = Callable[[OrderSpec, RiskContext], DenialReason | None]


def _deny(
    code: DenialCode,
    order: OrderSpec | None,
    message: str,
    *,
    limit: Decimal | int | None = None,
    actual: Decimal | int | None = None,
) -> DenialReason:
    return DenialReason(
        code=code.value,
        message=message,
        order_id=None if order is None else order.order_id,
        limit=None if limit is None else Decimal(limit),
        actual=None if actual is None else Decimal(actual),
    )


# -- is the order well formed? ------------------------------------------------------------------


def check_account(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if order.account == ctx.account:
        return None
    return _deny(
        DenialCode.ACCOUNT_MISMATCH,
        order,
        f"order {order.order_id} is for account {order.account!r}, not {ctx.account!r}",
    )


def check_order_id_unused(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if not ctx.exposure.is_reserved(order.order_id):
        return None
    return _deny(
        DenialCode.DUPLICATE_ORDER_ID,
        order,
        f"order id {order.order_id} was already approved",
    )


def check_quantity(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    # The contract refuses these already; the gate checks again because it is the last line.
    quantity = order.quantity
    if quantity.is_finite() and quantity > 0:
        return None
    return _deny(
        DenialCode.INVALID_QUANTITY,
        order,
        f"quantity must be a positive number (got {quantity})",
        actual=quantity if quantity.is_finite() else None,
    )


def check_prices(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    for name in ("limit_price", "stop_price", "reference_price"):
        price: Decimal | None = getattr(order, name)
        if price is not None and not (price.is_finite() and price > 0):
            return _deny(
                DenialCode.INVALID_PRICE,
                order,
                f"{name} must be a positive number (got {price})",
                actual=price if price.is_finite() else None,
            )
    return None


def check_reference_price(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if valuation_price(order) is not None:
        return None
    if order.limit_price is None and order.stop_price is None:
        message = f"a {order.order_type} order needs a reference_price to value its notional"
    else:
        message = (
            f"a {order.side} {order.order_type} order can fill beyond its own price: it needs a "
            f"reference_price to value its notional"
        )
    return _deny(DenialCode.MISSING_REFERENCE_PRICE, order, message)


# -- may the account trade it? ------------------------------------------------------------------


def check_trading_state(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if ctx.trading_state is TradingState.HALTED:
        return _deny(DenialCode.TRADING_HALTED, order, f"account {ctx.account} is halted")
    if ctx.trading_state is TradingState.ACTIVE:
        return None
    # REDUCING. The venue never lets a reduce-only order grow a position, so those pass here
    # (the reduce-only check still sees that they have something to reduce).
    if order.reduce_only or ctx.reduces(order):
        return None
    return _deny(
        DenialCode.TRADING_REDUCING,
        order,
        f"account {ctx.account} only takes orders that reduce exposure; "
        f"{order.side} {order.quantity} {order.symbol} would take the position from "
        f"{ctx.exposure.position_before(order)} to {ctx.exposure.position_after(order)}",
        actual=ctx.exposure.position_after(order),
    )


def check_reduce_only(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if not order.reduce_only:
        return None
    # The largest position on the other side this order could meet, approved entries included:
    # an exit proposed together with its entry (a bracket) has that entry to reduce. Reduce-only
    # orders of the same kind on this side that are open already take their share of it first:
    # together they must not be able to take more than the position, or they would flip it.
    to_reduce = ctx.exposure.worst_case_position(order.venue, order.symbol, order.side.opposite)
    pending = ctx.exposure.pending_reduce_only(order)
    room = max(ZERO, -to_reduce * order.side.sign - pending)
    if order.quantity <= room and reduces_exposure(to_reduce, to_reduce + signed_quantity(order)):
        return None
    return _deny(
        DenialCode.REDUCE_ONLY_INCREASES_EXPOSURE,
        order,
        f"reduce-only {order.side} {order.quantity} {order.symbol} would increase exposure: "
        f"the position it could reduce is {to_reduce}, of which open reduce-only orders already "
        f"take {pending}",
        limit=room,
        actual=order.quantity,
    )


# -- limits -------------------------------------------------------------------------------------


def check_max_notional_per_order(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits_of(order).max_notional_per_order
    if limit is None:
        return None
    price = valuation_price(order)
    if price is None:
        return check_reference_price(order, ctx)
    value = notional(order.quantity, price)
    if value <= limit:
        return None
    return _deny(
        DenialCode.MAX_NOTIONAL_PER_ORDER,
        order,
        f"order notional {value} exceeds the limit of {limit} per order",
        limit=limit,
        actual=value,
    )


def check_max_position_quantity(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_position_quantity
    if limit is None or ctx.reduces(order):
        return None
    after = abs(ctx.exposure.position_after(order))
    if after <= limit:
        return None
    return _deny(
        DenialCode.MAX_POSITION_QUANTITY,
        order,
        f"position in {order.symbol} would reach {after} (open orders included), "
        f"above the limit of {limit}",
        limit=limit,
        actual=after,
    )


def check_max_position_notional(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_position_notional
    if limit is None or ctx.reduces(order):
        return None
    price = valuation_price(order)
    if price is None:
        return check_reference_price(order, ctx)
    value = notional(ctx.exposure.position_after(order), price)
    if value <= limit:
        return None
    return _deny(
        DenialCode.MAX_POSITION_NOTIONAL,
        order,
        f"position in {order.symbol} would be worth {value} at {price} (open orders included), "
        f"above the limit of {limit}",
        limit=limit,
        actual=value,
    )


def check_max_open_positions(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_open_positions
    if limit is None or not ctx.exposure.opens_new_position(order):
        return None
    count = len(ctx.exposure.open_positions()) + 1
    if count <= limit:
        return None
    return _deny(
        DenialCode.MAX_OPEN_POSITIONS,
        order,
        f"{order.strategy} {order.symbol} would be open position number {count}, "
        f"above the limit of {limit}",
        limit=limit,
        actual=count,
    )


def check_max_position_percent_of_equity(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_position_percent_of_equity
    if limit is None or ctx.reduces(order):
        return None
    equity = _known_equity(order, ctx)
    if isinstance(equity, DenialReason):
        return equity
    price = valuation_price(order)
    if price is None:
        return check_reference_price(order, ctx)
    value = notional(ctx.exposure.position_after(order), price)
    share = value / equity * HUNDRED
    if share <= limit:
        return None
    return _deny(
        DenialCode.MAX_POSITION_PERCENT_OF_EQUITY,
        order,
        f"position in {order.symbol} would be worth {value}, {share:.6g}% of the equity of "
        f"{equity}, above the limit of {limit}%",
        limit=limit,
        actual=share,
    )


def check_max_gross_exposure(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_gross_exposure
    if limit is None or ctx.reduces(order):
        return None
    gross = ctx.gross_after(order)
    if isinstance(gross, DenialReason):
        return gross
    if gross <= limit:
        return None
    return _deny(
        DenialCode.MAX_GROSS_EXPOSURE,
        order,
        f"gross exposure would reach {gross} (open orders included), above the limit of {limit}",
        limit=limit,
        actual=gross,
    )


def check_max_leverage(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_leverage
    if limit is None or ctx.reduces(order):
        return None
    equity = _known_equity(order, ctx)
    if isinstance(equity, DenialReason):
        return equity
    gross = ctx.gross_after(order)
    if isinstance(gross, DenialReason):
        return gross
    leverage = gross / equity
    if leverage <= limit:
        return None
    return _deny(
        DenialCode.MAX_LEVERAGE,
        order,
        f"leverage would reach {leverage:.6g} (gross {gross} on equity {equity}), "
        f"above the limit of {limit}",
        limit=limit,
        actual=leverage,
    )


def check_max_symbol_concentration(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_symbol_concentration_percent
    if limit is None or ctx.reduces(order):
        return None
    gross = ctx.gross_after(order)
    if isinstance(gross, DenialReason):
        return gross
    floor = ctx.limits.concentration_min_gross_exposure or ZERO
    if gross == 0 or gross < floor:
        return None
    instrument = Instrument(order.venue, order.symbol)
    price = _exposure_price(instrument, order, ctx)
    if isinstance(price, DenialReason):
        return price
    share = ctx.exposure.largest_position(instrument, order) * price / gross * HUNDRED
    if share <= limit:
        return None
    return _deny(
        DenialCode.MAX_SYMBOL_CONCENTRATION,
        order,
        f"{order.symbol} would be {share:.6g}% of the gross exposure of {gross}, "
        f"above the limit of {limit}%",
        limit=limit,
        actual=share,
    )


def check_max_daily_traded_notional(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_daily_traded_notional
    if limit is None or ctx.reduces(order):
        return None
    price = valuation_price(order)
    if price is None:
        return check_reference_price(order, ctx)
    before = ctx.today.traded_notional + ctx.so_far.traded_notional
    traded = before + notional(order.quantity, price)
    if traded <= limit:
        return None
    return _deny(
        DenialCode.MAX_DAILY_TRADED_NOTIONAL,
        order,
        f"the notional approved today (UTC) would reach {traded}, above the limit of {limit}",
        limit=limit,
        actual=traded,
    )


def check_max_daily_realised_loss(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_daily_realised_loss
    if limit is None or ctx.reduces(order):
        return None
    loss = -ctx.today.realised_pnl
    if loss <= limit:
        return None
    return _deny(
        DenialCode.MAX_DAILY_REALISED_LOSS,
        order,
        f"the account has lost {loss} today (UTC, realised), more than the limit of {limit}",
        limit=limit,
        actual=loss,
    )


def check_max_drawdown(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_drawdown_percent
    if limit is None or ctx.reduces(order):
        return None
    equity = _known_equity(order, ctx, allow_non_positive=True)
    if isinstance(equity, DenialReason):
        return equity
    peak = peak_of(ctx.peak_equity, equity, ctx.limits.starting_capital or equity)
    drawdown = drawdown_percent(peak, equity)
    if drawdown <= limit:
        return None
    return _deny(
        DenialCode.MAX_DRAWDOWN,
        order,
        f"equity {equity} is {drawdown:.6g}% below its peak of {peak}, more than the limit of "
        f"{limit}%",
        limit=limit,
        actual=drawdown,
    )


def check_order_rate_account(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_orders_per_account
    if limit is None:
        return None
    count = ctx.recent_orders.account + ctx.so_far.orders + 1
    if count <= limit:
        return None
    return _deny(
        DenialCode.ORDER_RATE_ACCOUNT,
        order,
        f"order number {count} of account {ctx.account} within "
        f"{ctx.limits.order_rate_window_seconds}s, above the limit of {limit}",
        limit=limit,
        actual=count,
    )


def check_order_rate_strategy(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limits = ctx.limits_of(order)
    limit = limits.max_orders_per_strategy
    if limit is None:
        return None
    strategy = order.strategy
    count = (
        ctx.recent_orders.by_strategy.get(strategy, 0) + ctx.so_far.by_strategy.get(strategy, 0) + 1
    )
    if count <= limit:
        return None
    return _deny(
        DenialCode.ORDER_RATE_STRATEGY,
        order,
        f"order number {count} of strategy {strategy} within "
        f"{ctx.limits.order_rate_window_seconds}s, above the limit of {limit}",
        limit=limit,
        actual=count,
    )


def check_price_collar(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    collar = ctx.limits_of(order).price_collar_percent
    if collar is None:
        return None
    mark = ctx.mark(Instrument(order.venue, order.symbol))
    if isinstance(mark, UntrustedQuote):
        return _untrusted(order, mark)
    for name, price in _collared_prices(order):
        distance = abs(price - mark) / mark * HUNDRED
        if distance > collar:
            return _deny(
                DenialCode.PRICE_OUTSIDE_COLLAR,
                order,
                f"{name} {price} is {distance:.6g}% away from the last quote of {mark}, "
                f"outside the collar of {collar}%",
                limit=collar,
                actual=distance,
            )
    return None


def _collared_prices(order: OrderSpec) -> list[tuple[str, Decimal]]:
    # The prices the order can trade at now. A stop's prices are meant to be away from the market
    # (they trigger later), so only a plain limit order's limit price is held to the collar.
    prices = []
    if order.reference_price is not None:
        prices.append(("reference_price", order.reference_price))
    if order.order_type is OrderType.LIMIT and order.limit_price is not None:
        prices.append(("limit_price", order.limit_price))
    return prices


def check_stop_loss(
    proposal: OrderProposed, entries: Sequence[OrderSpec], ctx: RiskContext
) -> list[DenialReason]:
    """Where required, every entry needs protective stops in the same proposal covering it.

    ``entries`` are the proposal's orders that add exposure (neither reduce-only nor reducing); a
    protective stop is a reduce-only stop (or trailing stop) on the other side of the same
    strategy and instrument.
    """
    entered: dict[tuple[str, str, str, str], Decimal] = {}
    first_entry: dict[tuple[str, str, str, str], OrderSpec] = {}
    for order in entries:
        if ctx.limits_of(order).require_stop_loss:
            key = (order.strategy, order.venue, order.symbol, order.side.value)
            entered[key] = entered.get(key, ZERO) + order.quantity
            first_entry.setdefault(key, order)
    stops: dict[tuple[str, str, str, str], Decimal] = {}
    for order in proposal.orders:
        if order.reduce_only and is_stop(order):
            key = (order.strategy, order.venue, order.symbol, order.side.opposite.value)
            stops[key] = stops.get(key, ZERO) + order.quantity
    reasons = []
    for key, quantity in entered.items():
        covered = stops.get(key, ZERO)
        if covered < quantity:
            entry = first_entry[key]
            reasons.append(
                _deny(
                    DenialCode.STOP_LOSS_REQUIRED,
                    entry,
                    f"{entry.strategy} enters {entry.side} {quantity} {entry.symbol} with "
                    f"protective stops for {covered}: the proposal needs reduce-only stops "
                    f"covering the whole entry",
                    limit=quantity,
                    actual=covered,
                )
            )
    return reasons


# -- account values the checks share -------------------------------------------------------------


def _known_equity(
    order: OrderSpec, ctx: RiskContext, *, allow_non_positive: bool = False
) -> Decimal | DenialReason:
    equity = ctx.equity
    if equity is None:
        # Validated limits never get here; limits built in code could.
        return _deny(
            DenialCode.EQUITY_UNKNOWN, order, "no starting_capital is configured for the account"
        )
    if isinstance(equity, UnknownEquity):
        why = equity.why
        if isinstance(why, UntrustedQuote):
            return _untrusted(order, why, prefix="the equity cannot be valued: ")
        return _deny(DenialCode.EQUITY_UNKNOWN, order, str(equity))
    if equity.value <= 0 and not allow_non_positive:
        return _deny(
            DenialCode.NO_EQUITY,
            order,
            f"the account's equity is {equity.value}: nothing can be measured against it",
            actual=equity.value,
        )
    return equity.value


def _gross_of(order: OrderSpec, ctx: RiskContext) -> Decimal | DenialReason:
    """The gross notional at the worst case per side of every instrument, the order open too."""
    instruments = ctx.exposure.instruments() | {Instrument(order.venue, order.symbol)}
    gross = ZERO
    for instrument in instruments:
        size = ctx.exposure.largest_position(instrument, order)
        if size == 0:
            continue
        price = _exposure_price(instrument, order, ctx)
        if isinstance(price, DenialReason):
            return price
        gross += size * price
    return gross


def _exposure_price(
    instrument: Instrument, order: OrderSpec, ctx: RiskContext
) -> Decimal | DenialReason:
    """The highest of the trusted mark and the prices of open orders in the instrument.

    A held position needs its mark; an instrument with open orders only is valued at them.
    """
    top = ctx.exposure.top_open_price(instrument)
    prices = [] if top is None else [top]
    if instrument == (order.venue, order.symbol) and (own := valuation_price(order)) is not None:
        prices.append(own)
    mark = ctx.mark(instrument)
    if not isinstance(mark, UntrustedQuote):
        return max([mark, *prices])
    if ctx.exposure.net_position(*instrument) != 0 or not prices:
        return _untrusted(order, mark, prefix="the exposure cannot be valued: ")
    return max(prices)


def _untrusted(order: OrderSpec, why: UntrustedQuote, *, prefix: str = "") -> DenialReason:
    return _deny(
        DenialCode(why.problem.value),
        order,
        prefix + why.message,
        limit=why.limit,
        actual=why.actual,
    )


# Without a valid quantity and price the limit checks mean nothing, so they only run after these.
VALIDITY_CHECKS: tuple[Check, ...] = (
    check_account,
    check_order_id_unused,
    check_quantity,
    check_prices,
    check_reference_price,
)

LIMIT_CHECKS: tuple[Check, ...] = (
    check_trading_state,
    check_reduce_only,
    check_price_collar,
    check_max_notional_per_order,
    check_max_position_quantity,
    check_max_position_notional,
    check_max_position_percent_of_equity,
    check_max_open_positions,
    check_max_gross_exposure,
    check_max_leverage,
    check_max_symbol_concentration,
    check_max_daily_traded_notional,
    check_max_daily_realised_loss,
    check_max_drawdown,
    check_order_rate_account,
    check_order_rate_strategy,
)


def check_order(order: OrderSpec, ctx: RiskContext) -> list[DenialReason]:
    """Every reason to deny one order, given what the context already holds."""
    invalid = [reason for check in VALIDITY_CHECKS if (reason := check(order, ctx))]
    if invalid:
        return invalid
    return [reason for check in LIMIT_CHECKS if (reason := check(order, ctx))]


def evaluate(proposal: OrderProposed, ctx: RiskContext) -> Decision:
    """Approve or deny a whole proposal.

    ``ctx`` is left as it was: once the decision is published, reserve the approved orders in it.
    """
    reasons: list[DenialReason] = []
    if proposal.account != ctx.account:
        reasons.append(
            _deny(
                DenialCode.ACCOUNT_MISMATCH,
                None,
                f"proposal {proposal.proposal_id} is for account {proposal.account!r}, "
                f"not {ctx.account!r}",
            )
        )
    working = replace(ctx, exposure=ctx.exposure.copy(), so_far=ProposalSoFar())
    entries = []
    for order in proposal.orders:
        order_reasons = check_order(order, working)
        reasons.extend(order_reasons)
        if not any(r.code in _UNRESERVABLE for r in order_reasons):
            if not (order.reduce_only or working.reduces(order)):
                entries.append(order)
            # Later orders in the proposal are judged as if this one were approved too.
            working.exposure.reserve(order)
            working.so_far.add(order)
    reasons.extend(check_stop_loss(proposal, entries, working))
    return Decision(tuple(reasons))


# An order that failed one of these cannot be counted: it is malformed or already counted.
_UNRESERVABLE = frozenset(
    {
        DenialCode.ACCOUNT_MISMATCH.value,
        DenialCode.DUPLICATE_ORDER_ID.value,
        DenialCode.INVALID_QUANTITY.value,
    }
)
