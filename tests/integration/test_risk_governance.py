"""Governing trading at run time, through every service as processes over real NATS JetStream:
an operator's halt / reduce / resume (the `ordo` CLI, as the operator user) and their effect on
the OMS, a critical reconciliation mismatch halting an account with an alert, limits changed at run
time, and the audit of all of it (`ordo risk audit`, `ordo risk decisions`).
"""

import asyncio
import json
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path

import nats
import pytest
from integration_support import Operator, oms_knows_state, tradingview_alert
from typer.testing import CliRunner, Result

from ordo.cli.main import app
from ordo.cli.stack import Stack
from ordo.contracts.enums import DiscrepancyKind, OrderStatus, Severity, TradingState
from ordo.contracts.envelope import new_message_id
from ordo.contracts.queries import QuerySignals, SignalsView
from ordo.contracts.reconciliation import DiscrepancyFound
from ordo.contracts.risk import SetRiskLimits, TradingStateChanged
from ordo.contracts.subjects import Service, Subject
from ordo.kit.testing import eventually

runner = CliRunner()
OPERATOR_NAME = "desk-ann"


def an_account(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def ordo(stack: Stack, *arguments: str) -> Result:
    """The operator CLI against the running stack (it reads the stack file for NATS)."""
    return await asyncio.to_thread(
        runner.invoke,
        app,
        [*arguments, "--var-dir", str(stack.var_dir)],
        env={"COLUMNS": "200", "USER": OPERATOR_NAME},
    )


async def switch(stack: Stack, operator: Operator, command: str, account: str) -> None:
    result = await ordo(stack, command, "--account", account, "--reason", f"test {command}")
    assert result.exit_code == 0, result.output
    wanted = {
        "halt": TradingState.HALTED,
        "reduce": TradingState.REDUCING,
        "resume": TradingState.ACTIVE,
    }[command]
    await eventually(lambda: state_announced(operator, account, wanted), what=f"{account} {wanted}")
    await eventually(
        lambda: oms_knows_state(operator, account, wanted), what=f"the OMS hears {wanted}"
    )


async def state_announced(operator: Operator, account: str, state: TradingState) -> bool:
    """The last state risk announced for the account is ``state``."""
    sub = await operator.admin_js.subscribe(
        str(Subject.RISK_STATE), stream="RISK", ordered_consumer=True
    )
    changes = []
    try:
        while True:
            try:
                message = await sub.next_msg(timeout=0.3)
            except nats.errors.TimeoutError:
                break
            changed = TradingStateChanged.from_json(message.data)
            if changed.account == account:
                changes.append(changed)
    finally:
        await sub.unsubscribe()
    return bool(changes) and changes[-1].state is state


async def enter(operator: Operator, account: str, strategy: str) -> str:
    alert = tradingview_alert(strategy, account=account, alert_id=uuid.uuid4().hex)
    response = await operator.post_alert(**alert)
    assert response.status_code == 202, response.text
    return str(response.json()["signal_id"])


async def exit_long(operator: Operator, account: str, strategy: str) -> str:
    alert = tradingview_alert(
        strategy,
        account=account,
        action="sell",
        market_position="flat",
        prev_market_position="long",
        alert_id=uuid.uuid4().hex,
    )
    response = await operator.post_alert(**alert)
    assert response.status_code == 202, response.text
    return str(response.json()["signal_id"])


async def filled(operator: Operator, signal_id: str) -> object:
    orders = await operator.orders(signal_id=signal_id)
    return orders if orders and all(o.status is OrderStatus.FILLED for o in orders) else None


async def refused(operator: Operator, signal_id: str) -> str | None:
    """Why the signal made no trade: the OMS refused it, or the risk gate denied its orders."""
    query = QuerySignals(correlation_id=new_message_id(), producer="operator", signal_id=signal_id)
    reply = await operator.nc.request(str(Subject.QUERY_SIGNALS), query.to_json(), timeout=5)
    outcomes = SignalsView.from_json(reply.data).signals
    if outcomes and outcomes[0].outcome == "refused":
        return outcomes[0].reason or "refused"
    orders = await operator.orders(signal_id=signal_id)
    if orders and all(o.status is OrderStatus.DENIED for o in orders):
        return orders[0].reason or "denied"
    return None


async def position_of(operator: Operator, account: str, strategy: str) -> Decimal:
    found = [p for p in await operator.positions(account=account) if p.strategy == strategy]
    return found[0].quantity if found else Decimal(0)


# -- halt / reduce / resume --------------------------------------------------------------------


async def test_the_oms_obeys_halt_reduce_and_resume_and_every_switch_is_audited(
    operator: Operator, stack: Stack
) -> None:
    account, strategy = an_account("gov"), "trend"
    first = await enter(operator, account, strategy)
    await eventually(lambda: filled(operator, first), what="the first entry FILLED")

    await switch(stack, operator, "halt", account)
    halted_entry = await enter(operator, account, strategy)
    why = await eventually(lambda: refused(operator, halted_entry), what="the entry refused")
    assert "halted" in why.lower()
    # HALTED takes nothing but cancels: the risk gate denies an exit too (DOMAIN.md, Risk).
    halted_exit = await exit_long(operator, account, strategy)
    why = await eventually(lambda: refused(operator, halted_exit), what="the exit refused")
    assert "halted" in why.lower()
    assert await position_of(operator, account, strategy) == Decimal("0.01")

    await switch(stack, operator, "reduce", account)
    reducing_entry = await enter(operator, account, strategy)
    why = await eventually(lambda: refused(operator, reducing_entry), what="the entry refused")
    assert "reduc" in why.lower()
    reducing_exit = await exit_long(operator, account, strategy)
    await eventually(lambda: filled(operator, reducing_exit), what="the exit FILLED")
    assert await position_of(operator, account, strategy) == 0

    await switch(stack, operator, "resume", account)
    resumed = await enter(operator, account, strategy)
    await eventually(lambda: filled(operator, resumed), what="the entry after resume FILLED")

    audit = await ordo(stack, "risk", "audit", "--account", account, "--json")
    assert audit.exit_code == 0, audit.output
    changes = json.loads(audit.stdout)["state_changes"]
    assert [(c["to_state"], c["outcome"], c["actor"]) for c in reversed(changes)] == [
        ("halted", "applied", OPERATOR_NAME),
        ("reducing", "applied", OPERATOR_NAME),
        ("active", "applied", OPERATOR_NAME),
    ]


# -- automatic halt ------------------------------------------------------------------------------


async def test_a_critical_reconciliation_mismatch_halts_the_account_and_alerts(
    operator: Operator, stack: Stack
) -> None:
    account = an_account("recon")
    found = DiscrepancyFound(
        correlation_id=new_message_id(),
        producer="reconciler",
        run_id=new_message_id(),
        account=account,
        venue="paper",
        kind=DiscrepancyKind.POSITION_MISMATCH,
        severity=Severity.CRITICAL,
        symbol="BTC/USDT",
        venue_value=Decimal("1"),
        oms_value=Decimal("0"),
        detail="the venue holds 1 BTC the OMS does not know",
    )
    # As the reconciler would publish it (only the reconciler's user may).
    await operator.admin_js.publish(
        str(Subject.RECON_DISCREPANCY), found.to_json(), headers={"Nats-Msg-Id": found.message_id}
    )

    await eventually(
        lambda: state_announced(operator, account, TradingState.HALTED), what="the halt"
    )
    notifier_db = Path(stack.var_dir) / "data" / "notifier.db"

    async def alerted() -> object:
        with sqlite3.connect(notifier_db) as db:
            return db.execute(
                "SELECT severity, text FROM deliveries "
                "WHERE kind = 'trading_state' AND text LIKE ?",
                (f"%{account}%",),
            ).fetchall()

    ((severity, text),) = await eventually(alerted, what="the halt alert")
    assert severity == "critical"
    assert "critical reconciliation mismatch" in text

    entry = await enter(operator, account, "trend")
    why = await eventually(lambda: refused(operator, entry), what="the entry refused")
    assert "halted" in why.lower()


# -- run-time limits -----------------------------------------------------------------------------


async def test_limits_set_at_run_time_apply_to_the_next_order_and_are_audited(
    operator: Operator, stack: Stack
) -> None:
    account, strategy = an_account("limits"), "trend"
    lowered = await ordo(
        stack,
        *("risk", "limits", "set", "max_notional_per_order=100", "--account", account),
        *("--reason", "a quiet day", "--json"),
    )
    assert lowered.exit_code == 0, lowered.output
    assert json.loads(lowered.stdout)["outcome"] == "applied"

    too_big = await enter(operator, account, strategy)  # 0.01 BTC near 60000: about 600
    why = await eventually(lambda: refused(operator, too_big), what="the denial")
    assert "MAX_NOTIONAL_PER_ORDER" in why
    [denied] = await operator.orders(signal_id=too_big)
    decisions = await ordo(stack, "risk", "decisions", "--order", denied.order_id, "--json")
    assert decisions.exit_code == 0, decisions.output
    [decision] = json.loads(decisions.stdout)
    assert decision["approved"] is False
    assert decision["limits"]["max_notional_per_order"] == "100"
    assert [r["code"] for r in decision["reasons"]] == ["MAX_NOTIONAL_PER_ORDER"]

    shown = await ordo(stack, "risk", "limits", "show", "--account", account, "--json")
    assert json.loads(shown.stdout)["overrides"] == {"max_notional_per_order": "100"}

    refused_change = await ordo(
        stack,
        *("risk", "limits", "set", "max_notional_per_order=-1", "--account", account),
        *("--reason", "a typo", "--json"),
    )
    assert refused_change.exit_code == 1
    assert "greater than zero" in json.loads(refused_change.stdout)["error"]

    back = await ordo(
        stack,
        *("risk", "limits", "set", "--reset", "max_notional_per_order", "--account", account),
        *("--reason", "back to normal"),
    )
    assert back.exit_code == 0, back.output
    fits_again = await enter(operator, account, strategy)
    await eventually(lambda: filled(operator, fits_again), what="the entry FILLED")

    audit = await ordo(stack, "risk", "audit", "--account", account, "--json")
    changes = json.loads(audit.stdout)["limit_changes"]
    assert [(c["outcome"], c["reason"], c["actor"]) for c in reversed(changes)] == [
        ("applied", "a quiet day", OPERATOR_NAME),
        ("refused", "a typo", OPERATOR_NAME),
        ("applied", "back to normal", OPERATOR_NAME),
    ]


@pytest.mark.parametrize("service", [Service.ORDER, Service.SIGNAL, Service.RECONCILER])
async def test_only_the_operator_may_change_limits_or_trading_state(
    stack: Stack, service: Service
) -> None:
    user = stack.credentials.for_service(service)
    nc = await nats.connect(stack.nats.url, user=user.name, password=user.password)
    command = SetRiskLimits(
        correlation_id=new_message_id(),
        producer=str(service),
        account="main",
        changes={"max_notional_per_order": None},
        reason="no limits for me",
        operator="mallory",
    )
    try:
        for subject in (Subject.OPS_SET_RISK_LIMITS, Subject.OPS_SET_TRADING_STATE):
            with pytest.raises(nats.errors.Error):
                await nc.jetstream().publish(str(subject), command.to_json(), timeout=1.0)
    finally:
        await nc.close()
