"""Each service's Alembic history builds exactly the schema its models declare."""

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from ordo.kit.migrations import upgrade_async

SERVICES = ["signal", "order", "risk", "execution", "reconciler", "notifier"]


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_build_the_schema_the_models_declare(
    service: str, database_url: str
) -> None:
    metadata = importlib.import_module(f"ordo.{service}.store").metadata
    await upgrade_async(service, database_url)

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert differences == [], f"{service}: models and migrations differ: {differences}"
