"""A rebalance on the paper venue, through every service: marks, sells first, then buys.

Its own stack: the order service needs the account's capital for the portfolio's cash, which the
shared stack's configuration does not give.
"""

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import nats
import pytest
import yaml
from integration_support import Operator, tradingview_alert

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus, Side
from ordo.contracts.envelope import new_message_id
from ordo.contracts.orders import OrderView, PositionView, RebalancePortfolio, TargetWeight
from ordo.contracts.queries import QueryRebalances, RebalancesView, RebalanceView
from ordo.contracts.subjects import Service, Subject
from ordo.kit.testing import eventually

REPO = Path(__file__).resolve().parents[2]
ACCOUNT, STRATEGY = "rebal", "weights"


@pytest.fixture(scope="module")
def rebalance_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = yaml.safe_load((REPO / "config" / "ordo.yaml").read_text())
    config["order"]["capital"] = {ACCOUNT: "100000"}  # the paper account's starting balance
    config["order"]["rebalance"] = {"min_trade_notional": "50"}
    path = tmp_path_factory.mktemp("config") / "ordo.yaml"
    path.write_text(yaml.safe_dump(config))
    with Stack(tmp_path_factory.mktemp("stack"), config_file=path) as running:
        yield running


@pytest.fixture
async def desk(rebalance_stack: Stack) -> AsyncIterator[Operator]:
    user = rebalance_stack.credentials.for_service(Service.OPERATOR)
    nc = await nats.connect(rebalance_stack.nats.url, user=user.name, password=user.password)
    async with httpx.AsyncClient(timeout=10) as http:
        yield Operator(rebalance_stack, nc, http)
    await nc.drain()


async def positions_by_symbol(desk: Operator) -> dict[str, PositionView]:
    found = await desk.positions(account=ACCOUNT)
    return {p.symbol: p for p in found if p.strategy == STRATEGY}


async def test_a_rebalance_sells_the_overweight_first_then_buys_the_underweight(
    desk: Operator,
) -> None:
    response = await desk.post_alert(
        **tradingview_alert(STRATEGY, contracts="1", account=ACCOUNT)  # 1 BTC, ~60000
    )
    assert response.status_code == 202, response.text

    async def btc_marked() -> PositionView | None:
        btc = (await positions_by_symbol(desk)).get("BTC/USDT")
        return btc if btc is not None and btc.unrealised_pnl is not None else None

    btc = await eventually(btc_marked, timeout=60, what="the BTC position at its mark")
    assert btc.quantity == Decimal(1)
    assert btc.mark_price is not None

    command = _rebalance(("BTC/USDT", "0.3"), ("ETH/USDT", "0.6"), reserve="0.1")
    ack = await desk.nc.jetstream().publish(
        str(Subject.ORDER_REBALANCE),
        command.to_json(),
        headers={"Nats-Msg-Id": command.message_id},
    )
    assert ack.stream == "ORDERS"

    async def both_filled() -> list[OrderView] | None:
        found = await desk.orders(signal_id=f"rebalance:{command.rebalance_id}")
        done = [o for o in found if o.status is OrderStatus.FILLED]
        return found if len(found) == 2 and len(done) == 2 else None

    orders = await eventually(both_filled, timeout=90, what="the sell and the buy FILLED")
    (sell,) = [o for o in orders if o.side is Side.SELL]
    (buy,) = [o for o in orders if o.side is Side.BUY]
    assert (sell.symbol, sell.reduce_only) == ("BTC/USDT", True)
    assert buy.symbol == "ETH/USDT"
    # The buy was only made once the sell had filled.
    assert buy.created_at >= sell.updated_at

    async def done() -> RebalanceView | None:
        query = QueryRebalances(
            correlation_id=new_message_id(), producer="operator", rebalance_id=command.rebalance_id
        )
        reply = await desk.nc.request(str(Subject.QUERY_REBALANCES), query.to_json(), timeout=5)
        (rebalance,) = RebalancesView.from_json(reply.data).rebalances
        return rebalance if rebalance.phase == "done" else None

    await eventually(done, what="the rebalance done")
    held = await positions_by_symbol(desk)
    equity = Decimal(100_000) + sum(
        (p.realised_pnl + (p.unrealised_pnl or 0) for p in held.values()), Decimal(0)
    )
    btc_value = held["BTC/USDT"].quantity * (held["BTC/USDT"].mark_price or 0)
    eth_value = held["ETH/USDT"].quantity * (held["ETH/USDT"].mark_price or 0)
    assert abs(btc_value / equity - Decimal("0.3")) < Decimal("0.02")
    assert abs(eth_value / equity - Decimal("0.6")) < Decimal("0.02")


def _rebalance(*targets: tuple[str, str], reserve: str = "0") -> RebalancePortfolio:
    rebalance_id = new_message_id()
    return RebalancePortfolio(
        message_id=rebalance_id,
        correlation_id=rebalance_id,
        producer="operator",
        rebalance_id=rebalance_id,
        account=ACCOUNT,
        strategy=STRATEGY,
        venue="paper",
        targets=tuple(TargetWeight(symbol=s, weight=Decimal(w)) for s, w in targets),
        reserve=Decimal(reserve),
    )
