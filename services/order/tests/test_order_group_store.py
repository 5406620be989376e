"""Position groups, pools and trading states on the migrated schema: optimistic saves hold.

Runs on SQLite, and on PostgreSQL too when ORDO_TEST_POSTGRES_URL is set.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ordo.contracts.enums import GroupStatus, Side, TradingState
from ordo.kit.migrations import upgrade_async
from ordo.kit.store import ConcurrentUpdate, Database
from ordo.order.domain.groups import PositionGroup
from ordo.order.group_store import GroupRepository, TradingStateRepository

NOW = datetime(2025, 3, 14, 9, 30, 0, 123456, tzinfo=UTC)
LATER = NOW + timedelta(seconds=1)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await upgrade_async("order", database_url)
    database = Database(database_url)
    yield database
    await database.close()


def a_group(group_id: str = "grp-1", status: GroupStatus = GroupStatus.LIVE) -> PositionGroup:
    return PositionGroup(
        group_id=group_id,
        account="main",
        strategy="dca",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        status=status,
        signal_id="sig-1",
        created_at=NOW,
        updated_at=NOW,
    )


async def save(db: Database, group: PositionGroup) -> None:
    async with db.session() as session:
        await GroupRepository(session).save(group)
        await session.commit()


async def test_a_group_loads_back_as_it_was_saved(db: Database) -> None:
    await save(db, a_group())
    async with db.session() as session:
        loaded = await GroupRepository(session).open_group_of("main", "dca", "paper", "BTC/USDT")
    assert loaded == a_group()


async def test_one_key_has_one_open_group_but_any_number_of_closed_ones(db: Database) -> None:
    first = a_group("grp-1")
    await save(db, first)
    with pytest.raises(ConcurrentUpdate):
        await save(db, a_group("grp-2"))
    async with db.session() as session:
        groups = GroupRepository(session)
        loaded = await groups.get("grp-1")
        assert loaded is not None
        loaded.close("done", LATER)
        await groups.save(loaded)
        await session.commit()
    await save(db, a_group("grp-2"))


async def test_two_decisions_on_one_group_version_let_only_one_through(db: Database) -> None:
    await save(db, a_group())
    both_loaded = asyncio.Barrier(2)

    async def claim_the_loaded_version() -> None:
        async with db.session() as session:
            groups = GroupRepository(session)
            group = await groups.get("grp-1")
            assert group is not None
            await both_loaded.wait()
            group.claim(LATER)
            await groups.save(group)
            await session.commit()

    outcomes = await asyncio.gather(
        claim_the_loaded_version(), claim_the_loaded_version(), return_exceptions=True
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "ConcurrentUpdate",
        "NoneType",
    ]


async def test_an_older_trading_state_never_replaces_a_newer_one(db: Database) -> None:
    async with db.session() as session:
        states = TradingStateRepository(session)
        assert await states.record("main", TradingState.HALTED, "breach", "risk", LATER)
        assert not await states.record("main", TradingState.ACTIVE, "late", "desk", NOW)
        assert await states.state_of("main") == (TradingState.HALTED, "breach")
        assert await states.state_of("other") == (
            TradingState.ACTIVE,
            "no trading state announced by risk",
        )
