"""``ordo risk``: the risk audit and limits against a real NATS server, as the operator user; the
risk service is played by a responder on the admin connection."""

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
from rich.console import Console
from typer.testing import CliRunner, Result

from ordo.cli.errors import EXIT_NOT_FOUND, EXIT_TIMEOUT, EXIT_USAGE, InvalidInput
from ordo.cli.main import app
from ordo.cli.risk import decisions_table, parse_assignments
from ordo.contracts.enums import OrderType, Side, TradingState
from ordo.contracts.orders import OrderSpec
from ordo.contracts.risk import (
    DenialReason,
    LimitChangeRecord,
    QueryRiskAudit,
    QueryRiskDecisions,
    QueryRiskLimits,
    RiskAuditView,
    RiskDecisionRecord,
    RiskDecisionsView,
    RiskLimitsView,
    SetRiskLimits,
    SetTradingState,
    TradingStateRecord,
)
from ordo.contracts.subjects import STREAMS, Service, Subject
from ordo.kit.embedded import NatsCredentials, NatsServer
from ordo.kit.messaging import stream_config

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
        "COLUMNS": "220",
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


async def run_cli(arguments: list[str], env: dict[str, str]) -> Result:
    return await asyncio.to_thread(runner.invoke, app, arguments, env=env)


def a_denial() -> RiskDecisionRecord:
    spec = OrderSpec(
        order_id="ord-7",
        account="main",
        strategy="trend",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal(5),
        reference_price=Decimal(60000),
    )
    return RiskDecisionRecord(
        decision_id="d-1",
        proposal_id="p-1",
        signal_id="s-1",
        correlation_id="s-1",
        account="main",
        approved=False,
        reasons=(
            DenialReason(
                code="MAX_NOTIONAL_PER_ORDER",
                message="too big",
                order_id="ord-7",
                limit=Decimal(250000),
                actual=Decimal(300000),
            ),
        ),
        trading_state=TradingState.ACTIVE,
        orders=(spec,),
        limits={"max_notional_per_order": "250000"},
        exposure={"account": "main", "positions": [], "reservations": []},
        decided_at=NOW,
    )


def test_a_reason_is_shown_with_its_number_and_limit_whichever_is_larger() -> None:
    # A stop-loss denial's number is below its limit (stops for 0 of an entry of 5).
    short_of_stops = DenialReason(
        code="STOP_LOSS_REQUIRED", message="needs stops", limit=Decimal(5), actual=Decimal(0)
    )
    no_numbers = DenialReason(code="TRADING_HALTED", message="halted")
    record = a_denial().model_copy(update={"reasons": (short_of_stops, no_numbers)})
    console = Console(width=200, record=True)

    console.print(decisions_table([record]))

    shown = console.export_text()
    assert "STOP_LOSS_REQUIRED 0 (limit 5)" in shown
    assert "TRADING_HALTED" in shown
    assert "None" not in shown


# -- arguments ----------------------------------------------------------------------------------


def test_assignments_become_the_changes_and_none_lifts_a_limit() -> None:
    assert parse_assignments(["max_notional_per_order=1000", "max_leverage=none"]) == {
        "max_notional_per_order": "1000",
        "max_leverage": None,
    }


@pytest.mark.parametrize("bad", [["max_open_positions"], ["=3"], ["a=1", "a=2"], ["a="]])
def test_an_assignment_that_is_not_limit_equals_value_is_refused(bad: list[str]) -> None:
    with pytest.raises(InvalidInput):
        parse_assignments(bad)


