"""How an order is valued. There is no fallback price: an order without one cannot be valued."""

from decimal import Decimal

from ordo.contracts.enums import OrderType, Side
from ordo.contracts.orders import OrderSpec

# Orders whose own prices say nothing about where they fill: they fill at the market.
_MARKET_PRICED = frozenset({OrderType.MARKET, OrderType.TRAILING_STOP})


def valuation_price(order: OrderSpec) -> Decimal | None:
    """The price the order's notional is measured at, or ``None`` when it cannot be valued.

    An order is valued at the highest price known for it (its own prices and the reference price
    the OMS sized it at): a marketable sell limit fills above its limit, and valuing it lower would
    let it slip under the notional limits. Without a reference price, only an order whose own
    price caps its fills can be valued (see :func:`_caps_its_fills`).
    """
    own = _own_prices(order)
    if order.reference_price is not None:
        return max([*own, order.reference_price])
    if own and _caps_its_fills(order):
        return max(own)
    return None


def notional(quantity: Decimal, price: Decimal) -> Decimal:
    """The absolute quote value of a (signed) quantity at a price."""
    return abs(quantity) * price


def _own_prices(order: OrderSpec) -> list[Decimal]:
    if order.order_type in _MARKET_PRICED:
        return []
    return [price for price in (order.limit_price, order.stop_price) if price is not None]


def _caps_its_fills(order: OrderSpec) -> bool:
    # A buy never pays more than its limit; a sell stop only triggers once the market has come
    # down to its stop. A sell limit fills at its limit *or above* and a buy stop at its stop or
    # above, wherever the market is: valued at their own price alone, a sell limit at 0.01 would
    # pass any notional limit.
    if order.side is Side.BUY:
        return order.limit_price is not None
    return order.stop_price is not None
