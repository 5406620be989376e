"""Builders for risk tests: orders, positions, proposals and contexts with sensible defaults."""

from decimal import Decimal
from itertools import count

from ordo.contracts.enums import OrderType, Side, TradingState
from ordo.contracts.orders import OrderProposed, OrderSpec, PositionView
from ordo.contracts.types import utc_now
from ordo.risk.domain.checks import RiskContext
from ordo.risk.domain.exposure import Exposure
from ordo.risk.domain.limits import RiskLimits

ACCOUNT = "acc-1"
VENUE = "paper"
SYMBOL = "BTC/USDT"

_ids = count(1)


def order(
    side: str = "buy",
    quantity: str | Decimal = "1",
    *,
    price: str | None = "100",
    order_type: OrderType = OrderType.MARKET,
    limit_price: str | None = None,
    stop_price: str | None = None,
    reduce_only: bool = False,
    order_id: str | None = None,
    account: str = ACCOUNT,
    strategy: str = "trend",
    venue: str = VENUE,
    symbol: str = SYMBOL,
) -> OrderSpec:
    """An order; ``price`` is its reference price (what the OMS sized it at)."""
    return OrderSpec(
        order_id=order_id or f"o-{next(_ids)}",
        account=account,
        strategy=strategy,
        venue=venue,
        symbol=symbol,
        side=Side(side),
        order_type=order_type,
        quantity=Decimal(quantity),
        limit_price=None if limit_price is None else Decimal(limit_price),
        stop_price=None if stop_price is None else Decimal(stop_price),
        reduce_only=reduce_only,
        reference_price=None if price is None else Decimal(price),
    )


def position(
    quantity: str | Decimal,
    *,
    strategy: str = "trend",
    symbol: str = SYMBOL,
    venue: str = VENUE,
    version: int = 1,
    account: str = ACCOUNT,
    average_entry: str | None = "100",
) -> PositionView:
    return PositionView(
        account=account,
        strategy=strategy,
        venue=venue,
        symbol=symbol,
        quantity=Decimal(quantity),
        average_entry=None if average_entry is None else Decimal(average_entry),
        realised_pnl=Decimal(0),
        fees=Decimal(0),
        version=version,
        updated_at=utc_now(),
    )


def proposal(*orders: OrderSpec, account: str = ACCOUNT) -> OrderProposed:
    return OrderProposed(
        proposal_id=f"p-{next(_ids)}",
        signal_id="sig-1",
        account=account,
        orders=orders,
        correlation_id="sig-1",
        producer="test",
    )


def exposure(
    *positions: PositionView, reserved: tuple[OrderSpec, ...] = (), account: str = ACCOUNT
) -> Exposure:
    held = Exposure(account)
    for view in positions:
        held.apply_position(view)
    for spec in reserved:
        held.reserve(spec)
    return held


def context(
    *positions: PositionView,
    reserved: tuple[OrderSpec, ...] = (),
    state: TradingState = TradingState.ACTIVE,
    **limits: str | int,
) -> RiskContext:
    return RiskContext(
        limits=RiskLimits.model_validate(limits),
        exposure=exposure(*positions, reserved=reserved),
        trading_state=state,
    )
