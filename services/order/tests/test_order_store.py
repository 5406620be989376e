"""The OMS store on its migrated schema: exact round trips and optimistic saves.

Runs on SQLite, and on PostgreSQL too when ORDO_TEST_POSTGRES_URL is set.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ordo.contracts.enums import ExecutionStatus, OrderStatus, Side
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.orders import OrderSpec
from ordo.kit.migrations import upgrade_async
from ordo.kit.store import Database
from ordo.order.domain import Order, Position
from ordo.order.store import ConcurrentUpdate, OrderRepository, PositionRepository

NOW = datetime(2025, 3, 14, 9, 30, 0, 123456, tzinfo=UTC)
LATER = NOW + timedelta(seconds=1)
KEY = ("main", "trend", "paper", "BTC/USDT")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await upgrade_async("order", database_url)
    database = Database(database_url)
    yield database
    await database.close()


def new_order(order_id: str = "ord-1") -> Order:
    spec = OrderSpec(
        order_id=order_id,
        account="main",
        strategy="trend",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=Decimal("0.3"),
        reference_price=Decimal("60000.01"),
    )
    return Order.new(spec, signal_id="sig-1", proposal_id="prop-1", now=NOW)


def partial_fill(order: Order, fill_id: str, quantity: str, cumulative: str) -> ExecutionReport:
    fill = Fill(
        fill_id=fill_id,
        quantity=Decimal(quantity),
        price=Decimal("60000.5"),
        fee=Decimal("0.0123"),
        fee_currency="USDT",
        filled_at=NOW,
    )
    return ExecutionReport(
        correlation_id="sig-1",
        producer="execution",
        order_id=order.order_id,
        venue_order_id="paper-7",
        account=order.account,
        venue=order.venue,
        symbol=order.symbol,
        side=order.side,
        status=ExecutionStatus.PARTIALLY_FILLED,
        cumulative_quantity=Decimal(cumulative),
        fill=fill,
    )


async def save_order(db: Database, order: Order) -> None:
    async with db.session() as session:
        await OrderRepository(session).save(order)
        await session.commit()


async def load_order(db: Database, order_id: str = "ord-1") -> Order | None:
    async with db.session() as session:
        return await OrderRepository(session).get(order_id)


async def test_an_order_with_fills_loads_back_exactly(db: Database) -> None:
    order = new_order()
    order.submit(NOW)
    report = partial_fill(order, "paper-7-1", "0.1", "0.1")
    applied = order.apply_report(report, LATER)
    assert applied.new_fill is not None
    async with db.session() as session:
        orders = OrderRepository(session)
        await orders.save(order)
        await orders.record_fill(order.order_id, applied.new_fill)
        await session.commit()

    loaded = await load_order(db)

    assert loaded == order
    assert loaded.status is OrderStatus.PARTIALLY_FILLED
    assert loaded.fills_notional == Decimal("6000.05")
    # The stored fill ids are the order's memory: the same fill applies nothing twice.
    assert loaded.apply_report(report, LATER).new_fill is None


async def test_two_concurrent_saves_from_one_order_version_let_only_one_through(
    db: Database,
) -> None:
    await save_order(db, new_order())
    both_loaded = asyncio.Barrier(2)

    async def submit_from_the_loaded_version() -> None:
        async with db.session() as session:
            orders = OrderRepository(session)
            order = await orders.get("ord-1")
            assert order is not None
            await both_loaded.wait()
            order.submit(LATER)
            await orders.save(order)
            await session.commit()

    outcomes = await asyncio.gather(
        submit_from_the_loaded_version(), submit_from_the_loaded_version(), return_exceptions=True
    )

    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "ConcurrentUpdate",
        "NoneType",
    ]
    stored = await load_order(db)
    assert stored is not None
    assert (stored.status, stored.version) == (OrderStatus.SUBMITTED, 2)


async def test_a_stale_order_cannot_overwrite_a_newer_one(db: Database) -> None:
    await save_order(db, new_order())
    async with db.session() as first, db.session() as second:
        fresh, stale = OrderRepository(first), OrderRepository(second)
        winner, loser = await fresh.get("ord-1"), await stale.get("ord-1")
        assert winner is not None and loser is not None
        winner.submit(LATER)
        await fresh.save(winner)
        await first.commit()

        loser.deny("MAX_NOTIONAL_PER_ORDER: too big", LATER)
        with pytest.raises(ConcurrentUpdate):
            await stale.save(loser)

    stored = await load_order(db)
    assert stored is not None and stored.status is OrderStatus.SUBMITTED


async def test_creating_an_order_that_exists_is_a_concurrent_update(db: Database) -> None:
    await save_order(db, new_order())
    with pytest.raises(ConcurrentUpdate):
        await save_order(db, new_order())


async def test_a_stale_position_cannot_overwrite_a_newer_one(db: Database) -> None:
    opened = Position.flat(*KEY, NOW)
    opened.apply_fill(Side.BUY, Decimal("1"), Decimal("100"), Decimal("0.1"), NOW)
    async with db.session() as session:
        await PositionRepository(session).save(opened)
        await session.commit()

    async with db.session() as first, db.session() as second:
        fresh, stale = PositionRepository(first), PositionRepository(second)
        winner, loser = await fresh.get(*KEY), await stale.get(*KEY)
        assert winner == opened and loser == opened
        assert winner is not None and loser is not None
        winner.apply_fill(Side.BUY, Decimal("1"), Decimal("110"), Decimal("0.1"), LATER)
        await fresh.save(winner)
        await first.commit()

        loser.apply_fill(Side.SELL, Decimal("1"), Decimal("120"), Decimal("0.1"), LATER)
        with pytest.raises(ConcurrentUpdate):
            await stale.save(loser)

    async with db.session() as session:
        stored = await PositionRepository(session).get(*KEY)
    assert stored == winner
    assert stored is not None and stored.average_entry == Decimal("105")


async def test_opening_the_same_position_twice_is_a_concurrent_update(db: Database) -> None:
    def short() -> Position:
        position = Position.flat(*KEY, NOW)
        position.apply_fill(Side.SELL, Decimal("1"), Decimal("100"), Decimal("0"), NOW)
        return position

    async with db.session() as session:
        await PositionRepository(session).save(short())
        await session.commit()
    async with db.session() as session:
        with pytest.raises(ConcurrentUpdate):
            await PositionRepository(session).save(short())


async def test_a_plan_on_a_stale_position_version_is_a_concurrent_update(db: Database) -> None:
    opened = Position.flat(*KEY, NOW)
    opened.apply_fill(Side.BUY, Decimal("1"), Decimal("100"), Decimal("0.1"), NOW)
    async with db.session() as session:
        await PositionRepository(session).save(opened)
        await session.commit()

    async with db.session() as first, db.session() as second:
        winner, loser = PositionRepository(first), PositionRepository(second)
        seen_first, seen_second = await winner.get(*KEY), await loser.get(*KEY)
        assert seen_first is not None and seen_second is not None
        await winner.claim(seen_first)
        await first.commit()

        with pytest.raises(ConcurrentUpdate):
            await loser.claim(seen_second)


async def test_the_working_orders_of_a_position_are_its_unfinished_ones(db: Database) -> None:
    working, finished, elsewhere = new_order("ord-1"), new_order("ord-2"), new_order("ord-3")
    working.submit(NOW)
    finished.deny("TRADING_HALTED: halted", NOW)
    elsewhere.strategy = "other"
    for order in (working, finished, elsewhere):
        await save_order(db, order)

    async with db.session() as session:
        found = await OrderRepository(session).working_orders_of(*KEY)

    assert [(order.order_id, order.status) for order in found] == [("ord-1", OrderStatus.SUBMITTED)]


async def test_the_working_exits_of_a_position_are_its_unfinished_reduce_only_orders(
    db: Database,
) -> None:
    entry, exit_ = new_order("ord-1"), new_order("ord-2")
    exit_.reduce_only = True
    for order in (entry, exit_):
        order.submit(NOW)
        await save_order(db, order)

    async with db.session() as session:
        found = await OrderRepository(session).working_orders_of(*KEY, reducing=True)

    assert [order.order_id for order in found] == ["ord-2"]
