"""Signals posted to the webhook at a chosen rate, and the outcome each one reached.

The load is what a TradingView user sends: one strategy alert per signal, each with its own alert
id. Outcomes are read from what the OMS publishes (``order.updated.v1``): a signal is done when its
order reaches a terminal status; "fill recorded" is the FILLED update.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus
from ordo.contracts.envelope import new_message_id
from ordo.contracts.orders import OrderUpdated
from ordo.contracts.queries import OrdersView, QueryOrders
from ordo.contracts.subjects import Service, Subject

QUANTITY = "0.0001"  # BTC: about 6 USDT a signal, above the venue's minimum notional

Progress = Callable[[int], None]


@dataclass
class Outcome:
    status: OrderStatus
    at_ns: int  # monotonic, when the bench saw the OMS publish it


@dataclass
class Batch:
    """The signals of one measured phase."""

    rate: float
    sent_ns: dict[str, int] = field(default_factory=dict)  # signal id -> monotonic send time
    refused: list[str] = field(default_factory=list)  # webhook answers other than 202
    first_send_ns: int = 0
    last_send_ns: int = 0

    @property
    def signal_ids(self) -> set[str]:
        return set(self.sent_ns)


class SignalLoad:
    """Posts alerts for one bench account and follows their orders to a terminal status."""

    def __init__(self, stack: Stack, account: str = "bench") -> None:
        self.stack = stack
        self.account = account
        self.strategy = f"bench-{uuid.uuid4().hex[:8]}"
        self.outcomes: dict[str, Outcome] = {}
        self._changed = asyncio.Event()
        self._alerts = 0
        self.reposts = 0
        self._nc: Any = None
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> "SignalLoad":
        admin = self.stack.credentials.admin
        self._nc = await nats.connect(self.stack.nats.url, user=admin.name, password=admin.password)
        await self._nc.subscribe(str(Subject.ORDER_UPDATED), cb=self._order_updated)
        self._http = httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._nc is not None:
            await self._nc.drain()

    @property
    def jetstream(self) -> Any:
        return self._nc.jetstream()

    # -- outcomes ------------------------------------------------------------------------------
    async def _order_updated(self, message: Any) -> None:
        order = OrderUpdated.from_json(message.data).order
        if order.strategy != self.strategy or not order.status.is_terminal:
            return
        if order.signal_id not in self.outcomes:
            self.outcomes[order.signal_id] = Outcome(order.status, time.monotonic_ns())
            self._changed.set()

    async def wait_for_outcomes(self, batch: Batch, *, timeout: float) -> bool:
        """Until every signal of ``batch`` has an outcome (True), or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while not batch.signal_ids <= self.outcomes.keys():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
        return True

    def missing(self, batch: Batch) -> set[str]:
        return batch.signal_ids - self.outcomes.keys()

    async def what_the_oms_says(self, signal_id: str) -> str:
        """The OMS's own view of a signal that reached no outcome: the start of a diagnosis."""
        query = QueryOrders(correlation_id=new_message_id(), producer="bench", signal_id=signal_id)
        reply = await self._nc.request(str(Subject.QUERY_ORDERS), query.to_json(), timeout=5)
        orders = OrdersView.from_json(reply.data).orders
        if not orders:
            return f"{signal_id}: no order"
        return f"{signal_id}: " + ", ".join(f"{o.order_id} {o.status}" for o in orders)

    # -- load ----------------------------------------------------------------------------------
    async def send(self, count: int, rate: float, progress: Progress = lambda _: None) -> Batch:
        """``count`` alerts at ``rate`` per second, each posted on its schedule."""
        batch = Batch(rate=rate)
        interval = 1 / rate
        start = time.monotonic()
        posts = []
        for i in range(count):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load, not waiting for a result
            posts.append(asyncio.create_task(self._post(batch, progress)))
        await asyncio.gather(*posts)
        return batch

    async def _post(self, batch: Batch, progress: Progress) -> None:
        assert self._http is not None
        self._alerts += 1
        body = self._alert(f"{self.strategy}-{self._alerts}")
        sent = time.monotonic_ns()
        batch.first_send_ns = batch.first_send_ns or sent
        batch.last_send_ns = max(batch.last_send_ns, sent)
        response = await self._post_alert(body)
        if response.status_code == 202:
            batch.sent_ns[response.json()["signal_id"]] = sent
        else:
            batch.refused.append(f"{response.status_code}: {response.text[:200]}")
        progress(1)

    async def _post_alert(self, body: dict[str, str], attempts: int = 3) -> httpx.Response:
        """Posted again when the connection broke (a kept-alive connection the server closed as
        it was reused): the alert id makes a repeat the same signal, as for TradingView."""
        assert self._http is not None
        for attempt in range(1, attempts + 1):
            try:
                return await self._http.post(self._webhook_url, json=body)
            except httpx.TransportError:
                if attempt == attempts:
                    raise
                self.reposts += 1
        raise AssertionError("unreachable")

    @property
    def _webhook_url(self) -> str:
        return f"{self.stack.processes[Service.SIGNAL].url}/v1/webhooks/tradingview"

    def _alert(self, alert_id: str) -> dict[str, str]:
        return {
            "secret": self.stack.webhook_secret,
            "alert_id": alert_id,
            "ticker": "BINANCE:BTCUSDT",
            "exchange": "BINANCE",
            "action": "buy",
            "contracts": QUANTITY,
            "position_size": QUANTITY,
            "market_position": "long",
            "prev_market_position": "flat",
            "close": "60000",
            "interval": "1",
            "account": self.account,
            "strategy": self.strategy,
        }
