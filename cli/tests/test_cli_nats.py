"""The commands against a real NATS server, as the operator user: queries, commands, status."""

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
from nats.js.errors import NotFoundError
from typer.testing import CliRunner, Result

from ordo.cli.errors import EXIT_TIMEOUT, EXIT_UNREACHABLE
from ordo.cli.main import app
from ordo.contracts.enums import OrderStatus, OrderType, Side, TradingState
from ordo.contracts.orders import OrderView
from ordo.contracts.queries import OrdersView, QueryOrders
from ordo.contracts.risk import SetTradingState
from ordo.contracts.subjects import STREAMS, Service, Subject
from ordo.kit.embedded import NatsCredentials, NatsServer
from ordo.kit.messaging import stream_config

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture
def operator_env(
    nats_server: NatsServer, nats_credentials: NatsCredentials, tmp_path: Path
) -> dict[str, str]:
    """The environment of an operator whose stack is found through ORDO_NATS_URL."""
    operator = nats_credentials.for_service(Service.OPERATOR)
    return {
        "ORDO_VAR_DIR": str(tmp_path),  # no stack file here
        "ORDO_NATS_URL": nats_server.url,
        "ORDO_NATS_USER": operator.name,
        "ORDO_NATS_PASSWORD": operator.password,
        "COLUMNS": "200",
    }


@pytest.fixture
async def admin(
    nats_server: NatsServer, nats_credentials: NatsCredentials
) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(
        nats_server.url,
        user=nats_credentials.admin.name,
        password=nats_credentials.admin.password,
    )
    yield nc
    await nc.close()


async def ensure_stream(nc: NatsClient, name: str) -> None:
    """What the services do at start-up, for one stream."""
    js = nc.jetstream()
    spec = next(spec for spec in STREAMS if spec.name == name)
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config=stream_config(spec))


async def run_cli(arguments: list[str], env: dict[str, str]) -> Result:
    # The command runs its own event loop: off this test's loop, in a thread.
    return await asyncio.to_thread(runner.invoke, app, arguments, env=env)


def an_order(signal_id: str) -> OrderView:
    return OrderView(
        order_id="01a1ffb3-4fe9-70c8-b81c-67fbf3d0fbdd",
        signal_id=signal_id,
        account="main",
        strategy="manual",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.01"),
        status=OrderStatus.FILLED,
        filled_quantity=Decimal("0.01"),
        average_fill_price=Decimal("60000.5"),
        fees=Decimal("0.6"),
        version=3,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_orders_json_is_the_order_services_answer(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    queries: list[QueryOrders] = []

    async def order_service(msg: Msg) -> None:
        query = QueryOrders.from_json(msg.data)
        queries.append(query)
        view = OrdersView.caused_by(query, producer="order", orders=(an_order("sig-1"),))
        await msg.respond(view.to_json())

    subscription = await admin.subscribe(str(Subject.QUERY_ORDERS), cb=order_service)
    await admin.flush()
    try:
        result = await run_cli(
            ["orders", "--account", "main", "--status", "filled", "--limit", "5", "--json"],
            operator_env,
        )
    finally:
        await subscription.unsubscribe()

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [an_order("sig-1").model_dump(mode="json")]
    [query] = queries
    assert (query.account, query.status, query.limit) == ("main", OrderStatus.FILLED, 5)
    assert query.producer == "operator"


async def test_orders_as_a_table_shows_each_order(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    async def order_service(msg: Msg) -> None:
        query = QueryOrders.from_json(msg.data)
        view = OrdersView.caused_by(query, producer="order", orders=(an_order("sig-2"),))
        await msg.respond(view.to_json())

    subscription = await admin.subscribe(str(Subject.QUERY_ORDERS), cb=order_service)
    await admin.flush()
    try:
        result = await run_cli(["orders"], operator_env)
    finally:
        await subscription.unsubscribe()

    assert result.exit_code == 0, result.output
    assert "01a1ffb3-4fe9-70c8-b81c-67fbf3d0fbdd" in result.stdout
    assert "60000.5" in result.stdout
    assert "filled" in result.stdout


async def test_a_query_nobody_answers_says_which_service_is_missing(
    operator_env: dict[str, str],
) -> None:
    result = await run_cli(["positions"], operator_env)

    assert result.exit_code == EXIT_UNREACHABLE
    assert "order service" in result.stderr


async def test_a_query_without_a_reply_times_out(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    async def silent(msg: Msg) -> None:
        return None

    subscription = await admin.subscribe(str(Subject.QUERY_ORDERS), cb=silent)
    await admin.flush()
    try:
        result = await run_cli(["orders", "--timeout", "0.2"], operator_env)
    finally:
        await subscription.unsubscribe()

    assert result.exit_code == EXIT_TIMEOUT
    assert "no reply on query.orders.v1" in result.stderr


async def test_halt_lands_in_the_ops_stream(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    await ensure_stream(admin, "OPS")

    result = await run_cli(
        ["halt", "--account", "main", "--reason", "drawdown", "--operator", "ann", "--no-wait"],
        operator_env,
    )

    assert result.exit_code == 0, result.output
    message_id = result.stdout.strip()
    js = admin.jetstream()
    pull = await js.pull_subscribe(str(Subject.OPS_SET_TRADING_STATE), stream="OPS")
    try:
        messages = await pull.fetch(batch=1000, timeout=5)
    finally:
        await pull.unsubscribe()
    [ours] = [m for m in messages if (m.headers or {}).get("Nats-Msg-Id") == message_id]
    command = SetTradingState.from_json(ours.data)
    assert command.message_id == message_id
    assert (command.account, command.state, command.reason, command.operator) == (
        "main",
        TradingState.HALTED,
        "drawdown",
        "ann",
    )
    assert command.producer == "operator"


async def test_status_counts_the_messages_of_each_stream(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    await ensure_stream(admin, "OPS")
    expected = (await admin.jetstream().stream_info("OPS")).state.messages

    result = await run_cli(["status", "--json"], operator_env)

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["streams"]["OPS"]["messages"] == expected
    assert set(status["streams"]) == {spec.name for spec in STREAMS}
    assert status["services"] == {}


async def test_wrong_credentials_are_reported_as_such(operator_env: dict[str, str]) -> None:
    env = {**operator_env, "ORDO_NATS_PASSWORD": "not-the-password"}

    result = await run_cli(["orders"], env)

    assert result.exit_code == EXIT_UNREACHABLE
    assert "refused user 'ordo-operator'" in result.stderr
