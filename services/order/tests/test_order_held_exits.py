"""Orders the OMS holds for emulation (the venue takes no stops) in position groups and at their
expiry: a held stop-loss the quotes trigger closes its group as a venue's stop would; a group's
exits and one-cancels-the-other end a held stop-loss at once, with no cancel to a venue that never
saw it; and a held GTD order expires on time without waiting for a quote."""

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.nats import TestNatsBroker
from sqlalchemy import select
from test_order_position_groups import (
    STRATEGIES,
    approve_last,
    deliver,
    groups,
    only,
    open_dca_group,
    proposals,
    published,
    report,
    signal,
)

from ordo.contracts.enums import (
    ExecutionStatus,
    GroupStatus,
    Intent,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from ordo.contracts.envelope import new_message_id
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import CancelOrder, OrderSpec, OrderUpdated
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.order import store
from ordo.order.app import build
from ordo.order.config import OrderSettings
from ordo.order.domain import Order
from ordo.order.handlers import OrderManagement
from ordo.order.market_handlers import OrderExpiry, OrderPlacement
from ordo.order.store import Repositories

D = Decimal
NO_STOPS = {"order_types": ["market", "limit"]}


@pytest.fixture
async def oms(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = OrderSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}",
        strategies=STRATEGIES,
        pool={"max_open_groups": 1},
        venues={"paper": NO_STOPS},
    )
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    await kit.breakers.start()
    yield kit
    await kit.db.close()


async def stop_losses(kit: ServiceKit) -> list[Order]:
    async with kit.db.session() as session:
        ids = await session.scalars(
            select(store.orders.c.order_id)
            .where(store.orders.c.order_type == OrderType.STOP_MARKET.value)
            .order_by(store.orders.c.created_at, store.orders.c.order_id)
        )
        repos = Repositories(session)
        found = [await repos.orders.get(order_id) for order_id in ids.all()]
    return [order for order in found if order is not None]


async def cancelled(kit: ServiceKit) -> set[str]:
    return {cancel.order_id for cancel in await published(kit, CancelOrder)}


