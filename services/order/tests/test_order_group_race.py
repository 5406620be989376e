"""Two replicas ending a closing group's last two orders at the same moment.

Each unit of work saves its own order's end, then looks at the group's other orders: without a
claim on the group, each sees the other's order still open (not yet committed), neither closes
the group, and it stays CLOSING for ever with nothing open. Interleaved for certain here: both
units of work wait for each other after saving their order and before looking at the group.
PostgreSQL only: SQLite lets one writer at a time, so the two cannot interleave there.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from faststream.nats import TestNatsBroker
from test_order_position_groups import (
    STRATEGIES,
    approve_last,
    deliver,
    groups,
    only,
    open_dca_group,
    report,
    signal,
)

from ordo.contracts.enums import ExecutionStatus, GroupStatus, Intent, OrderType
from ordo.contracts.orders import OrderSpec
from ordo.kit.service import ServiceKit
from ordo.kit.store import ConcurrentUpdate
from ordo.order.app import build
from ordo.order.config import OrderSettings
from ordo.order.group_store import GroupRepository
from ordo.order.handlers import OrderManagement


@pytest.fixture
async def oms(database_url: str, tmp_path: Path) -> AsyncIterator[ServiceKit]:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite lets one writer at a time: two units of work cannot interleave")
    settings = OrderSettings(
        database_url=database_url,
        var_dir=tmp_path,
        strategies=STRATEGIES,
        pool={"max_open_groups": 1},
    )
    kit = build(settings, telemetry=False)
    await kit.migrate()
    await kit.breakers.start()
    yield kit
    await kit.db.close()


def replica(kit: ServiceKit) -> OrderManagement:
    """Another replica's order management over the same store."""
    settings = kit.settings
    assert isinstance(settings, OrderSettings)
    return OrderManagement(
        settings.market_rules(),
        strategies={name: s.plan for name, s in settings.strategies.items()},
        max_open_groups=settings.pool.max_open_groups_of,
        capital=settings.capital,
    )


async def closing_group_with_two_orders_left(
    kit: ServiceKit,
) -> tuple[OrderSpec, OrderSpec]:
    """A DCA group exited and flat, its take-profit and stop-loss still waiting for their
    cancels to be answered."""
    async with TestNatsBroker(kit.broker) as broker:
        entries = await open_dca_group(kit, broker)
        exits = await approve_last(kit, broker)
        await deliver(broker, signal("dca", Intent.EXIT_LONG, size=None))
        (close,) = (await approve_last(kit, broker)).orders
        await deliver(broker, report(close, ExecutionStatus.FILLED, "100"))
        for level in (s for s in entries.orders if s.order_type is OrderType.LIMIT):
            await deliver(broker, report(level, ExecutionStatus.CANCELED))
    take_profit = only(exits.orders, order_type=OrderType.LIMIT)
    stop_loss = only(exits.orders, order_type=OrderType.STOP_MARKET)
    return take_profit, stop_loss


def both_wait_before_looking_at_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first time each unit of work reaches its group, it waits for the other to get there."""
    meet = asyncio.Barrier(2)
    met = 0
    looked_up = GroupRepository.group_order

    async def group_order(self: GroupRepository, order_id: str) -> Any:
        nonlocal met
        if met < 2:
            met += 1
            await meet.wait()
        return await looked_up(self, order_id)

    monkeypatch.setattr(GroupRepository, "group_order", group_order)


async def until_committed(kit: ServiceKit, work: Callable[[Any], Awaitable[None]]) -> None:
    """One message's unit of work, run again on fresh state after a lost race (as the kit does)."""
    while True:
        try:
            async with kit.outbox.transaction() as tx:
                await work(tx)
            return
        except ConcurrentUpdate:
            continue


async def test_two_replicas_ending_a_groups_last_orders_at_once_close_it(
    oms: ServiceKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    take_profit, stop_loss = await closing_group_with_two_orders_left(oms)
    (group,) = await groups(oms)
    assert group.status is GroupStatus.CLOSING
    both_wait_before_looking_at_the_group(monkeypatch)
    first, second = replica(oms), replica(oms)

    await asyncio.gather(
        until_committed(
            oms,
            lambda tx: first.on_execution_report(report(take_profit, ExecutionStatus.CANCELED), tx),
        ),
        until_committed(
            oms,
            lambda tx: second.on_execution_report(report(stop_loss, ExecutionStatus.CANCELED), tx),
        ),
    )

    (group,) = await groups(oms)
    assert group.status is GroupStatus.CLOSED
