"""Position groups through every service, as processes, on the paper venue over real NATS JetStream.

This module runs its own stack: the paper venue replays price paths written here instead of a
random walk, so that what fills, and in which order, is known. The replay starts when the stack
does (the paper venue's one feed origin, for every account): BTC stands still long enough for
the grid test to place its entries, falls through its first DCA level, stands, then rises through
its take-profit. SOL and ETH stand still throughout (the queue test needs nothing to fill but its
market orders).
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration_support import Operator, tradingview_alert

from ordo.cli.stack import Stack
from ordo.contracts.enums import GroupOrderRole, GroupStatus, OrderStatus
from ordo.contracts.envelope import new_message_id
from ordo.contracts.groups import GroupsView, GroupView, QueryGroups, QueryQueue, QueueView
from ordo.contracts.subjects import Subject
from ordo.kit.testing import eventually

REPO = Path(__file__).resolve().parents[2]
STRATEGY = "it-dca"
QUEUE_ACCOUNT = "it-queue"
# A group of 0.03 BTC: the base entry and two levels, 0.01 each.
GRID = {
    "dca": {
        "base_weight": "1",
        "levels": [{"gap_percent": "0.2", "weight": "1"}, {"gap_percent": "0.5", "weight": "1"}],
    },
    "take_profit": {"mode": "aggregate", "aggregate_percent": "0.3"},
    "stop_loss_percent": "5",
}
# One bar per recorded minute, replayed ten times faster: six seconds a bar. BTC stands at 60000
# for 54 s (the stack finishes starting, the grid test enters and its exits are placed), falls to
# 59800 through the first level (59880) but not the second (59700), stands for 18 s (the
# take-profit is re-placed at the new average), then rises to 60600 through the take-profit.
BTC_PATH = [
    *[("60000", "60000", "60000", "60000")] * 9,
    ("60000", "60000", "59800", "59800"),
    *[("59800", "59800", "59800", "59800")] * 3,
    ("59800", "60600", "59800", "60600"),
]
TIMEOUT = 120.0  # generous: the machine running the suite may be busy


def _write_path(path: Path, bars: list[tuple[str, str, str, str]]) -> Path:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    lines = ["timestamp,open,high,low,close,volume"]
    for minute, (open_, high, low, close) in enumerate(bars):
        at = int((start + timedelta(minutes=minute)).timestamp() * 1000)
        lines.append(f"{at},{open_},{high},{low},{close},1")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prices = tmp_path_factory.mktemp("prices")
    config: dict[str, Any] = yaml.safe_load((REPO / "config" / "ordo.yaml").read_text())
    config["order"]["strategies"] = {STRATEGY: GRID}
    config["order"]["pool"] = {"max_open_groups": 10, "accounts": {QUEUE_ACCOUNT: 1}}
    config["execution"]["paper"]["prices"] = {
        "kind": "ohlcv_csv",
        "speed": "10",
        "files": {
            "BTC/USDT": str(_write_path(prices / "btc.csv", BTC_PATH)),
            "ETH/USDT": str(_write_path(prices / "eth.csv", [("3000", "3000", "3000", "3000")])),
            "SOL/USDT": str(_write_path(prices / "sol.csv", [("150", "150", "150", "150")])),
        },
    }
    config_file = tmp_path_factory.mktemp("config") / "ordo.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    with Stack(tmp_path_factory.mktemp("groups-stack"), config_file=config_file) as running:
        yield running


async def groups_of(operator: Operator, account: str) -> tuple[GroupView, ...]:
    query = QueryGroups(correlation_id=new_message_id(), producer="operator", account=account)
    reply = await operator.nc.request(str(Subject.QUERY_GROUPS), query.to_json(), timeout=5)
    return GroupsView.from_json(reply.data).groups


async def queue_of(operator: Operator, account: str) -> QueueView:
    query = QueryQueue(correlation_id=new_message_id(), producer="operator", account=account)
    reply = await operator.nc.request(str(Subject.QUERY_QUEUE), query.to_json(), timeout=5)
    return QueueView.from_json(reply.data)


async def enter(operator: Operator, account: str, **alert: Any) -> str:
    response = await operator.post_alert(**tradingview_alert(STRATEGY, account=account, **alert))
    assert response.status_code == 202, response.text
    return str(response.json()["signal_id"])


async def exit_long(operator: Operator, account: str, **alert: Any) -> str:
    fields = {"action": "sell", "market_position": "flat", "prev_market_position": "long"}
    return await enter(operator, account, **fields, **alert)


def legs(group: GroupView, role: GroupOrderRole) -> list[Any]:
    return [leg for leg in group.legs if leg.role is role]


async def test_a_dca_grid_fills_a_level_replaces_its_take_profit_and_closes_on_it(
    operator: Operator,
) -> None:
    account = f"it-grid-{uuid.uuid4().hex[:6]}"
    await enter(operator, account, contracts="0.03", close="60000")

    async def group_where(condition: Any) -> GroupView | None:
        found = await groups_of(operator, account)
        return found[0] if found and condition(found[0]) else None

    def first_exits_working(group: GroupView) -> bool:
        return any(
            leg.status is OrderStatus.ACCEPTED for leg in legs(group, GroupOrderRole.TAKE_PROFIT)
        )

    live = await eventually(
        lambda: group_where(first_exits_working), timeout=TIMEOUT, what="the take-profit working"
    )
    assert live.status is GroupStatus.LIVE
    assert [leg.limit_price for leg in legs(live, GroupOrderRole.DCA)] == [
        Decimal("59880"),
        Decimal("59700"),
    ]
    assert live.average_entry == Decimal("60000"), "the test entered after BTC began to move"
    (first_tp,) = legs(live, GroupOrderRole.TAKE_PROFIT)
    assert first_tp.limit_price == Decimal("60180")  # 0.3 % above the base fill at 60000
    (stop,) = legs(live, GroupOrderRole.STOP_LOSS)
    assert stop.stop_price == Decimal("57000")  # 5 % below

    def replaced(group: GroupView) -> bool:
        return len(legs(group, GroupOrderRole.TAKE_PROFIT)) >= 2

    moved = await eventually(
        lambda: group_where(replaced), timeout=TIMEOUT, what="the take-profit re-placed"
    )
    assert moved.average_entry == Decimal("59940")  # (60000 + 59880) / 2
    first_tp, new_tp = legs(moved, GroupOrderRole.TAKE_PROFIT)
    assert first_tp.status in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED)
    assert (new_tp.limit_price, new_tp.quantity) == (Decimal("60119.82"), Decimal("0.02"))

    closed = await eventually(
        lambda: group_where(lambda g: g.status is GroupStatus.CLOSED),
        timeout=TIMEOUT,
        what="the group CLOSED by its take-profit",
    )
    assert closed.quantity == 0
    assert f"take_profit {new_tp.order_id} filled" in (closed.reason or "")
    # One-cancels-the-other: the stop-loss and the level never reached were cancelled.
    assert all(leg.status is OrderStatus.CANCELED for leg in legs(closed, GroupOrderRole.STOP_LOSS))
    assert legs(closed, GroupOrderRole.DCA)[-1].status is OrderStatus.CANCELED


async def test_an_exit_closes_the_group_and_the_waiting_group_takes_its_slot(
    operator: Operator,
) -> None:
    await enter(operator, QUEUE_ACCOUNT, ticker="BINANCE:SOLUSDT", contracts="0.3", close="150")

    async def live_sol() -> GroupView | None:
        found = await groups_of(operator, QUEUE_ACCOUNT)
        return next((g for g in found if g.symbol == "SOL/USDT" and g.quantity > 0), None)

    await eventually(live_sol, timeout=TIMEOUT, what="the SOL group's base entry filled")
    eth_signal = await enter(
        operator, QUEUE_ACCOUNT, ticker="BINANCE:ETHUSDT", contracts="0.3", close="3000"
    )

    async def waiting() -> QueueView | None:
        queue = await queue_of(operator, QUEUE_ACCOUNT)
        return queue if queue.entries else None

    queue = await eventually(waiting, timeout=TIMEOUT, what="the ETH group waiting")
    (entry,) = queue.entries
    assert (entry.symbol, entry.signal_id, entry.rank) == ("ETH/USDT", eth_signal, 1)
    # ETH stands still (no loss to rank by) and no group of the account has closed yet.
    assert (entry.tier, entry.why.startswith("first in, first out")) == (4, True)
    assert (queue.pools[0].open_groups, queue.pools[0].max_open_groups) == (1, 1)

    await exit_long(operator, QUEUE_ACCOUNT, ticker="BINANCE:SOLUSDT", contracts="0.3", close="150")

    async def released() -> dict[str, GroupView] | None:
        found = {g.symbol: g for g in await groups_of(operator, QUEUE_ACCOUNT)}
        eth = found.get("ETH/USDT")
        return found if eth is not None and eth.status is GroupStatus.LIVE else None

    found = await eventually(released, timeout=TIMEOUT, what="the ETH group released")
    sol = found["SOL/USDT"]
    assert sol.status is GroupStatus.CLOSED
    assert sol.quantity == 0
    assert all(leg.status.is_terminal for leg in sol.legs)
    entered = sum(
        (
            leg.filled_quantity
            for leg in sol.legs
            if leg.role in (GroupOrderRole.BASE, GroupOrderRole.DCA)
        ),
        Decimal(0),
    )
    (close,) = legs(sol, GroupOrderRole.CLOSE)
    assert (close.status, close.filled_quantity) == (OrderStatus.FILLED, entered)
    assert "released from the queue" in (found["ETH/USDT"].reason or "")
    assert (await queue_of(operator, QUEUE_ACCOUNT)).entries == ()
