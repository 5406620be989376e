"""Builders shared by the order domain tests (a helper module, not a test module)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from ordo.contracts.enums import ExecutionStatus, Intent, Side, SignalSource, SizeUnit
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.orders import OrderSpec
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.order.domain import Order

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(seconds=5)

ACCOUNT, STRATEGY, VENUE, SYMBOL = "acct-1", "trend", "paper", "BTC/USDT"


def order_spec(**overrides: Any) -> OrderSpec:
    fields: dict[str, Any] = {
        "order_id": "ord-1",
        "account": ACCOUNT,
        "strategy": STRATEGY,
        "venue": VENUE,
        "symbol": SYMBOL,
        "side": Side.BUY,
        "quantity": Decimal("1"),
        "reference_price": Decimal("100"),
    }
    fields.update(overrides)
    return OrderSpec(**fields)


def new_order(**spec_overrides: Any) -> Order:
    return Order.new(order_spec(**spec_overrides), signal_id="sig-1", proposal_id="prop-1", now=NOW)


def submitted_order(**spec_overrides: Any) -> Order:
    order = new_order(**spec_overrides)
    order.submit(NOW)
    return order


def fill(fill_id: str, quantity: str | Decimal, price: str | Decimal, fee: str = "0") -> Fill:
    return Fill(
        fill_id=fill_id,
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal(fee),
        fee_currency="USDT",
        filled_at=NOW,
    )


def report(
    order: Order,
    status: ExecutionStatus,
    cumulative: str | Decimal = "0",
    the_fill: Fill | None = None,
    **overrides: Any,
) -> ExecutionReport:
    fields: dict[str, Any] = {
        "order_id": order.order_id,
        "venue_order_id": "v-1",
        "account": order.account,
        "venue": order.venue,
        "symbol": order.symbol,
        "side": order.side,
        "status": status,
        "cumulative_quantity": Decimal(cumulative),
        "fill": the_fill,
        "correlation_id": order.signal_id,
        "producer": "execution",
    }
    fields.update(overrides)
    return ExecutionReport(**fields)


def signal(
    intent: Intent,
    size: tuple[SizeUnit, str] | None = None,
    reference_price: str | None = "100",
    **overrides: Any,
) -> SignalAccepted:
    request: dict[str, Any] = {
        "account": ACCOUNT,
        "strategy": STRATEGY,
        "venue": VENUE,
        "symbol": SYMBOL,
        "intent": intent,
        "size": Size(unit=size[0], value=Decimal(size[1])) if size else None,
        "reference_price": Decimal(reference_price) if reference_price else None,
    }
    request.update(overrides)
    return SignalAccepted(
        signal_id="sig-1",
        source=SignalSource.API,
        received_at=NOW,
        signal=SignalRequest(**request),
        correlation_id="sig-1",
        producer="signal",
    )


def order_ids() -> Callable[[], str]:
    numbers = count(1)
    return lambda: f"ord-{next(numbers)}"
