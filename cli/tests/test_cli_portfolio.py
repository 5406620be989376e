"""``ordo positions`` (with P&L), ``ordo signals`` and ``ordo rebalance`` against a real NATS."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import test_cli_nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from rich.console import Console
from test_cli_nats import an_order, ensure_stream, run_cli

from ordo.cli import views
from ordo.cli.errors import EXIT_USAGE
from ordo.contracts.enums import OrderStatus, OrderType, TimeInForce
from ordo.contracts.orders import PositionView, RebalancePortfolio, TargetWeight
from ordo.contracts.queries import (
    PnlTotals,
    PositionsView,
    QueryPositions,
    QueryRebalances,
    QuerySignals,
    RebalancesView,
    RebalanceView,
    SignalOutcomeView,
    SignalsView,
)
from ordo.contracts.subjects import Subject

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
# The NATS fixtures of the CLI's other NATS tests, shared.
admin = test_cli_nats.admin
operator_env = test_cli_nats.operator_env


def a_position(mark: str | None) -> PositionView:
    return PositionView(
        account="main",
        strategy="trend",
        venue="paper",
        symbol="BTC/USDT",
        quantity=Decimal("0.5"),
        average_entry=Decimal(60000),
        realised_pnl=Decimal(-30),
        fees=Decimal(30),
        version=2,
        updated_at=NOW,
        mark_price=None if mark is None else Decimal(mark),
        marked_at=None if mark is None else NOW,
        unrealised_pnl=None if mark is None else (Decimal(mark) - 60000) / 2,
    )


TOTALS = (
    PnlTotals(
        account="main",
        realised_pnl=Decimal(-30),
        unrealised_pnl=Decimal(500),
        fees=Decimal(30),
    ),
)


async def answer_positions(admin: NatsClient, position: PositionView) -> list[QueryPositions]:
    queries: list[QueryPositions] = []

    async def order_service(msg: Msg) -> None:
        query = QueryPositions.from_json(msg.data)
        queries.append(query)
        view = PositionsView.caused_by(
            query, producer="order", positions=(position,), totals=TOTALS
        )
        await msg.respond(view.to_json())

    await admin.subscribe(str(Subject.QUERY_POSITIONS), cb=order_service)
    await admin.flush()
    return queries


async def test_positions_json_carries_marks_unrealised_pnl_and_totals(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    queries = await answer_positions(admin, a_position("61000"))

    result = await run_cli(["positions", "--strategy", "trend", "--json"], operator_env)

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    (position,) = answer["positions"]
    assert (position["mark_price"], position["unrealised_pnl"]) == ("61000", "500")
    (total,) = answer["totals"]
    assert (total["realised_pnl"], total["unrealised_pnl"], total["fees"]) == ("-30", "500", "30")
    assert queries[0].strategy == "trend"


async def test_a_position_without_a_mark_says_so_in_the_table(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    await answer_positions(admin, a_position(None))

    result = await run_cli(["positions"], operator_env)

    assert result.exit_code == 0, result.output
    assert "no mark" in result.stdout
    assert "P&L totals" in result.stdout


async def test_signals_show_each_outcome_and_its_reason(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    refused = SignalOutcomeView(
        signal_id="sig-9",
        outcome="refused",
        reason="max_notional: too big",
        account="main",
        strategy="trend",
        venue="paper",
        symbol="BTC/USDT",
        intent="enter_long",
        recorded_at=NOW,
    )
    queries: list[QuerySignals] = []

    async def order_service(msg: Msg) -> None:
        query = QuerySignals.from_json(msg.data)
        queries.append(query)
        await msg.respond(
            SignalsView.caused_by(query, producer="order", signals=(refused,)).to_json()
        )

    subscription = await admin.subscribe(str(Subject.QUERY_SIGNALS), cb=order_service)
    await admin.flush()
    try:
        as_json = await run_cli(["signals", "--outcome", "refused", "--json"], operator_env)
        table = await run_cli(["signals"], operator_env)
    finally:
        await subscription.unsubscribe()

    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [refused.model_dump(mode="json")]
    assert queries[0].outcome == "refused"
    assert "max_notional: too big" in table.stdout


async def test_rebalance_lands_in_the_orders_stream(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    await ensure_stream(admin, "ORDERS")

    result = await run_cli(
        [
            "rebalance",
            "--account",
            "main",
            "--strategy",
            "s1",
            "--reserve",
            "0.05",
            "BTC/USDT=0.5",
            "ETH/USDT=0.3",
        ],
        operator_env,
    )

    assert result.exit_code == 0, result.output
    rebalance_id = result.stdout.strip()
    js = admin.jetstream()
    pull = await js.pull_subscribe(str(Subject.ORDER_REBALANCE), stream="ORDERS")
    try:
        messages = await pull.fetch(batch=1000, timeout=5)
    finally:
        await pull.unsubscribe()
    [ours] = [m for m in messages if (m.headers or {}).get("Nats-Msg-Id") == rebalance_id]
    command = RebalancePortfolio.from_json(ours.data)
    assert (command.rebalance_id, command.account, command.strategy) == (rebalance_id, "main", "s1")
    assert command.reserve == Decimal("0.05")
    assert {(t.symbol, t.weight) for t in command.targets} == {
        ("BTC/USDT", Decimal("0.5")),
        ("ETH/USDT", Decimal("0.3")),
    }


async def test_rebalance_weights_above_the_whole_are_refused_before_publishing(
    operator_env: dict[str, str],
) -> None:
    result = await run_cli(
        ["rebalance", "--reserve", "0.3", "BTC/USDT=0.5", "ETH/USDT=0.3"], operator_env
    )

    assert result.exit_code == EXIT_USAGE
    assert "add up to more than the whole portfolio" in result.stderr


async def test_a_target_that_is_not_symbol_equals_weight_is_bad_usage(
    operator_env: dict[str, str],
) -> None:
    result = await run_cli(["rebalance", "BTC/USDT:0.5"], operator_env)

    assert result.exit_code == EXIT_USAGE
    assert "SYMBOL=WEIGHT" in result.stderr


async def test_rebalances_show_how_far_each_got_and_why_one_was_refused(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    refused = RebalanceView(
        rebalance_id="rb-1",
        phase="refused",
        account="main",
        strategy="s1",
        venue="paper",
        reserve=Decimal("0.05"),
        targets=(TargetWeight(symbol="BTC/USDT", weight=Decimal("0.5")),),
        detail="no mark for BTC/USDT: the portfolio cannot be valued without a quote",
        created_at=NOW,
        updated_at=NOW,
    )
    queries: list[QueryRebalances] = []

    async def order_service(msg: Msg) -> None:
        query = QueryRebalances.from_json(msg.data)
        queries.append(query)
        view = RebalancesView.caused_by(query, producer="order", rebalances=(refused,))
        await msg.respond(view.to_json())

    subscription = await admin.subscribe(str(Subject.QUERY_REBALANCES), cb=order_service)
    await admin.flush()
    try:
        as_json = await run_cli(["rebalances", "--id", "rb-1", "--json"], operator_env)
        table = await run_cli(["rebalances"], operator_env)
    finally:
        await subscription.unsubscribe()

    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [refused.model_dump(mode="json")]
    assert queries[0].rebalance_id == "rb-1"
    assert "refused" in table.stdout
    assert "BTC/USDT=0.5" in table.stdout


@pytest.mark.parametrize(
    ("released_at", "label"),
    [(None, "stop_market GTC reduce-only (held)"), (NOW, "stop_market GTC reduce-only (emulated)")],
)
def test_an_emulated_order_reads_held_until_its_trigger_released_it(
    released_at: datetime | None, label: str
) -> None:
    stop = an_order("sig-1").model_copy(
        update={
            "order_type": OrderType.STOP_MARKET,
            "stop_price": Decimal(59000),
            "time_in_force": TimeInForce.GTC,
            "reduce_only": True,
            "status": OrderStatus.INITIALIZED,
            "emulated": True,
            "released_at": released_at,
        }
    )
    console = Console(record=True, width=300)
    console.print(views.orders_table([stop]))
    assert label in console.export_text()
