"""Order types asked for by TradingView alerts, through every service over real NATS JetStream.

The paper venue walks BTC/USDT at random around 60000 (seeded), so a buy limit at 30000 is never
reached during a test and one at 90000 is always marketable. Most tests run on the session stack,
whose paper venue takes every type natively; :class:`TestAVenueWithoutStops` starts its own, whose
OMS is told that the paper venue takes only market and limit orders, so that it emulates stops.
"""

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration_support import Operator, tradingview_alert

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus, OrderType, TimeInForce
from ordo.contracts.orders import OrderView
from ordo.contracts.types import utc_now
from ordo.kit.testing import eventually

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0  # generous: the machine running the suite may be busy
READY_TIMEOUT_SECONDS = float(os.environ.get("ORDO_TEST_READY_TIMEOUT_SECONDS", "120"))
FAR_BELOW, FAR_ABOVE = "30000", "90000"


async def alert(operator: Operator, **order: Any) -> str:
    strategy = f"ot-{uuid.uuid4().hex[:8]}"
    response = await operator.post_alert(**tradingview_alert(strategy, **order))
    assert response.status_code == 202, response.text
    return str(response.json()["signal_id"])


async def order_when(operator: Operator, signal_id: str, *statuses: OrderStatus) -> OrderView:
    async def reached() -> OrderView | None:
        found = await operator.orders(signal_id=signal_id)
        return found[0] if found and found[0].status in statuses else None

    return await eventually(
        reached, timeout=TIMEOUT, what=f"the order of {signal_id} {'/'.join(statuses)}"
    )


async def test_a_marketable_limit_alert_fills_as_a_limit_order(operator: Operator) -> None:
    signal_id = await alert(operator, order_type="limit", limit_price=FAR_ABOVE)

    order = await order_when(operator, signal_id, OrderStatus.FILLED)

    assert (order.order_type, order.limit_price) == (OrderType.LIMIT, Decimal(FAR_ABOVE))
    assert order.filled_quantity == Decimal("0.01")
    assert order.average_fill_price is not None
    assert order.average_fill_price <= Decimal(FAR_ABOVE)


async def test_a_limit_alert_rests_at_the_venue_until_its_gtd_expiry(operator: Operator) -> None:
    expire_at = utc_now() + timedelta(seconds=20)  # time to see it rest, even on a busy machine
    signal_id = await alert(
        operator,
        order_type="limit",
        limit_price=FAR_BELOW,
        time_in_force="gtd",
        expire_at=expire_at.isoformat(),
    )

    resting = await order_when(operator, signal_id, OrderStatus.ACCEPTED)
    assert (resting.order_type, resting.limit_price) == (OrderType.LIMIT, Decimal(FAR_BELOW))
    assert (resting.time_in_force, resting.expire_at) == (TimeInForce.GTD, expire_at)
    assert resting.filled_quantity == 0

    expired = await order_when(operator, signal_id, OrderStatus.EXPIRED)
    assert expired.filled_quantity == 0


async def test_an_ioc_limit_that_cannot_trade_expires_at_the_venue(operator: Operator) -> None:
    ioc = {"order_type": "limit", "limit_price": FAR_BELOW, "time_in_force": "ioc"}
    signal_id = await alert(operator, **ioc)

    order = await order_when(operator, signal_id, OrderStatus.EXPIRED)

    assert (order.time_in_force, order.filled_quantity) == (TimeInForce.IOC, 0)
    assert "not marketable" in (order.reason or "")


async def test_a_post_only_limit_that_would_take_is_rejected_by_the_venue(
    operator: Operator,
) -> None:
    signal_id = await alert(operator, order_type="limit", limit_price=FAR_ABOVE, post_only="true")

    order = await order_when(operator, signal_id, OrderStatus.REJECTED)

    assert order.post_only
    assert "would take liquidity" in (order.reason or "")


async def test_an_impossible_order_is_refused_at_intake_and_publishes_nothing(
    operator: Operator,
) -> None:
    before = await operator.stream_count("SIGNALS")
    response = await operator.post_alert(
        **tradingview_alert(f"ot-{uuid.uuid4().hex[:8]}", order_type="limit")
    )

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"field": "order", "reason": "limit GTC: a limit order needs a limit_price"}
    ]
    assert await operator.stream_count("SIGNALS") == before


class TestAVenueWithoutStops:
    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        """Overrides the session stack for this class (the ``operator`` fixture uses it)."""
        config: dict[str, Any] = yaml.safe_load((REPO / "config" / "ordo.yaml").read_text())
        config["order"]["venues"] = {"paper": {"order_types": ["market", "limit"]}}
        config_file = tmp_path_factory.mktemp("config") / "ordo.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        running = Stack(tmp_path_factory.mktemp("no-stops-stack"), config_file=config_file)
        running.start(ready_timeout=READY_TIMEOUT_SECONDS)
        try:
            yield running
        finally:
            running.stop()

    async def test_a_stop_limit_is_held_by_the_oms_released_when_crossed_and_fills(
        self, operator: Operator
    ) -> None:
        # A buy stop triggers once the last price is at or above it: at 30000, on the first quote.
        signal_id = await alert(
            operator, order_type="stop_limit", stop_price=FAR_BELOW, limit_price=FAR_ABOVE
        )

        order = await order_when(operator, signal_id, OrderStatus.FILLED)

        assert (order.order_type, order.emulated) == (OrderType.STOP_LIMIT, True)
        assert order.released_at is not None
        assert (order.limit_price, order.filled_quantity) == (Decimal(FAR_ABOVE), Decimal("0.01"))
        assert order.average_fill_price is not None
        assert order.average_fill_price <= Decimal(FAR_ABOVE)

    async def test_a_stop_limit_never_crossed_stays_held_until_its_gtd_expiry(
        self, operator: Operator
    ) -> None:
        expire_at = utc_now() + timedelta(seconds=15)  # time to see it held
        signal_id = await alert(
            operator,
            order_type="stop_limit",
            stop_price=FAR_ABOVE,
            limit_price=FAR_ABOVE,
            time_in_force="gtd",
            expire_at=expire_at.isoformat(),
        )

        held = await order_when(operator, signal_id, OrderStatus.INITIALIZED)
        assert (held.emulated, held.released_at, held.venue_order_id) == (True, None, None)

        expired = await order_when(operator, signal_id, OrderStatus.EXPIRED)
        # It ended at the OMS: no venue ever saw it.
        assert (expired.released_at, expired.venue_order_id) == (None, None)
