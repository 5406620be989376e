"""The whole engine as processes over a real NATS JetStream: the integration suite's fixtures."""

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from ordo.cli.stack import Stack
from ordo.contracts.envelope import new_message_id
from ordo.contracts.orders import OrderView, PositionView
from ordo.contracts.queries import OrdersView, PositionsView, QueryOrders, QueryPositions
from ordo.contracts.subjects import Service, Subject

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = tmp_path_factory.mktemp("config") / "ordo.yaml"
    config.write_text((REPO / "config" / "ordo.yaml").read_text())
    with Stack(
        tmp_path_factory.mktemp("stack"),
        config_file=config,
        extra_env={"ORDO_RECONCILER__INTERVAL_SECONDS": "2"},
    ) as running:
        yield running


class Operator:
    """What a person at the desk can do: post signals, and ask the OMS over NATS."""

    def __init__(self, stack: Stack, nc: Any, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.nc = nc
        self.http = http

    @property
    def webhook_url(self) -> str:
        return f"{self.stack.processes[Service.SIGNAL].url}/v1/webhooks/tradingview"

    async def post_alert(self, **fields: Any) -> httpx.Response:
        body = {"secret": self.stack.webhook_secret, **fields}
        return await self.http.post(
            self.webhook_url, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )

    async def orders(self, **filters: Any) -> tuple[OrderView, ...]:
        query = QueryOrders(correlation_id=new_message_id(), producer="operator", **filters)
        reply = await self.nc.request(str(Subject.QUERY_ORDERS), query.to_json(), timeout=5)
        return OrdersView.from_json(reply.data).orders

    async def positions(self, **filters: Any) -> tuple[PositionView, ...]:
        query = QueryPositions(correlation_id=new_message_id(), producer="operator", **filters)
        reply = await self.nc.request(str(Subject.QUERY_POSITIONS), query.to_json(), timeout=5)
        return PositionsView.from_json(reply.data).positions

    async def stream_count(self, stream: str) -> int:
        info = await self.admin_js.stream_info(stream)
        return int(info.state.messages)

    admin_js: Any = None


@pytest.fixture
async def operator(stack: Stack) -> AsyncIterator[Operator]:
    user = stack.credentials.for_service(Service.OPERATOR)
    admin = stack.credentials.admin
    nc = await nats.connect(stack.nats.url, user=user.name, password=user.password)
    admin_nc = await nats.connect(stack.nats.url, user=admin.name, password=admin.password)
    async with httpx.AsyncClient(timeout=10) as http:
        op = Operator(stack, nc, http)
        op.admin_js = admin_nc.jetstream()
        yield op
    await nc.drain()
    await admin_nc.drain()


def tradingview_alert(
    strategy: str,
    *,
    action: str = "buy",
    contracts: str = "0.01",
    market_position: str = "long",
    prev_market_position: str = "flat",
    ticker: str = "BINANCE:BTCUSDT",
    close: str = "60000",
    **extra: Any,
) -> dict[str, Any]:
    """The strategy-alert template a TradingView user pastes, rendered."""
    return {
        "ticker": ticker,
        "exchange": "BINANCE",
        "action": action,
        "contracts": contracts,
        "position_size": contracts if market_position != "flat" else "0",
        "market_position": market_position,
        "prev_market_position": prev_market_position,
        "close": close,
        "interval": "1",
        "account": "main",
        "strategy": strategy,
        **extra,
    }


def signed_quantity(position: PositionView) -> Decimal:
    return position.quantity