@pytest.mark.parametrize(
    "arguments",
    [
        ["risk", "limits", "set", "max_open_positions=3", "--reason", "r"],
        ["risk", "limits", "set", "max_open_positions=3", "--default", "-a", "main", "-r", "r"],
        ["risk", "limits", "set", "--account", "main", "--reason", "nothing to change"],
    ],
    ids=["no-scope", "both-scopes", "no-change"],
)
def test_a_limits_change_needs_one_scope_and_something_to_change(
    arguments: list[str], tmp_path: Path
) -> None:
    env = {"ORDO_VAR_DIR": str(tmp_path), "ORDO_NATS_URL": "", "USER": "ann"}

    result = runner.invoke(app, arguments, env=env)

    assert result.exit_code == EXIT_USAGE, result.output


# -- against NATS -------------------------------------------------------------------------------


async def test_decisions_of_an_order_are_asked_of_the_risk_service(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    queries: list[QueryRiskDecisions] = []

    async def risk_service(msg: Msg) -> None:
        query = QueryRiskDecisions.from_json(msg.data)
        queries.append(query)
        found = (a_denial(),) if query.order_id == "ord-7" else ()
        view = RiskDecisionsView.caused_by(query, producer="risk", decisions=found)
        await msg.respond(view.to_json())

    subscription = await admin.subscribe(str(Subject.QUERY_RISK_DECISIONS), cb=risk_service)
    await admin.flush()
    try:
        as_json = await run_cli(["risk", "decisions", "--order", "ord-7", "--json"], operator_env)
        as_table = await run_cli(["risk", "decisions", "--order", "ord-7"], operator_env)
        unknown = await run_cli(["risk", "decisions", "--order", "ord-8"], operator_env)
    finally:
        await subscription.unsubscribe()

    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [a_denial().model_dump(mode="json")]
    assert as_table.exit_code == 0, as_table.output
    assert "MAX_NOTIONAL_PER_ORDER 300000 (limit 250000)" in as_table.stdout
    assert "denied" in as_table.stdout
    assert unknown.exit_code == EXIT_NOT_FOUND
    assert "no decision about order ord-8" in unknown.stderr
    assert {q.order_id for q in queries} == {"ord-7", "ord-8"}
    assert all(q.producer == "operator" for q in queries)


async def test_the_limits_show_what_is_in_force_and_what_was_set_at_run_time(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    async def risk_service(msg: Msg) -> None:
        query = QueryRiskLimits.from_json(msg.data)
        view = RiskLimitsView.caused_by(
            query,
            producer="risk",
            account=query.account,
            effective={"max_notional_per_order": "1000", "max_open_positions": 20},
            configured={"max_notional_per_order": "250000", "max_open_positions": 20},
            overrides={"max_notional_per_order": "1000"},
            trading_state=TradingState.REDUCING,
        )
        await msg.respond(view.to_json())

    subscription = await admin.subscribe(str(Subject.QUERY_RISK_LIMITS), cb=risk_service)
    await admin.flush()
    try:
        result = await run_cli(["risk", "limits", "show", "--account", "main"], operator_env)
    finally:
        await subscription.unsubscribe()

    assert result.exit_code == 0, result.output
    assert "Risk limits of account main, trading state reducing" in result.stdout
    [row] = [line for line in result.stdout.splitlines() if "max_notional_per_order" in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells == ["max_notional_per_order", "1000", "250000", "1000"]


async def ensure_stream(nc: NatsClient, name: str) -> None:
    js = nc.jetstream()
    spec = next(spec for spec in STREAMS if spec.name == name)
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config=stream_config(spec))


async def test_a_limits_change_goes_to_the_ops_stream_and_reports_the_risk_services_verdict(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    await ensure_stream(admin, "OPS")
    commands: list[SetRiskLimits] = []

    async def command_seen(msg: Msg) -> None:
        commands.append(SetRiskLimits.from_json(msg.data))

    async def risk_service(msg: Msg) -> None:
        query = QueryRiskAudit.from_json(msg.data)
        changes = tuple(
            LimitChangeRecord(
                account=command.account,
                outcome="refused",
                reason=command.reason,
                actor=command.operator,
                command_id=command.message_id,
                before={},
                after={},
                error="max_notional_per_order: must be greater than zero",
                at=NOW,
            )
            for command in commands
        )
        view = RiskAuditView.caused_by(
            query, producer="risk", state_changes=(), limit_changes=changes
        )
        await msg.respond(view.to_json())

    watching = await admin.subscribe(str(Subject.OPS_SET_RISK_LIMITS), cb=command_seen)
    answering = await admin.subscribe(str(Subject.QUERY_RISK_AUDIT), cb=risk_service)
    await admin.flush()
    try:
        result = await run_cli(
            [
                *("risk", "limits", "set", "max_notional_per_order=-1", "max_leverage=none"),
                *("--account", "main", "--reason", "test", "--operator", "ann", "--json"),
            ],
            operator_env,
        )
    finally:
        await watching.unsubscribe()
        await answering.unsubscribe()

    assert result.exit_code == 1, result.output  # refused: a failure scripts can see
    [command] = commands
    assert (command.account, command.operator, command.reason, command.producer) == (
        "main",
        "ann",
        "test",
        "operator",
    )
    assert command.changes == {"max_notional_per_order": "-1", "max_leverage": None}
    answer = json.loads(result.stdout)
    assert answer["message_id"] == command.message_id
    assert answer["outcome"] == "refused"
    assert "must be greater than zero" in answer["error"]


async def test_a_halt_waits_for_the_risk_service_and_shows_the_switch(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    await ensure_stream(admin, "OPS")
    commands: list[SetTradingState] = []

    async def command_seen(msg: Msg) -> None:
        commands.append(SetTradingState.from_json(msg.data))

    async def risk_service(msg: Msg) -> None:
        query = QueryRiskAudit.from_json(msg.data)
        switches = tuple(
            TradingStateRecord(
                account=command.account,
                from_state=TradingState.ACTIVE,
                to_state=command.state,
                outcome="applied",
                reason=command.reason,
                actor=command.operator,
                command_id=command.message_id,
                at=NOW,
            )
            for command in commands
        )
        view = RiskAuditView.caused_by(
            query, producer="risk", state_changes=switches, limit_changes=()
        )
        await msg.respond(view.to_json())

    watching = await admin.subscribe(str(Subject.OPS_SET_TRADING_STATE), cb=command_seen)
    answering = await admin.subscribe(str(Subject.QUERY_RISK_AUDIT), cb=risk_service)
    await admin.flush()
    try:
        result = await run_cli(
            ["halt", "--account", "main", "--reason", "drawdown", "--operator", "ann", "--json"],
            operator_env,
        )
    finally:
        await watching.unsubscribe()
        await answering.unsubscribe()

    assert result.exit_code == 0, result.output
    [command] = commands
    answer = json.loads(result.stdout)
    assert answer["message_id"] == command.message_id
    assert (answer["account"], answer["to_state"], answer["outcome"]) == (
        "main",
        "halted",
        "applied",
    )


async def test_a_halt_nobody_handles_is_reported_as_not_yet_applied(
    admin: NatsClient, operator_env: dict[str, str]
) -> None:
    await ensure_stream(admin, "OPS")

    async def risk_service(msg: Msg) -> None:  # up, but the command never reaches it
        query = QueryRiskAudit.from_json(msg.data)
        view = RiskAuditView.caused_by(query, producer="risk", state_changes=(), limit_changes=())
        await msg.respond(view.to_json())

    answering = await admin.subscribe(str(Subject.QUERY_RISK_AUDIT), cb=risk_service)
    await admin.flush()
    try:
        result = await run_cli(
            [
                *("halt", "--account", "main", "--reason", "drawdown", "--operator", "ann"),
                *("--timeout", "1"),
            ],
            operator_env,
        )
    finally:
        await answering.unsubscribe()

    assert result.exit_code == EXIT_TIMEOUT
    assert "is in the OPS stream, but the risk service has not handled it" in result.stderr
