"""The loser/winner offset on the paper venue, every service as a process over real NATS.

Prices hold still (no random walk) while a BTC and an ETH position are opened; then the paper venue
restarts with BTC 10 % lower and ETH 20 % higher. The risk service sees the BTC group past both
thresholds, and proposes through the signal service and the OMS to close it and to reduce the ETH
group just enough that the profit realised covers the loss realised, fees of both sides included.
"""

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import yaml
from integration_support import Operator, tradingview_alert

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus
from ordo.contracts.orders import PositionView
from ordo.contracts.subjects import Service
from ordo.kit.testing import eventually

REPO = Path(__file__).resolve().parents[2]
BEFORE = {"BTC/USDT": "60000", "ETH/USDT": "3000"}
AFTER = {"BTC/USDT": "54000", "ETH/USDT": "3600"}


def config_with_prices(directory: Path, name: str, prices: dict[str, str]) -> Path:
    config = yaml.safe_load((REPO / "config" / "ordo.yaml").read_text())
    paper = config["execution"]["paper"]
    paper["volatility"] = "0"
    paper["markets"] = {
        symbol: {
            "start_price": price,
            "tick_size": "0.01",
            "step_size": step,
            "min_quantity": step,
            "min_notional": "5",
        }
        for (symbol, price), step in zip(prices.items(), ("0.0001", "0.001"), strict=True)
    }
    # The offset trusts a mark only this long (it refuses to start without a maximum age).
    config["risk"]["limits"]["default"]["quote_max_age_seconds"] = "30"
    config["risk"]["offset"].update(
        enabled=True, interval_seconds=1, loss_percent="5", loss_amount="100", fee_rate="0.001"
    )
    path = directory / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def offset_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    configs = tmp_path_factory.mktemp("offset-config")
    before = config_with_prices(configs, "before.yaml", BEFORE)
    with Stack(tmp_path_factory.mktemp("offset-stack"), config_file=before) as running:
        running.service_env[Service.EXECUTION] = {
            "ORDO_CONFIG": str(config_with_prices(configs, "after.yaml", AFTER))
        }
        yield running


@pytest.fixture
async def desk(offset_stack: Stack) -> Any:
    user = offset_stack.credentials.for_service(Service.OPERATOR)
    nc = await nats.connect(offset_stack.nats.url, user=user.name, password=user.password)
    async with httpx.AsyncClient(timeout=10) as http:
        yield Operator(offset_stack, nc, http)
    await nc.drain()


async def test_a_loser_is_closed_against_a_winner_through_the_oms(
    desk: Operator, offset_stack: Stack
) -> None:
    account = f"offset-{uuid.uuid4().hex[:6]}"
    for strategy, ticker, contracts, close in (
        ("btc-dip", "BINANCE:BTCUSDT", "0.05", BEFORE["BTC/USDT"]),
        ("eth-trend", "BINANCE:ETHUSDT", "1", BEFORE["ETH/USDT"]),
    ):
        alert = tradingview_alert(
            strategy, account=account, ticker=ticker, contracts=contracts, close=close
        )
        response = await desk.post_alert(**alert, alert_id=uuid.uuid4().hex)
        assert response.status_code == 202, response.text
    entered = await eventually(
        lambda: _positions(desk, account, {"btc-dip": "0.05", "eth-trend": "1"}),
        timeout=60,
        what="both entries filled and held",
    )
    assert {p.strategy: p.average_entry for p in entered} == {
        "btc-dip": Decimal(BEFORE["BTC/USDT"]),
        "eth-trend": Decimal(BEFORE["ETH/USDT"]),
    }
    winner_before = next(p for p in entered if p.strategy == "eth-trend")

    # The market moves: BTC -10 % (a loss of 300, past 5 % and 100), ETH +20 % (+600).
    offset_stack.stop_service(Service.EXECUTION)
    offset_stack.start_service(Service.EXECUTION, wait=False)
    await asyncio.to_thread(offset_stack.wait_ready, Service.EXECUTION)

    # Loss: 300 + fees 0.001 x (3000 + 2700) = 305.7. ETH realises 600 - 6.6 = 593.4 a unit:
    # 305.7 / 593.4 = 0.5151..., up to the step of 0.001.
    closed = await eventually(
        lambda: _positions(desk, account, {"btc-dip": "0", "eth-trend": "0.484"}),
        timeout=90,
        what="the loser closed and the winner reduced",
    )
    loser = next(p for p in closed if p.strategy == "btc-dip")
    winner = next(p for p in closed if p.strategy == "eth-trend")
    # Realised, as the OMS books it: the winner's close, less its share of the entry fee, covers
    # all the loser lost (its entry and exit fees included).
    winner_share_of_entry_fee = winner_before.fees * Decimal("0.516")
    realised_by_winner_close = winner.realised_pnl - winner_before.realised_pnl
    assert realised_by_winner_close - winner_share_of_entry_fee >= -loser.realised_pnl > 0

    # Proposed through the OMS: reduce-only orders of signals the signal service accepted.
    orders = await desk.orders(account=account, limit=100)
    closes = [o for o in orders if o.reduce_only]
    assert sorted((o.strategy, o.quantity, o.status) for o in closes) == [
        ("btc-dip", Decimal("0.05"), OrderStatus.FILLED),
        ("eth-trend", Decimal("0.516"), OrderStatus.FILLED),
    ]
    with sqlite3.connect(Path(offset_stack.var_dir) / "data" / "risk.db") as db:
        ((loss, covered),) = db.execute(
            "SELECT loss, covered FROM offsets WHERE account = ?", (account,)
        ).fetchall()
    assert Decimal(covered) >= Decimal(loss) == Decimal("305.7")


async def _positions(
    desk: Operator, account: str, wanted: dict[str, str]
) -> list[PositionView] | None:
    found = await desk.positions(account=account, include_flat=True)
    held = {p.strategy: p.quantity for p in found}
    ok = all(held.get(strategy) == Decimal(quantity) for strategy, quantity in wanted.items())
    return list(found) if ok else None
