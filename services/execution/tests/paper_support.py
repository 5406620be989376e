"""What the paper venue tests share: a clock they move, prices they set, orders in one line."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ordo.contracts.enums import OrderType, Side
from ordo.contracts.orders import OrderSpec

BTC = "BTC/USDT"
ETH = "ETH/USDT"
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SettablePrices:
    """A feed whose prices the test sets, to make a resting order's fate explicit."""

    def __init__(self, **prices: str) -> None:
        self.prices = {symbol.replace("_", "/"): Decimal(p) for symbol, p in prices.items()}

    def set(self, symbol: str, price: str) -> None:
        self.prices[symbol] = Decimal(price)

    def price(self, symbol: str, at: datetime) -> Decimal:
        return self.prices[symbol]


def order(
    order_id: str = "o-1",
    *,
    symbol: str = BTC,
    side: Side = Side.BUY,
    quantity: str = "0.01",
    limit: str | None = None,
    **extra: object,
) -> OrderSpec:
    return OrderSpec.model_validate(
        {
            "order_id": order_id,
            "account": "acct-1",
            "strategy": "trend",
            "venue": "paper",
            "symbol": symbol,
            "side": side,
            "order_type": OrderType.LIMIT if limit else OrderType.MARKET,
            "quantity": Decimal(quantity),
            "limit_price": Decimal(limit) if limit else None,
            **extra,
        }
    )
