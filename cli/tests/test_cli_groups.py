"""`ordo groups` and `ordo queue` against a real NATS server, the order service's side stubbed."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from typer.testing import CliRunner, Result

from ordo.cli.main import app
from ordo.contracts.enums import (
    GroupOrderRole,
    GroupStatus,
    OrderStatus,
    OrderType,
    Side,
    TradingState,
)
from ordo.contracts.groups import (
    GroupLegView,
    GroupsView,
    GroupView,
    PoolView,
    QueryGroups,
    QueryQueue,
    QueueEntryView,
    QueueView,
)
from ordo.contracts.subjects import Service, Subject
from ordo.kit.embedded import NatsCredentials, NatsServer

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture
def operator_env(
    nats_server: NatsServer, nats_credentials: NatsCredentials, tmp_path: Path
) -> dict[str, str]:
    operator = nats_credentials.for_service(Service.OPERATOR)
    return {
        "ORDO_VAR_DIR": str(tmp_path),
        "ORDO_NATS_URL": nats_server.url,
        "ORDO_NATS_USER": operator.name,
        "ORDO_NATS_PASSWORD": operator.password,
        "COLUMNS": "250",
    }


@pytest.fixture
async def order_service(
    nats_server: NatsServer, nats_credentials: NatsCredentials
) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(
        nats_server.url,
        user=nats_credentials.admin.name,
        password=nats_credentials.admin.password,
    )
    yield nc
    await nc.close()


async def run_cli(arguments: list[str], env: dict[str, str]) -> Result:
    return await asyncio.to_thread(runner.invoke, app, arguments, env=env)


def a_group() -> GroupView:
    return GroupView(
        group_id="grp-1",
        account="main",
        strategy="dca-grid",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        status=GroupStatus.LIVE,
        signal_id="sig-1",
        quantity=Decimal("0.02"),
        average_entry=Decimal("59700"),
        pyramids=1,
        max_pyramids=2,
        legs=(
            GroupLegView(
                order_id="ord-tp",
                role=GroupOrderRole.TAKE_PROFIT,
                side=Side.SELL,
                order_type=OrderType.LIMIT,
                quantity=Decimal("0.02"),
                limit_price=Decimal("60595.5"),
                status=OrderStatus.ACCEPTED,
                filled_quantity=Decimal(0),
            ),
        ),
        created_at=NOW,
        updated_at=NOW,
    )


def a_queue() -> tuple[PoolView, QueueEntryView]:
    pool = PoolView(
        account="main",
        open_groups=3,
        max_open_groups=3,
        waiting=1,
        trading_state=TradingState.REDUCING,
    )
    entry = QueueEntryView(
        rank=1,
        group_id="grp-2",
        signal_id="sig-2",
        account="main",
        strategy="dca-grid",
        venue="paper",
        symbol="ETH/USDT",
        side=Side.BUY,
        tier=3,
        why="replaces the group in ETH/USDT that just closed",
        enqueued_at=NOW,
    )
    return pool, entry


async def test_groups_json_is_the_order_services_answer(
    order_service: NatsClient, operator_env: dict[str, str]
) -> None:
    queries: list[QueryGroups] = []

    async def respond(msg: Msg) -> None:
        query = QueryGroups.from_json(msg.data)
        queries.append(query)
        await msg.respond(
            GroupsView.caused_by(query, producer="order", groups=(a_group(),)).to_json()
        )

    subscription = await order_service.subscribe(str(Subject.QUERY_GROUPS), cb=respond)
    await order_service.flush()
    try:
        result = await run_cli(
            ["groups", "--account", "main", "--status", "live", "--json"], operator_env
        )
    finally:
        await subscription.unsubscribe()

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [a_group().model_dump(mode="json")]
    [query] = queries
    assert (query.account, query.status) == ("main", GroupStatus.LIVE)


async def test_groups_as_a_table_show_each_group_with_its_orders(
    order_service: NatsClient, operator_env: dict[str, str]
) -> None:
    async def respond(msg: Msg) -> None:
        query = QueryGroups.from_json(msg.data)
        await msg.respond(
            GroupsView.caused_by(query, producer="order", groups=(a_group(),)).to_json()
        )

    subscription = await order_service.subscribe(str(Subject.QUERY_GROUPS), cb=respond)
    await order_service.flush()
    try:
        result = await run_cli(["groups"], operator_env)
    finally:
        await subscription.unsubscribe()

    assert result.exit_code == 0, result.output
    assert "grp-1" in result.stdout
    assert "take_profit accepted 0.02 @ 60595.5" in result.stdout
    assert "1/2" in result.stdout


async def test_queue_shows_each_entry_with_its_tier_and_why(
    order_service: NatsClient, operator_env: dict[str, str]
) -> None:
    pool, entry = a_queue()

    async def respond(msg: Msg) -> None:
        query = QueryQueue.from_json(msg.data)
        view = QueueView.caused_by(query, producer="order", pools=(pool,), entries=(entry,))
        await msg.respond(view.to_json())

    subscription = await order_service.subscribe(str(Subject.QUERY_QUEUE), cb=respond)
    await order_service.flush()
    try:
        table = await run_cli(["queue"], operator_env)
        as_json = await run_cli(["queue", "--account", "main", "--json"], operator_env)
    finally:
        await subscription.unsubscribe()

    assert table.exit_code == 0, table.output
    assert "3 replacement" in table.stdout
    assert "reducing" in table.stdout
    assert "replaces the group in ETH/USDT that just closed" in table.stdout
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == {
        "pools": [pool.model_dump(mode="json")],
        "entries": [entry.model_dump(mode="json")],
    }
