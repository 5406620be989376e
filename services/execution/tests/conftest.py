"""Fixtures the execution service's tests share (the suite-wide ones are in the root conftest)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ordo.kit.embedded import NatsCredentials, NatsServer


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A NATS server of the test's own: its streams and durable consumers start empty."""
    server = NatsServer(tmp_path / "nats", NatsCredentials.generate()).start()
    yield server
    server.stop()
