"""What the integration tests do as a person at the desk would."""

import json
from decimal import Decimal
from typing import Any

import httpx

from ordo.cli.stack import Stack
from ordo.contracts.enums import TradingState
from ordo.contracts.envelope import new_message_id
from ordo.contracts.groups import QueryQueue, QueueView
from ordo.contracts.orders import OrderView, PositionView
from ordo.contracts.queries import OrdersView, PositionsView, QueryOrders, QueryPositions
from ordo.contracts.subjects import Service, Subject


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


async def oms_knows_state(operator: Operator, account: str, state: TradingState) -> bool:
    """The OMS has heard that the account's trading state is ``state`` (it refuses entries by
    what it last heard: a signal sent before it hears a switch is judged by the state before)."""
    query = QueryQueue(correlation_id=new_message_id(), producer="operator", account=account)
    reply = await operator.nc.request(str(Subject.QUERY_QUEUE), query.to_json(), timeout=5)
    (pool,) = QueueView.from_json(reply.data).pools
    return pool.trading_state is state
