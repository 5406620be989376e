"""Stops a venue lacks, emulated: held by the OMS, watched against quotes, released on trigger.

A held order stays INITIALIZED in the FSM (the status of an order the OMS has not yet sent for a
risk decision); no status is invented for it. Its watch (:class:`Watch`) remembers the best price
since placement, for trailing stops. When a quote's last price crosses the stop, the order is
*released*: rewritten as the market order (stop-market, trailing stop) or the limit order
(stop-limit) it becomes, and proposed to the risk gate like any new order; from there on the FSM
runs as usual (SUBMITTED, ACCEPTED, ... FILLED).

Only quotes quoted at or after the order's placement count: an older quote says nothing about
prices "since placement", however late it arrives.

- stop (buy): triggers when last >= stop; (sell): when last <= stop.
- trailing stop (sell): the stop is the highest last since placement minus the distance; (buy):
  the lowest plus the distance. The distance is an amount, or a percent of that best price.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from ordo.contracts.enums import OrderType, Side, TimeInForce
from ordo.contracts.orders import OrderSpec

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Watch:
    """The OMS's watch over one held order."""

    order_id: str
    venue: str
    symbol: str
    placed_at: datetime
    best_price: Decimal | None = None
    version: int = 1


@dataclass(frozen=True)
class Decision:
    """What one quote did to a held order: its watch after the quote, and whether it fired."""

    watch: Watch
    trigger_price: Decimal | None = None

    @property
    def triggered(self) -> bool:
        return self.trigger_price is not None


def observe(spec: OrderSpec, watch: Watch, last: Decimal, quoted_at: datetime) -> Decision:
    """Apply one quote's last price to a held order's watch."""
    if quoted_at < watch.placed_at:
        return Decision(watch)
    best = _follow(spec, watch.best_price, last)
    moved = replace(watch, best_price=best, version=watch.version + 1)
    updated = moved if best != watch.best_price else watch
    if _crossed(spec, stop_level(spec, best), last):
        return Decision(updated, trigger_price=last)
    return Decision(updated)


def stop_level(spec: OrderSpec, best: Decimal | None) -> Decimal:
    """Where the order triggers: its stop price, or for a trailing stop its distance from best."""
    if spec.order_type is not OrderType.TRAILING_STOP:
        if spec.stop_price is None:
            raise ValueError(f"order {spec.order_id} is a {spec.order_type} without a stop_price")
        return spec.stop_price
    if best is None:
        raise ValueError(f"trailing stop {spec.order_id} has no best price to trail yet")
    if spec.trailing_amount is not None:
        distance = spec.trailing_amount
    else:
        distance = best * (spec.trailing_percent or Decimal(0)) / HUNDRED
    # A sell trails below the highest price, a buy above the lowest.
    return best - distance if spec.side is Side.SELL else best + distance


def released(spec: OrderSpec, trigger_price: Decimal) -> OrderSpec:
    """The order a triggered stop becomes: a limit for a stop-limit, else a market order."""
    if spec.order_type is OrderType.STOP_LIMIT:
        return spec.model_copy(
            update={
                "order_type": OrderType.LIMIT,
                "stop_price": None,
                "reference_price": trigger_price,
            }
        )
    return spec.model_copy(
        update={
            "order_type": OrderType.MARKET,
            "time_in_force": TimeInForce.GTC,
            "stop_price": None,
            "trailing_amount": None,
            "trailing_percent": None,
            "expire_at": None,
            "reference_price": trigger_price,
        }
    )


def _follow(spec: OrderSpec, best: Decimal | None, last: Decimal) -> Decimal | None:
    if spec.order_type is not OrderType.TRAILING_STOP:
        return best
    if best is None:
        return last
    return max(best, last) if spec.side is Side.SELL else min(best, last)


def _crossed(spec: OrderSpec, stop: Decimal, last: Decimal) -> bool:
    return last >= stop if spec.side is Side.BUY else last <= stop
