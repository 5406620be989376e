"""Which combinations of order type, prices, time in force and flags make sense at any venue.

One set of rules for everyone who builds an order: the signal service refuses an impossible
order at intake (a signal's ``order`` block), and the OMS checks every order it places
(``ordo.order.domain.order_types.check_spec``). What depends on one venue (which types it
takes natively, whether it has a session close for DAY) is the OMS's alone.
"""

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from ordo.contracts.enums import OrderType, TimeInForce

STOP_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})
# A time in force that lives only at arrival cannot apply to an order that waits for a trigger.
IMMEDIATE = frozenset({TimeInForce.IOC, TimeInForce.FOK})
# Orders that take liquidity when they trade: post-only (maker only) contradicts them.
TAKERS = frozenset({OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TRAILING_STOP})


class OrderTerms(Protocol):
    """The terms of an order, as an ``OrderSpec`` or a signal's ``OrderRequest`` carries them."""

    @property
    def order_type(self) -> OrderType: ...
    @property
    def time_in_force(self) -> TimeInForce: ...
    @property
    def limit_price(self) -> Decimal | None: ...
    @property
    def stop_price(self) -> Decimal | None: ...
    @property
    def trailing_amount(self) -> Decimal | None: ...
    @property
    def trailing_percent(self) -> Decimal | None: ...
    @property
    def expire_at(self) -> datetime | None: ...
    @property
    def post_only(self) -> bool: ...


def terms_problem(terms: OrderTerms, now: datetime | None = None) -> str | None:
    """Why no venue could honour ``terms`` (a sentence that says what to change), or None.

    ``now`` also refuses an expiry that has passed; without it (a message being read, which may
    be replayed later) only the timeless rules apply.
    """
    return _price_problem(terms) or _time_in_force_problem(terms, now) or _flag_problem(terms)


def describe(terms: OrderTerms) -> str:
    return f"{terms.order_type} {terms.time_in_force.upper()}"


def _price_problem(terms: OrderTerms) -> str | None:
    trailing = terms.trailing_amount is not None or terms.trailing_percent is not None
    if terms.order_type is OrderType.TRAILING_STOP:
        if (terms.trailing_amount is None) == (terms.trailing_percent is None):
            return "a trailing stop needs a trailing_amount or a trailing_percent (one of them)"
        if terms.stop_price is not None or terms.limit_price is not None:
            return "a trailing stop's stop follows the price: it takes no stop_price or limit_price"
        return None
    if trailing:
        return "trailing_amount and trailing_percent are for trailing stops only"
    needs_limit = terms.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    if needs_limit and terms.limit_price is None:
        return f"a {terms.order_type} order needs a limit_price"
    needs_stop = terms.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
    if needs_stop and terms.stop_price is None:
        return f"a {terms.order_type} order needs a stop_price (its trigger)"
    if terms.order_type is OrderType.MARKET and terms.limit_price is not None:
        return "a market order takes no limit_price (use a limit order)"
    if terms.order_type in (OrderType.MARKET, OrderType.LIMIT) and terms.stop_price is not None:
        return "only stop orders take a stop_price"
    if terms.order_type is OrderType.STOP_MARKET and terms.limit_price is not None:
        return "a stop-market order takes no limit_price (use a stop-limit order)"
    return None


def _time_in_force_problem(terms: OrderTerms, now: datetime | None) -> str | None:
    tif = terms.time_in_force
    if tif in IMMEDIATE and terms.order_type in STOP_TYPES:
        return f"{tif.upper()} lives only at arrival, and a stop order waits for its trigger"
    if terms.order_type is OrderType.MARKET and tif in (TimeInForce.DAY, TimeInForce.GTD):
        return f"a market order trades at once: {tif.upper()} has nothing to expire"
    if tif is TimeInForce.GTD:
        if terms.expire_at is None:
            return "a GTD order needs expire_at"
        if now is not None and terms.expire_at <= now:
            return f"expire_at {terms.expire_at.isoformat()} has already passed"
    return None


def _flag_problem(terms: OrderTerms) -> str | None:
    if not terms.post_only:
        return None
    if terms.order_type in TAKERS:
        return "post-only orders only add liquidity, and this type takes it when it trades"
    if terms.time_in_force in IMMEDIATE:
        return f"a post-only order must rest, and {terms.time_in_force.upper()} never rests"
    return None
