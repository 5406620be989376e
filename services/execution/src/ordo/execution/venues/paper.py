"""The paper venue: one account's books, matched against a repeatable price feed.

Prices come from a seeded random walk or from recorded OHLCV bars replayed (``price_feed``);
trading moves them (market impact). An order reaches the book after a latency drawn between the
configured bounds, at the price of that moment.

- A market order, or a marketable limit, takes liquidity: it walks the book's levels (one fill
  per level), each level's price worse by the slippage model for the size taken so far, and
  pays the taker fee. A limit order stops walking at its limit; what is left rests (or expires:
  IOC; FOK fills whole or not at all).
- A resting limit fills at its limit as maker once the price reaches it, at most at the
  market's maker rate per second (partial fills).
- Stop, stop-limit and trailing-stop orders wait untriggered; once the price reaches the stop
  (or falls back from its best by the trailing distance) the order is TRIGGERED and becomes a
  market order, or the stop-limit's limit order.
- A reduce-only order is checked again whenever it fills: it never grows or flips a position;
  what could no longer reduce it is canceled.

Spot semantics: buys need the quote currency (resting buys hold it back); selling more than is
held is allowed and leaves a short (positions are signed base quantities). Fees are paid in the
quote currency.

Every draw (faults, latency) comes from the seeded sequence, and matching only depends on the
prices at the times it runs: the same seed, feed and call times give the same fills. Every
method runs to completion without awaiting, so within one event loop no two calls interleave:
there is no check-then-act race on the books.
"""

import hashlib
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from ordo.contracts.enums import ExecutionStatus, OrderType, Side, TimeInForce
from ordo.contracts.execution import Fill, VenueBalance, VenuePosition
from ordo.contracts.orders import OrderSpec
from ordo.execution.errors import (
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    VenueTimeout,
    VenueUnavailable,
)
from ordo.execution.venues.base import MarketRules, VenueFill, VenueOrder
from ordo.execution.venues.paper_config import (
    PaperMarket,
    PaperVenueConfig,
    RecordedPrices,
)
from ordo.execution.venues.paper_pricing import (
    book_levels,
    faded,
    moved_by_trade,
    slippage_fraction,
    taker_price,
)
from ordo.execution.venues.paper_state import PaperOrder, PaperVenueState, PriceMove
from ordo.execution.venues.price_feed import (
    PriceFeed,
    RandomWalkFeed,
    RecordedFeed,
    load_ohlcv_csv,
)

__all__ = [
    "PaperMarket",
    "PaperOrder",
    "PaperPrices",
    "PaperVenue",
    "PaperVenueConfig",
    "PaperVenueState",
    "RandomWalkFeed",
    "paper_venue_factory",
]

VENUE_NAME = "paper"
_STOP_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})
_IMMEDIATE_ONLY = frozenset({TimeInForce.IOC, TimeInForce.FOK})
# What makes two creates with one client order id the same order (a retry) and not a clash.
_ORDER_IDENTITY = (
    "symbol",
    "side",
    "order_type",
    "time_in_force",
    "quantity",
    "limit_price",
    "stop_price",
    "trailing_amount",
    "trailing_percent",
    "reduce_only",
    "post_only",
)
_TWO_TO_64 = Decimal(1 << 64)
_NO_LONGER_REDUCES = "reduce-only order would no longer reduce the position"

Clock = Callable[[], datetime]


