"""How an order is valued. There is no fallback price: an order without one cannot be valued."""

from decimal import Decimal

from ordo.contracts.enums import OrderType
from ordo.contracts.orders import OrderSpec


def valuation_price(order: OrderSpec) -> Decimal | None:
    """The price the order's notional is measured at, or ``None`` when it cannot be valued.

    A market order has no price of its own, only the one the OMS sized it at. An order with prices
    of its own is valued at the highest price known for it: a marketable sell limit fills above
    its limit, and valuing it lower would let it slip under the notional limits.
    """
    if order.order_type is OrderType.MARKET:
        return order.reference_price
    known = [
        price
        for price in (order.limit_price, order.stop_price, order.reference_price)
        if price is not None
    ]
    return max(known, default=None)


def notional(quantity: Decimal, price: Decimal) -> Decimal:
    """The absolute quote value of a (signed) quantity at a price."""
    return abs(quantity) * price
