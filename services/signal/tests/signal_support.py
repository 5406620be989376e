"""A signal service on FastStream's in-memory broker and an SQLite file, with an HTTP client."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from faststream.nats import NatsBroker, TestNatsBroker
from sqlalchemy import Table, select

from ordo.kit.service import ServiceKit
from ordo.signal import store
from ordo.signal.app import build
from ordo.signal.config import SignalSettings

WEBHOOK_SECRET = "tv-webhook-secret-0123"
API_TOKEN = "api-token-4567-abcdef"
MARKETS = {"paper": ("BTC/USDT", "ETH/USDT", "BTC/USDT:USDT"), "binance": ("SOL/USDT",)}


def signal_settings(tmp_path: Path, **overrides: Any) -> SignalSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'signal.db'}",
        "webhook_secret": WEBHOOK_SECRET,
        "api_token": API_TOKEN,
        "markets": MARKETS,
        "default_venue": "paper",
        "default_account": "main",
        "redis_url": None,
    }
    values.update(overrides)
    return SignalSettings(**values)


def template_alert(**changes: object) -> dict[str, object]:
    """Ordo's TradingView template as TradingView renders it for a long entry."""
    alert: dict[str, object] = {
        "secret": WEBHOOK_SECRET,
        "ticker": "BINANCE:BTCUSDT",
        "exchange": "BINANCE",
        "action": "buy",
        "contracts": "0.5",
        "position_size": "0.5",
        "market_position": "long",
        "prev_market_position": "flat",
        "order_id": "Long",
        "comment": "",
        "close": "42000.5",
        "timenow": "2024-01-15T10:30:00Z",
        "interval": "15",
        "account": "main",
        "strategy": "trend",
    }
    alert.update(changes)
    return {name: value for name, value in alert.items() if value is not None}


def api_body(key: str = "bot-0001", **signal_changes: object) -> dict[str, object]:
    signal: dict[str, object] = {
        "account": "main",
        "strategy": "bot",
        "venue": "paper",
        "symbol": "ETHUSDT",
        "intent": "enter_long",
        "size": {"unit": "quote", "value": "250"},
    }
    signal.update(signal_changes)
    return {
        "idempotency_key": key,
        "signal": {name: value for name, value in signal.items() if value is not None},
    }


def bearer(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class SignalHarness:
    kit: ServiceKit
    http: httpx.AsyncClient
    broker: NatsBroker

    async def rows(self, table: Table) -> list[dict[str, Any]]:
        async with self.kit.db.session() as session:
            result = await session.execute(select(table))
            return [dict(row._mapping) for row in result.all()]

    async def outbox(self) -> list[dict[str, Any]]:
        return await self.rows(store.messaging.outbox)

    async def signals(self) -> list[dict[str, Any]]:
        return await self.rows(store.signals)

    async def rejections(self) -> list[dict[str, Any]]:
        return await self.rows(store.rejections)

    async def post_alert(
        self,
        alert: dict[str, object],
        headers: dict[str, str] | None = None,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        return await (client or self.http).post(
            "/v1/webhooks/tradingview",
            content=json.dumps(alert).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    @asynccontextmanager
    async def client_at(self, address: str) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client that the service sees calling from ``address``."""
        transport = httpx.ASGITransport(app=self.kit.http_app, client=(address, 40_000))
        async with httpx.AsyncClient(transport=transport, base_url="http://signal.test") as http:
            yield http


@asynccontextmanager
async def running_signal(
    tmp_path: Path, *, telemetry: bool = False, **overrides: Any
) -> AsyncIterator[SignalHarness]:
    kit = build(signal_settings(tmp_path, **overrides), telemetry=telemetry)
    await kit.db.create_all(store.metadata)
    await kit.breakers.start()
    transport = httpx.ASGITransport(app=kit.http_app)
    try:
        async with (
            TestNatsBroker(kit.broker) as broker,
            httpx.AsyncClient(transport=transport, base_url="http://signal.test") as http,
        ):
            yield SignalHarness(kit, http, broker)
    finally:
        await kit.db.close()