class PaperVenue:
    """One account on the paper venue; implements :class:`ordo.execution.venues.base.Venue`."""

    def __init__(
        self,
        config: PaperVenueConfig,
        clock: Clock,
        rng_seed: int,
        *,
        state: PaperVenueState | None = None,
        feed: PriceFeed | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._seed = rng_seed
        # Explicit configuration wins; otherwise the feed keeps the origin it started with.
        self._feed_origin = config.feed_origin or (
            state.feed_origin if state else _whole_second(clock())
        )
        self._feed = feed or _price_feed(config, rng_seed, self._feed_origin)
        self._markets = dict(config.markets)
        self._rules = {symbol: market.rules for symbol, market in config.markets.items()}
        # When matching last ran: a resting order's maker liquidity accrues from then on.
        self._last_match: datetime | None = None
        self._restore(
            state
            or PaperVenueState.opening(
                feed_origin=self._feed_origin,
                quote_currency=config.quote_currency,
                balance=config.starting_balance,
            )
        )

    # -- the Venue port ------------------------------------------------------------------------

    async def create_order(self, spec: OrderSpec) -> VenueOrder:
        now = self._begin_call("create_order")
        existing = self._orders.get(spec.order_id)
        order = self._same_order(existing, spec) if existing else self._place(spec, now)
        # An injected timeout strikes after the order exists: the caller cannot tell whether it
        # was placed and has to look it up by its client order id.
        self._maybe_time_out("create_order")
        return order.to_venue_order()

    async def cancel_order(self, order_id: str, symbol: str) -> VenueOrder:
        now = self._begin_call("cancel_order")
        order = self._find(order_id, symbol)
        if order.is_open:
            order = self._finish(order, ExecutionStatus.CANCELED, "canceled on request", now)
            self._store(order)
        self._maybe_time_out("cancel_order")
        return order.to_venue_order()

    async def fetch_order(self, order_id: str, symbol: str) -> VenueOrder:
        self._begin_read("fetch_order")
        return self._find(order_id, symbol).to_venue_order()

    async def open_orders(self) -> list[VenueOrder]:
        self._begin_read("open_orders")
        return [order.to_venue_order() for order in self._orders.values() if order.is_open]

    async def recent_fills(self, since: datetime) -> list[VenueFill]:
        self._begin_read("recent_fills")
        fills = [
            VenueFill(
                order_id=order.spec.order_id,
                venue_order_id=order.venue_order_id,
                symbol=order.spec.symbol,
                side=order.spec.side,
                fill=fill,
            )
            for order in self._orders.values()
            for fill in order.fills
            if fill.filled_at >= since
        ]
        return sorted(fills, key=lambda venue_fill: venue_fill.fill.filled_at)

    async def balances(self) -> list[VenueBalance]:
        self._begin_read("balances")
        return [
            VenueBalance(currency=currency, total=total, free=total - self._reserved(currency))
            for currency, total in sorted(self._balances.items())
        ]

    async def positions(self) -> list[VenuePosition]:
        self._begin_read("positions")
        return [
            VenuePosition(symbol=symbol, quantity=quantity)
            for symbol, quantity in sorted(self._positions.items())
            if quantity != 0
        ]

    async def market_rules(self, symbol: str) -> MarketRules:
        return self._market_rules(symbol)

    async def markets(self) -> list[str]:
        return sorted(self._rules)

    # -- paper-only ----------------------------------------------------------------------------

    def match(self, now: datetime) -> list[VenueOrder]:
        """Trigger stops and fill resting orders the price has reached; return what changed."""
        changed = []
        for resting in list(self._orders.values()):
            if not resting.is_open or resting.created_at > now:
                continue  # finished, or still on its way to the book
            order = self._advance(resting, self.price(resting.spec.symbol, now), now)
            if order is not resting:
                self._store(order)
                changed.append(order.to_venue_order())
        self._last_match = now
        return changed

    def price(self, symbol: str, at: datetime) -> Decimal:
        """The venue's price: the feed's, moved by the market impact of recent trades."""
        rules = self._market_rules(symbol)
        price = self._feed.price(symbol, at)
        move = faded(self._impact.get(symbol), self._config.impact, at)
        if move == 0:
            return price
        ticks = (price * (1 + move) / rules.tick_size).to_integral_value(ROUND_HALF_EVEN)
        return max(ticks, Decimal(1)) * rules.tick_size

    def snapshot(self) -> PaperVenueState:
        return PaperVenueState(
            feed_origin=self._feed_origin,
            balances=dict(self._balances),
            positions=dict(self._positions),
            orders=tuple(self._orders.values()),
            closed_order_ids=tuple(self._closed),
            orders_created=self._orders_created,
            fault_draws=self._draws,
            impact=dict(self._impact),
        )

    # -- placing -------------------------------------------------------------------------------

    def _place(self, spec: OrderSpec, now: datetime) -> PaperOrder:
        rules = self._market_rules(spec.symbol)
        arrival = now + self._latency()
        price = self.price(spec.symbol, arrival)
        if violation := self._rule_violation(spec, rules, price):
            raise InvalidOrder(f"order {spec.order_id}: {violation}", venue=VENUE_NAME)
        marketable = spec.order_type is OrderType.MARKET or (
            spec.order_type is OrderType.LIMIT and _limit_reached(spec, price)
        )
        if spec.post_only and marketable:
            raise OrderRejected(
                f"post-only order {spec.order_id} would take liquidity at {price}", venue=VENUE_NAME
            )
        if self._chance(self._config.rejection_probability):
            raise OrderRejected(f"order {spec.order_id} rejected (injected)", venue=VENUE_NAME)
        if marketable:
            order = self._place_taker(spec, price, arrival)
        elif spec.order_type is OrderType.LIMIT and spec.time_in_force in _IMMEDIATE_ONLY:
            order = self._new_order(spec, arrival)
            reason = f"{spec.time_in_force.upper()} limit order was not marketable"
            order = self._finish(order, ExecutionStatus.EXPIRED, reason, arrival)
        else:
            self._check_funds(spec, spec.quantity * self._reservation_price(spec, price))
            order = self._new_order(spec, arrival, anchor=price)
            # A stop already reached triggers on arrival (it protects a position: better late).
            order = self._advance(order, price, arrival)
        self._store(order)
        return order

    def _place_taker(self, spec: OrderSpec, price: Decimal, at: datetime) -> PaperOrder:
        """A market order or a marketable limit: take the book now; a limit rests the rest."""
        limit = spec.limit_price if spec.order_type is OrderType.LIMIT else None
        levels = self._walk_book(spec, spec.quantity, price, limit)
        taken = sum((quantity for quantity, _ in levels), Decimal(0))
        if spec.time_in_force is TimeInForce.FOK and taken < spec.quantity:
            order = self._new_order(spec, at)
            reason = f"FOK order could fill only {taken} of {spec.quantity} within its limit"
            return self._finish(order, ExecutionStatus.EXPIRED, reason, at)
        rests = limit is not None and spec.time_in_force not in _IMMEDIATE_ONLY
        cost = sum((q * p * (1 + self._config.taker_fee_rate) for q, p in levels), Decimal(0))
        if rests and limit is not None:
            cost += (spec.quantity - taken) * limit * (1 + self._config.maker_fee_rate)
        self._check_funds(spec, cost)
        order = self._apply_fills(self._new_order(spec, at), levels, "taker", at)
        if order.remaining_quantity > 0 and not rests:
            reason = f"{spec.time_in_force.upper()} limit order filled {taken} within its limit"
            order = self._finish(order, ExecutionStatus.EXPIRED, reason, at)
        return order

    def _new_order(
        self, spec: OrderSpec, at: datetime, *, anchor: Decimal | None = None
    ) -> PaperOrder:
        self._orders_created += 1
        return PaperOrder(
            spec=spec,
            venue_order_id=f"{VENUE_NAME}-{self._orders_created}",
            status=ExecutionStatus.ACCEPTED,
            created_at=at,
            updated_at=at,
            trail_anchor=anchor if spec.order_type is OrderType.TRAILING_STOP else None,
        )

    def _rule_violation(self, spec: OrderSpec, rules: MarketRules, price: Decimal) -> str | None:
        for name in ("limit_price", "stop_price", "trailing_amount"):
            value = getattr(spec, name)
            if value is not None and (violation := rules.price_violation(value)):
                return violation
        if spec.order_type is OrderType.TRAILING_STOP and (
            (spec.trailing_amount is None) == (spec.trailing_percent is None)
        ):
            return "a trailing stop needs a trailing_amount or a trailing_percent (one of them)"
        return (
            rules.quantity_violation(spec.quantity)
            or rules.notional_violation(spec.quantity, spec.limit_price or spec.stop_price or price)
            or self._reduce_only_violation(spec)
        )

    def _reduce_only_violation(self, spec: OrderSpec) -> str | None:
        if spec.reduce_only and spec.quantity > self._reducible(spec):
            position = self._positions.get(spec.symbol, Decimal(0))
            return (
                f"reduce-only {spec.side} of {spec.quantity} would not reduce the position "
                f"{position} in {spec.symbol}"
            )
        return None

    def _check_funds(self, spec: OrderSpec, notional_with_fees: Decimal) -> None:
        """A buy must be paid for, fees included, from quote not held back for resting buys."""
        if spec.side is not Side.BUY:
            return
        quote = _quote_currency(spec.symbol)
        free = self._balances.get(quote, Decimal(0)) - self._reserved(quote, spec.order_id)
        if notional_with_fees > free:
            raise InsufficientFunds(
                f"buying {spec.quantity} {spec.symbol} needs {notional_with_fees} {quote}, "
                f"{free} is free",
                venue=VENUE_NAME,
            )

    # -- matching ------------------------------------------------------------------------------

    def _advance(self, order: PaperOrder, price: Decimal, now: datetime) -> PaperOrder:
        """What ``order`` becomes at ``price``: triggered, filled (in part), or as it was."""
        spec = order.spec
        if spec.order_type in _STOP_TYPES and not order.triggered:
            order = self._trail(order, price)
            if not self._stop_reached(order, price):
                return order
            order = order.model_copy(
                update={"triggered": True, "status": ExecutionStatus.TRIGGERED, "updated_at": now}
            )
            if spec.order_type is not OrderType.STOP_LIMIT:
                return self._take_on_trigger(order, price, None, now)
            if _limit_reached(spec, price):
                return self._take_on_trigger(order, price, spec.limit_price, now)
            return order
        if spec.limit_price is not None and _limit_reached(spec, price):
            return self._make(order, now)
        return order

    def _take_on_trigger(
        self, order: PaperOrder, price: Decimal, limit: Decimal | None, now: datetime
    ) -> PaperOrder:
        """A triggered stop takes the book, if the account can still pay for it."""
        fillable = self._fillable(order)
        if fillable == 0:
            return self._finish(order, ExecutionStatus.CANCELED, _NO_LONGER_REDUCES, now)
        levels = self._walk_book(order.spec, fillable, price, limit)
        if not levels:
            return order  # a stop-limit whose limit even the best level is beyond: it rests
        cost = sum((q * p * (1 + self._config.taker_fee_rate) for q, p in levels), Decimal(0))
        try:
            self._check_funds(order.spec, cost)
        except InsufficientFunds as refused:
            reason = f"canceled when triggered: {refused.detail}"
            return self._finish(order, ExecutionStatus.CANCELED, reason, now)
        order = self._apply_fills(order, levels, "taker", now)
        return self._cancel_what_cannot_reduce(order, now)

    def _make(self, order: PaperOrder, now: datetime) -> PaperOrder:
        """A resting limit the price has reached: fill at the limit, as fast as makers fill."""
        quantity = min(self._fillable(order), self._maker_liquidity(order, now))
        if quantity <= 0:
            if self._fillable(order) == 0:
                return self._finish(order, ExecutionStatus.CANCELED, _NO_LONGER_REDUCES, now)
            return order
        order = self._apply_fills(order, [(quantity, _limit_price(order.spec))], "maker", now)
        return self._cancel_what_cannot_reduce(order, now)

    def _maker_liquidity(self, order: PaperOrder, now: datetime) -> Decimal:
        market = self._markets[order.spec.symbol]
        rate = market.maker_quantity_per_second
        if rate is None:
            return order.remaining_quantity
        since = max(order.created_at, self._last_match or order.created_at)
        available = rate * Decimal((now - since).total_seconds())
        steps = (available / market.step_size).to_integral_value(ROUND_FLOOR)
        return steps * market.step_size

    def _fillable(self, order: PaperOrder) -> Decimal:
        """What may fill now: all that is left, or for a reduce-only order what still reduces."""
        if not order.spec.reduce_only:
            return order.remaining_quantity
        return min(order.remaining_quantity, self._reducible(order.spec))

    def _reducible(self, spec: OrderSpec) -> Decimal:
        """How much of the position in the symbol an order on this side would reduce."""
        position = self._positions.get(spec.symbol, Decimal(0))
        return abs(position) if position * spec.side.sign < 0 else Decimal(0)

    def _cancel_what_cannot_reduce(self, order: PaperOrder, now: datetime) -> PaperOrder:
        if order.is_open and order.spec.reduce_only and self._fillable(order) == 0:
            return self._finish(order, ExecutionStatus.CANCELED, _NO_LONGER_REDUCES, now)
        return order

    def _trail(self, order: PaperOrder, price: Decimal) -> PaperOrder:
        """A trailing stop follows the best price: the highest for a sell, the lowest for a buy."""
        if order.spec.order_type is not OrderType.TRAILING_STOP or order.trail_anchor is None:
            return order
        better = (
            price > order.trail_anchor
            if order.spec.side is Side.SELL
            else (price < order.trail_anchor)
        )
        return order.model_copy(update={"trail_anchor": price}) if better else order

    def _stop_reached(self, order: PaperOrder, price: Decimal) -> bool:
        stop = self._stop_level(order.spec, order.trail_anchor)
        return price >= stop if order.spec.side is Side.BUY else price <= stop

    def _stop_level(self, spec: OrderSpec, anchor: Decimal | None) -> Decimal:
        if spec.order_type is not OrderType.TRAILING_STOP:
            return _stop_price(spec)
        if anchor is None:
            raise InvalidOrder(f"trailing stop {spec.order_id} has no price to trail")
        if spec.trailing_amount is not None:
            distance = spec.trailing_amount
        else:
            distance = anchor * (spec.trailing_percent or Decimal(0)) / 100
        return anchor + spec.side.sign * distance

    def _reservation_price(self, spec: OrderSpec, anchor: Decimal | None) -> Decimal:
        """The price a resting order holds quote back at (with its fee): what it may pay.

        ``anchor``: a trailing stop's best price so far, which places its stop.
        """
        if spec.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            return _limit_price(spec) * (1 + self._config.maker_fee_rate)
        stop = self._stop_level(spec, anchor)
        # A stop fills as a taker beyond its stop: hold back for the slippage of its size too.
        slip = slippage_fraction(
            self._config.slippage, spec.quantity * stop, self._markets[spec.symbol].depth
        )
        return stop * (1 + slip) * (1 + self._config.taker_fee_rate)

    # -- filling -------------------------------------------------------------------------------

    def _walk_book(
        self, spec: OrderSpec, quantity: Decimal, price: Decimal, limit: Decimal | None
    ) -> list[tuple[Decimal, Decimal]]:
        """(quantity, price) per level a taker of ``quantity`` takes, stopping at ``limit``."""
        market = self._markets[spec.symbol]
        levels: list[tuple[Decimal, Decimal]] = []
        taken = Decimal(0)
        if quantity <= 0:
            return levels
        for level in book_levels(quantity, market.level_quantity):
            fraction = slippage_fraction(
                self._config.slippage, (taken + level) * price, market.depth
            )
            level_price = taker_price(price, spec.side, fraction, market.tick_size)
            if limit is not None and (level_price - limit) * spec.side.sign > 0:
                break
            levels.append((level, level_price))
            taken += level
        return levels

    def _apply_fills(
        self,
        order: PaperOrder,
        levels: list[tuple[Decimal, Decimal]],
        liquidity: str,
        now: datetime,
    ) -> PaperOrder:
        """Book the fills in the balances and on the order; takers move the market."""
        spec = order.spec
        fills = list(order.fills)
        for quantity, price in levels:
            notional = quantity * price
            fee = notional * self._fee_rate(liquidity)
            fills.append(
                Fill(
                    fill_id=f"{order.venue_order_id}-{len(fills) + 1}",
                    quantity=quantity,
                    price=price,
                    fee=fee,
                    fee_currency=_quote_currency(spec.symbol),
                    liquidity=liquidity,
                    filled_at=now,
                )
            )
            self._settle(spec.symbol, spec.side, quantity, notional, fee)
            if liquidity == "taker":
                self._move_market(spec, notional, now)
        filled = sum((fill.quantity for fill in fills), Decimal(0))
        status = (
            ExecutionStatus.FILLED if filled >= spec.quantity else ExecutionStatus.PARTIALLY_FILLED
        )
        return order.model_copy(update={"fills": tuple(fills), "status": status, "updated_at": now})

    def _move_market(self, spec: OrderSpec, notional: Decimal, now: datetime) -> None:
        moved = moved_by_trade(
            self._impact.get(spec.symbol),
            self._config.impact,
            spec.side,
            notional,
            self._markets[spec.symbol].depth,
            now,
        )
        if moved is not None:
            self._impact[spec.symbol] = moved

    def _settle(
        self, symbol: str, side: Side, quantity: Decimal, notional: Decimal, fee: Decimal
    ) -> None:
        base, quote = _base_currency(symbol), _quote_currency(symbol)
        signed = side.sign * quantity
        position = self._positions.get(symbol, Decimal(0)) + signed
        if position:
            self._positions[symbol] = position
        else:
            self._positions.pop(symbol, None)
        self._balances[base] = self._balances.get(base, Decimal(0)) + signed
        self._balances[quote] = self._balances.get(quote, Decimal(0)) - side.sign * notional - fee

    def _finish(
        self, order: PaperOrder, status: ExecutionStatus, reason: str, now: datetime
    ) -> PaperOrder:
        return order.model_copy(update={"status": status, "reason": reason, "updated_at": now})

    def _reserved(self, currency: str, excluding: str | None = None) -> Decimal:
        """Quote held back for resting buys, enough to pay for them and their fees."""
        return sum(
            (
                order.remaining_quantity * self._reservation_price(order.spec, order.trail_anchor)
                for order in self._orders.values()
                if order.is_open
                and order.spec.side is Side.BUY
                and order.spec.order_id != excluding
                and _quote_currency(order.spec.symbol) == currency
            ),
            Decimal(0),
        )

    # -- the books -----------------------------------------------------------------------------

    def _restore(self, state: PaperVenueState) -> None:
        unknown = {order.spec.symbol for order in state.orders if order.is_open} - set(self._rules)
        if unknown:
            raise ValueError(
                f"the saved paper books hold open orders in markets that are no longer "
                f"configured: {sorted(unknown)}"
            )
        self._balances = dict(state.balances)
        self._positions = dict(state.positions)
        self._orders = {order.spec.order_id: order for order in state.orders}
        self._closed = deque(state.closed_order_ids)
        self._orders_created = state.orders_created
        self._draws = state.fault_draws
        self._impact: dict[str, PriceMove] = dict(state.impact)

    def _store(self, order: PaperOrder) -> None:
        order_id = order.spec.order_id
        self._orders[order_id] = order
        if not order.is_open and order_id not in self._closed:
            self._closed.append(order_id)
            # Keep the books bounded: the oldest finished orders are forgotten first.
            while len(self._closed) > self._config.max_closed_orders:
                del self._orders[self._closed.popleft()]

    def _find(self, order_id: str, symbol: str) -> PaperOrder:
        order = self._orders.get(order_id)
        if order is None or order.spec.symbol != symbol:
            raise OrderNotFound(
                f"no order with client order id {order_id!r} in {symbol}", venue=VENUE_NAME
            )
        return order

    def _same_order(self, existing: PaperOrder, spec: OrderSpec) -> PaperOrder:
        """A repeated create is a retry: it gets the order it already made, never a second one."""
        differing = [
            field
            for field in _ORDER_IDENTITY
            if getattr(existing.spec, field) != getattr(spec, field)
        ]
        if differing:
            raise InvalidOrder(
                f"client order id {spec.order_id!r} is already used by a different order "
                f"(it differs in {', '.join(differing)})",
                venue=VENUE_NAME,
            )
        return existing

    # -- rules and fees ------------------------------------------------------------------------

    def _market_rules(self, symbol: str) -> MarketRules:
        rules = self._rules.get(symbol)
        if rules is None:
            known = ", ".join(sorted(self._rules))
            raise InvalidOrder(
                f"the paper venue has no market {symbol!r} (it has {known})", venue=VENUE_NAME
            )
        return rules

    def _fee_rate(self, liquidity: str) -> Decimal:
        if liquidity == "maker":
            return self._config.maker_fee_rate
        return self._config.taker_fee_rate

    # -- seeded draws: faults and latency ------------------------------------------------------

    def _begin_call(self, call: str) -> datetime:
        """Inject a failure if one is due, then let resting orders catch up with the price."""
        if call in self._config.fault_calls and self._chance(self._config.failure_probability):
            raise VenueUnavailable(f"{call} failed (injected)", venue=VENUE_NAME)
        now = self._clock()
        self.match(now)
        return now

    def _begin_read(self, call: str) -> None:
        # A read has no effect, so an injected timeout may as well strike before it.
        self._begin_call(call)
        self._maybe_time_out(call)

    def _maybe_time_out(self, call: str) -> None:
        if call in self._config.fault_calls and self._chance(self._config.timeout_probability):
            raise VenueTimeout(f"{call} timed out (injected)", venue=VENUE_NAME)

    def _latency(self) -> timedelta:
        low, high = self._config.latency_min_ms, self._config.latency_max_ms
        if low == high:
            return timedelta(milliseconds=low)
        spread = (self._draw() * (high - low + 1)).to_integral_value(ROUND_FLOOR)
        return timedelta(milliseconds=low + int(spread))

    def _chance(self, probability: Decimal) -> bool:
        # No draw when nothing can happen: adding a fault later keeps the other draws in place.
        return probability != 0 and self._draw() < probability

    def _draw(self) -> Decimal:
        """The next number in [0, 1) of the seeded sequence; counted so a restart carries on."""
        self._draws += 1
        digest = hashlib.blake2b(
            f"{self._seed}/faults/{self._draws}".encode(), digest_size=8
        ).digest()
        return Decimal(int.from_bytes(digest, "big")) / _TWO_TO_64


class PaperPrices:
    """The paper venue's prices, one walk (or replay) for every account and for its quotes.

    Its origin is the configured ``feed_origin``; else the oldest origin of the saved books (the
    prices accounts already trade at); else the first time it is asked for. It is decided on first
    use, which comes after the saved books are loaded. Market impact is an account's own (its
    trades move its prices): a quote is the feed's price, without any account's impact.
    """

    def __init__(
        self,
        config: PaperVenueConfig,
        rng_seed: int,
        clock: Clock,
        saved_origins: Callable[[], Iterable[datetime]] = tuple,
    ) -> None:
        self._config = config
        self._seed = rng_seed
        self._clock = clock
        self._saved_origins = saved_origins
        self._feed: PriceFeed | None = None
        self._origin: datetime | None = None

    @property
    def origin(self) -> datetime:
        if self._origin is None:
            self._origin = self._config.feed_origin or min(
                self._saved_origins(), default=_whole_second(self._clock())
            )
        return self._origin

    @property
    def symbols(self) -> list[str]:
        return sorted(self._config.markets)

    def price(self, symbol: str, at: datetime) -> Decimal:
        if self._feed is None:
            self._feed = _price_feed(self._config, self._seed, self.origin)
        return self._feed.price(symbol, at)


def paper_venue_factory(
    config: PaperVenueConfig,
    clock: Clock,
    rng_seed: int,
    saved_state: Callable[[str], PaperVenueState | None] = lambda account: None,
    *,
    prices: PaperPrices | None = None,
) -> Callable[[str], PaperVenue]:
    """A registry factory: one paper venue per account, restored from its saved books if any.

    A new account trades at ``prices`` (their origin) when given: the prices the quotes show.
    """

    def create(account: str) -> PaperVenue:
        state = saved_state(account)
        if state is None and prices is not None:
            shared = config.model_copy(update={"feed_origin": prices.origin})
            return PaperVenue(shared, clock, rng_seed)
        return PaperVenue(config, clock, rng_seed, state=state)

    return create


def _price_feed(config: PaperVenueConfig, seed: int, origin: datetime) -> PriceFeed:
    tick_sizes = {symbol: market.tick_size for symbol, market in config.markets.items()}
    if isinstance(config.prices, RecordedPrices):
        return RecordedFeed(
            {symbol: load_ohlcv_csv(config.prices.files[symbol]) for symbol in config.markets},
            origin=origin,
            speed=config.prices.speed,
            tick_sizes=tick_sizes,
        )
    return RandomWalkFeed(
        seed,
        {symbol: market.start_price for symbol, market in config.markets.items()},
        config.volatility,
        origin=origin,
        tick_sizes=tick_sizes,
    )


def _limit_reached(spec: OrderSpec, price: Decimal) -> bool:
    if spec.limit_price is None:
        return False
    if spec.side is Side.BUY:
        return price <= spec.limit_price
    return price >= spec.limit_price


def _base_currency(symbol: str) -> str:
    return symbol.partition("/")[0]


def _quote_currency(symbol: str) -> str:
    # 'BTC/USDT:USDT' (a perpetual) settles in the part after the colon, the same currency here.
    return symbol.partition("/")[2].partition(":")[0]


def _limit_price(spec: OrderSpec) -> Decimal:
    # Unreachable for orders without one: only limit types rest at a limit, and OrderSpec
    # demands their price.
    if spec.limit_price is None:
        raise InvalidOrder(f"order {spec.order_id} has no limit price", venue=VENUE_NAME)
    return spec.limit_price


def _stop_price(spec: OrderSpec) -> Decimal:
    if spec.stop_price is None:
        raise InvalidOrder(f"order {spec.order_id} has no stop price", venue=VENUE_NAME)
    return spec.stop_price


def _whole_second(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(microsecond=0)