async def test_the_base_fill_holds_the_stop_loss_and_proposes_only_the_take_profit(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_dca_group(oms, broker)

    (take_profit,) = (await proposals(oms))[-1].orders
    assert take_profit.order_type is OrderType.LIMIT
    (stop,) = await stop_losses(oms)
    assert stop.is_held
    assert (stop.quantity, stop.stop_price, stop.reduce_only) == (D("0.1"), D("95"), True)


async def test_an_exit_ends_the_held_stop_loss_without_a_cancel_and_the_group_closes(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        entries = await open_dca_group(oms, broker)
        exits = await approve_last(oms, broker)
        await deliver(broker, signal("dca", Intent.EXIT_LONG, size=None))
        (stop,) = await stop_losses(oms)
        assert stop.status is OrderStatus.CANCELED
        assert stop.order_id not in await cancelled(oms)  # no venue ever saw it

        working = [s for s in (*entries.orders, *exits.orders) if s.order_type is OrderType.LIMIT]
        assert await cancelled(oms) == {s.order_id for s in working}
        for spec in working:
            await deliver(broker, report(spec, ExecutionStatus.CANCELED))
        (close,) = (await approve_last(oms, broker)).orders
        await deliver(broker, report(close, ExecutionStatus.FILLED, "100"))

    (group,) = await groups(oms)
    assert group.status is GroupStatus.CLOSED


async def test_a_take_profit_fill_ends_the_held_stop_loss_one_cancels_the_other(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        entries = await open_dca_group(oms, broker)
        (take_profit,) = (await approve_last(oms, broker)).orders
        await deliver(broker, report(take_profit, ExecutionStatus.FILLED, "101"))
        (stop,) = await stop_losses(oms)
        assert stop.status is OrderStatus.CANCELED
        levels = [s for s in entries.orders if s.order_type is OrderType.LIMIT]
        assert await cancelled(oms) == {s.order_id for s in levels}
        for spec in levels:
            await deliver(broker, report(spec, ExecutionStatus.CANCELED))

    (group,) = await groups(oms)
    assert group.status is GroupStatus.CLOSED


async def test_a_dca_fill_re_places_the_held_stop_loss_and_leaves_no_second_one(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        entries = await open_dca_group(oms, broker)
        await approve_last(oms, broker)
        level = only(entries.orders, limit_price=D("99"))
        await deliver(broker, report(level, ExecutionStatus.FILLED, "99"))

    first, second = await stop_losses(oms)
    assert first.status is OrderStatus.CANCELED
    assert first.order_id not in await cancelled(oms)
    assert second.is_held
    assert second.quantity == D("0.2")  # the base and the level


async def test_a_held_stop_loss_triggered_by_a_quote_closes_the_group_and_cancels_the_rest(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        entries = await open_dca_group(oms, broker)
        (take_profit,) = (await approve_last(oms, broker)).orders
        await deliver(broker, quote("94"))
        (released,) = (await approve_last(oms, broker)).orders
        assert (released.order_type, released.quantity) == (OrderType.MARKET, D("0.1"))
        await deliver(broker, report(released, ExecutionStatus.FILLED, "94"))
        working = [take_profit, *(s for s in entries.orders if s.order_type is OrderType.LIMIT)]
        assert await cancelled(oms) == {s.order_id for s in working}
        for spec in working:
            await deliver(broker, report(spec, ExecutionStatus.CANCELED))

    (group,) = await groups(oms)
    assert group.status is GroupStatus.CLOSED
    assert group.reason is not None and "stop_loss" in group.reason


def quote(last: str) -> MarketQuote:
    return MarketQuote(
        correlation_id=new_message_id(),
        producer="execution",
        venue="paper",
        symbol="BTC/USDT",
        last=D(last),
        quoted_at=utc_now() + timedelta(seconds=1),
    )


async def test_a_released_order_is_no_longer_held() -> None:
    now = utc_now()
    order = Order.new(stop_loss_spec(expire_at=None), "sig", "prop", now, emulated=True)
    assert order.is_held
    order.release(D("94"), "prop-2", now)
    assert not order.is_held
    assert not order.expire(now + timedelta(days=1))  # with the risk gate: not the OMS's to end
    assert not order.to_view().is_held


def stop_loss_spec(*, expire_at: object) -> OrderSpec:
    return OrderSpec(
        order_id=new_message_id(),
        account="main",
        strategy="plain",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.SELL,
        order_type=OrderType.STOP_MARKET,
        stop_price=D("95"),
        quantity=D("0.1"),
        reduce_only=True,
        time_in_force=TimeInForce.GTD if expire_at else TimeInForce.GTC,
        expire_at=expire_at,  # type: ignore[arg-type]
    )


async def test_a_held_gtd_order_expires_on_time_without_a_quote_or_a_cancel(
    oms: ServiceKit,
) -> None:
    settings = oms.settings
    assert isinstance(settings, OrderSettings)
    spec = stop_loss_spec(expire_at=utc_now() + timedelta(seconds=30))
    domain = OrderManagement(settings.market_rules())
    placement = OrderPlacement(settings.venue_capabilities(), domain.settle_order)
    async with oms.outbox.transaction() as tx:
        sent = await placement.place(
            [spec],
            signal_id="sig-gtd",
            proposal_id="prop-gtd",
            cause=signal("dca"),
            repos=Repositories(tx.session),
            tx=tx,
            now=utc_now(),
            detail="placed by a test",
        )
    assert sent == []  # held
    later = spec.expire_at + timedelta(seconds=1)  # type: ignore[operator]
    expiry = OrderExpiry(oms.outbox, oms.db, domain.settle_order_and_group, clock=lambda: later)

    assert await expiry.run() == 1
    assert await expiry.run() == 0
    (stop,) = await stop_losses(oms)
    assert stop.status is OrderStatus.EXPIRED
    assert await published(oms, CancelOrder) == []
    updates = [u.order for u in await published(oms, OrderUpdated)]
    assert updates[-1].status is OrderStatus.EXPIRED
