"""The whole engine as processes over a real NATS JetStream: the integration suite's fixtures."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import nats
import pytest
from integration_support import Operator

from ordo.cli.stack import Stack
from ordo.contracts.subjects import Service

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration
# How long the stack's start waits for each service to be ready: six services starting at once
# on a loaded 2-core machine can take over a minute. ORDO_TEST_READY_TIMEOUT_SECONDS overrides it.
READY_TIMEOUT_SECONDS = float(os.environ.get("ORDO_TEST_READY_TIMEOUT_SECONDS", "120"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = tmp_path_factory.mktemp("config") / "ordo.yaml"
    config.write_text((REPO / "config" / "ordo.yaml").read_text())
    running = Stack(
        tmp_path_factory.mktemp("stack"),
        config_file=config,
        extra_env={"ORDO_RECONCILER__INTERVAL_SECONDS": "2"},
    ).start(ready_timeout=READY_TIMEOUT_SECONDS)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def operator(stack: Stack) -> AsyncIterator[Operator]:
    user = stack.credentials.for_service(Service.OPERATOR)
    admin = stack.credentials.admin
    nc = await nats.connect(stack.nats.url, user=user.name, password=user.password)
    admin_nc = await nats.connect(stack.nats.url, user=admin.name, password=admin.password)
    async with httpx.AsyncClient(timeout=10) as http:
        op = Operator(stack, nc, http)
        op.admin_js = admin_nc.jetstream()
        yield op
    await nc.drain()
    await admin_nc.drain()
