"""The store's column types: exact decimals and aware datetimes on every backend."""

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from ordo.kit.store import ExactDecimal, UtcDateTime

metadata = MetaData()
amounts = Table(
    "amounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", ExactDecimal),
    Column("at", UtcDateTime),
)


async def _round_trip(database_url: str, value: Decimal) -> Decimal:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(amounts).values(id=1, value=value))
            return (await connection.execute(select(amounts.c.value))).scalar_one()
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "value", ["0.5999035", "60000", "-12.5", "0.000000000000000001", "12345678901234567890.5"]
)
async def test_decimals_come_back_exactly(database_url: str, value: str) -> None:
    stored = await _round_trip(database_url, Decimal(value))
    assert stored == Decimal(value)
    assert format(stored, "f") == value  # as written: no padding, no exponent


async def test_places_beyond_eighteen_are_rounded_alike_on_every_backend(database_url: str) -> None:
    average = Decimal(1) / Decimal(3) * Decimal("59990.35")
    stored = await _round_trip(database_url, average)
    assert stored == average.quantize(Decimal("1e-18"))


async def test_floats_are_refused(database_url: str) -> None:
    with pytest.raises(Exception, match="floats are not stored as money"):
        await _round_trip(database_url, 0.1)  # type: ignore[arg-type]


async def test_naive_datetimes_are_refused(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            with pytest.raises(Exception, match="naive datetimes are not stored"):
                await connection.execute(insert(amounts).values(id=2, at=datetime(2026, 1, 1)))  # noqa: DTZ001
    finally:
        await engine.dispose()
