"""The paper venue: one account's books, filled against a repeatable random-walk price.

Market orders fill at once, in full, at the feed price, paying the taker fee in the quote
currency. A limit order that is marketable fills the same way (at the feed price, which is at
least as good as its limit); otherwise it rests until the price reaches its limit, then fills at
the limit as maker. Spot semantics: buys need the quote currency; selling more than is held is
allowed and leaves a short (positions are signed base quantities).

Every method runs to completion without awaiting, so within one event loop no two calls can
interleave: there is no check-then-act race on the books.
"""

import hashlib
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

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
from ordo.execution.venues.paper_config import PaperMarket, PaperVenueConfig
from ordo.execution.venues.paper_state import PaperOrder, PaperVenueState
from ordo.execution.venues.price_feed import PriceFeed, RandomWalkFeed

__all__ = [
    "PaperMarket",
    "PaperOrder",
    "PaperVenue",
    "PaperVenueConfig",
    "PaperVenueState",
    "RandomWalkFeed",
    "paper_venue_factory",
]

VENUE_NAME = "paper"
_SUPPORTED_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT})
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
    "reduce_only",
    "post_only",
)
_TWO_TO_64 = Decimal(1 << 64)

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
        # Explicit configuration wins; otherwise the walk keeps the origin it started with.
        self._feed_origin = config.feed_origin or (
            state.feed_origin if state else _whole_second(clock())
        )
        self._feed = feed or RandomWalkFeed(
            rng_seed,
            {symbol: market.start_price for symbol, market in config.markets.items()},
            config.volatility,
            origin=self._feed_origin,
            tick_sizes={symbol: market.tick_size for symbol, market in config.markets.items()},
        )
        self._rules = {symbol: market.rules for symbol, market in config.markets.items()}
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
            order = order.model_copy(
                update={
                    "status": ExecutionStatus.CANCELED,
                    "reason": "canceled on request",
                    "updated_at": now,
                }
            )
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
        """Fill the resting limit orders whose limit the price has reached; return them."""
        filled = []
        for resting in list(self._orders.values()):
            if not resting.is_open:
                continue
            if self._limit_reached(resting.spec, self._feed.price(resting.spec.symbol, now)):
                order = self._fill(resting, _limit_price(resting.spec), "maker", now)
                self._store(order)
                filled.append(order.to_venue_order())
        return filled

    def price(self, symbol: str, at: datetime) -> Decimal:
        """The feed price the venue fills market orders at."""
        self._market_rules(symbol)
        return self._feed.price(symbol, at)

    def snapshot(self) -> PaperVenueState:
        return PaperVenueState(
            feed_origin=self._feed_origin,
            balances=dict(self._balances),
            positions=dict(self._positions),
            orders=tuple(self._orders.values()),
            closed_order_ids=tuple(self._closed),
            orders_created=self._orders_created,
            fault_draws=self._fault_draws,
        )

    # -- placing and filling -------------------------------------------------------------------

    def _place(self, spec: OrderSpec, now: datetime) -> PaperOrder:
        rules = self._market_rules(spec.symbol)
        price = self._feed.price(spec.symbol, now)
        if violation := self._rule_violation(spec, rules, price):
            raise InvalidOrder(f"order {spec.order_id}: {violation}", venue=VENUE_NAME)
        marketable = spec.order_type is OrderType.MARKET or self._limit_reached(spec, price)
        if spec.post_only and marketable:
            raise OrderRejected(
                f"post-only order {spec.order_id} would take liquidity at {price}", venue=VENUE_NAME
            )
        if self._chance(self._config.rejection_probability):
            raise OrderRejected(f"order {spec.order_id} rejected (injected)", venue=VENUE_NAME)
        if marketable:
            self._check_funds(spec, price, "taker")
            order = self._fill(self._new_order(spec, now), price, "taker", now)
        elif spec.time_in_force in _IMMEDIATE_ONLY:
            order = self._new_order(spec, now).model_copy(
                update={
                    "status": ExecutionStatus.EXPIRED,
                    "reason": f"{spec.time_in_force.upper()} limit order was not marketable",
                }
            )
        else:
            self._check_funds(spec, _limit_price(spec), "maker")
            order = self._new_order(spec, now)
        self._store(order)
        return order

    def _new_order(self, spec: OrderSpec, now: datetime) -> PaperOrder:
        self._orders_created += 1
        return PaperOrder(
            spec=spec,
            venue_order_id=f"{VENUE_NAME}-{self._orders_created}",
            status=ExecutionStatus.ACCEPTED,
            created_at=now,
            updated_at=now,
        )

    def _rule_violation(self, spec: OrderSpec, rules: MarketRules, price: Decimal) -> str | None:
        if spec.order_type not in _SUPPORTED_TYPES:
            return f"the paper venue does not take {spec.order_type} orders; the OMS emulates them"
        if spec.limit_price is not None and (violation := rules.price_violation(spec.limit_price)):
            return violation
        return (
            rules.quantity_violation(spec.quantity)
            or rules.notional_violation(spec.quantity, spec.limit_price or price)
            or self._reduce_only_violation(spec)
        )

    def _reduce_only_violation(self, spec: OrderSpec) -> str | None:
        if not spec.reduce_only:
            return None
        position = self._positions.get(spec.symbol, Decimal(0))
        if position * spec.side.sign >= 0 or spec.quantity > abs(position):
            return (
                f"reduce-only {spec.side} of {spec.quantity} would not reduce the position "
                f"{position} in {spec.symbol}"
            )
        return None

    def _check_funds(self, spec: OrderSpec, price: Decimal, liquidity: str) -> None:
        """A buy must be paid for, fee included, from quote not held back for resting buys."""
        if spec.side is not Side.BUY:
            return
        quote = _quote_currency(spec.symbol)
        needed = spec.quantity * price * (1 + self._fee_rate(liquidity))
        free = self._balances.get(quote, Decimal(0)) - self._reserved(quote)
        if needed > free:
            raise InsufficientFunds(
                f"buying {spec.quantity} {spec.symbol} needs {needed} {quote}, {free} is free",
                venue=VENUE_NAME,
            )

    def _fill(self, order: PaperOrder, price: Decimal, liquidity: str, now: datetime) -> PaperOrder:
        """Fill what is left of the order at ``price`` and settle it in the books."""
        spec = order.spec
        quantity = order.remaining_quantity
        notional = quantity * price
        fee = notional * self._fee_rate(liquidity)
        fill = Fill(
            fill_id=f"{order.venue_order_id}-{len(order.fills) + 1}",
            quantity=quantity,
            price=price,
            fee=fee,
            fee_currency=_quote_currency(spec.symbol),
            liquidity=liquidity,
            filled_at=now,
        )
        self._settle(spec.symbol, spec.side, quantity, notional, fee)
        return order.model_copy(
            update={
                "fills": (*order.fills, fill),
                "status": ExecutionStatus.FILLED,
                "updated_at": now,
            }
        )

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

    def _reserved(self, currency: str) -> Decimal:
        """Quote held back for resting buys, enough to pay for them and their maker fee."""
        maker = 1 + self._config.maker_fee_rate
        return sum(
            (
                order.remaining_quantity * order.spec.limit_price * maker
                for order in self._orders.values()
                if order.is_open
                and order.spec.side is Side.BUY
                and order.spec.limit_price is not None
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
        self._fault_draws = state.fault_draws

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

    # -- prices, rules, fees -------------------------------------------------------------------

    def _market_rules(self, symbol: str) -> MarketRules:
        rules = self._rules.get(symbol)
        if rules is None:
            known = ", ".join(sorted(self._rules))
            raise InvalidOrder(
                f"the paper venue has no market {symbol!r} (it has {known})", venue=VENUE_NAME
            )
        return rules

    @staticmethod
    def _limit_reached(spec: OrderSpec, price: Decimal) -> bool:
        if spec.limit_price is None:
            return False
        if spec.side is Side.BUY:
            return price <= spec.limit_price
        return price >= spec.limit_price

    def _fee_rate(self, liquidity: str) -> Decimal:
        if liquidity == "maker":
            return self._config.maker_fee_rate
        return self._config.taker_fee_rate

    # -- fault injection -----------------------------------------------------------------------

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

    def _chance(self, probability: Decimal) -> bool:
        """A draw from the seeded sequence; counted in the state so a restart carries on."""
        if probability == 0:
            return False
        self._fault_draws += 1
        digest = hashlib.blake2b(
            f"{self._seed}/faults/{self._fault_draws}".encode(), digest_size=8
        ).digest()
        return Decimal(int.from_bytes(digest, "big")) / _TWO_TO_64 < probability


def paper_venue_factory(
    config: PaperVenueConfig,
    clock: Clock,
    rng_seed: int,
    saved_state: Callable[[str], PaperVenueState | None] = lambda account: None,
) -> Callable[[str], PaperVenue]:
    """A registry factory: one paper venue per account, restored from its saved books if any."""

    def create(account: str) -> PaperVenue:
        return PaperVenue(config, clock, rng_seed, state=saved_state(account))

    return create


def _base_currency(symbol: str) -> str:
    return symbol.partition("/")[0]


def _quote_currency(symbol: str) -> str:
    # 'BTC/USDT:USDT' (a perpetual) settles in the part after the colon, the same currency here.
    return symbol.partition("/")[2].partition(":")[0]


def _limit_price(spec: OrderSpec) -> Decimal:
    # Unreachable for a market order: only limit orders rest, and OrderSpec demands their price.
    if spec.limit_price is None:
        raise InvalidOrder(f"order {spec.order_id} has no limit price", venue=VENUE_NAME)
    return spec.limit_price


def _whole_second(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(microsecond=0)
