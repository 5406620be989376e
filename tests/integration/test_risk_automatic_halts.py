"""The risk gate halts an account on its own, through every service as processes over real NATS
JetStream: a daily realised loss past its limit (an entry's fee is a realised loss) and a drawdown
from the equity peak (the paper venue's quotes value the position). The OMS then refuses new
entries, and the notifier alerts."""

import sqlite3
import uuid
from pathlib import Path

import nats
from integration_support import Operator, tradingview_alert

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus, TradingState
from ordo.contracts.envelope import new_message_id
from ordo.contracts.queries import QuerySignals, SignalsView
from ordo.contracts.risk import (
    LimitValue,
    QueryRiskLimits,
    RiskLimitsView,
    SetRiskLimits,
    TradingStateChanged,
)
from ordo.contracts.subjects import Subject
from ordo.kit.testing import eventually

# Quotes arrive every second; the first downward move after the entry is enough.
HALT_TIMEOUT_SECONDS = 60.0


async def set_limits(operator: Operator, account: str, changes: dict[str, LimitValue]) -> None:
    command = SetRiskLimits(
        correlation_id=new_message_id(),
        producer="operator",
        account=account,
        changes=changes,
        reason="integration test",
        operator="tester",
    )
    await operator.nc.jetstream().publish(
        str(Subject.OPS_SET_RISK_LIMITS),
        command.to_json(),
        headers={"Nats-Msg-Id": command.message_id},
    )

    async def in_force() -> bool:
        query = QueryRiskLimits(
            correlation_id=new_message_id(), producer="operator", account=account
        )
        reply = await operator.nc.request(
            str(Subject.QUERY_RISK_LIMITS), query.to_json(), timeout=5
        )
        return RiskLimitsView.from_json(reply.data).overrides == changes

    await eventually(in_force, what="the limits in force")


async def enter(operator: Operator, account: str) -> str:
    alert = tradingview_alert("trend", account=account, alert_id=uuid.uuid4().hex)
    response = await operator.post_alert(**alert)
    assert response.status_code == 202, response.text
    return str(response.json()["signal_id"])


async def filled(operator: Operator, signal_id: str) -> object:
    orders = await operator.orders(signal_id=signal_id)
    return orders if orders and all(o.status is OrderStatus.FILLED for o in orders) else None


async def refused(operator: Operator, signal_id: str) -> str | None:
    query = QuerySignals(correlation_id=new_message_id(), producer="operator", signal_id=signal_id)
    reply = await operator.nc.request(str(Subject.QUERY_SIGNALS), query.to_json(), timeout=5)
    outcomes = SignalsView.from_json(reply.data).signals
    if outcomes and outcomes[0].outcome == "refused":
        return outcomes[0].reason or "refused"
    orders = await operator.orders(signal_id=signal_id)
    if orders and all(o.status is OrderStatus.DENIED for o in orders):
        return orders[0].reason or "denied"
    return None


async def halted_by_risk(operator: Operator, account: str) -> TradingStateChanged | None:
    """The halt risk announced for the account, if it did."""
    sub = await operator.admin_js.subscribe(
        str(Subject.RISK_STATE), stream="RISK", ordered_consumer=True
    )
    try:
        while True:
            try:
                message = await sub.next_msg(timeout=0.3)
            except nats.errors.TimeoutError:
                return None
            changed = TradingStateChanged.from_json(message.data)
            if changed.account == account and changed.state is TradingState.HALTED:
                return changed
    finally:
        await sub.unsubscribe()


async def alerted(stack: Stack, account: str) -> list[tuple[str, str]]:
    with sqlite3.connect(Path(stack.var_dir) / "data" / "notifier.db") as db:
        found: list[tuple[str, str]] = db.execute(
            "SELECT severity, text FROM deliveries WHERE kind = 'trading_state' AND text LIKE ?",
            (f"%{account}%",),
        ).fetchall()
    return found


async def test_a_daily_realised_loss_past_its_limit_halts_and_the_oms_stops_entries(
    operator: Operator, stack: Stack
) -> None:
    account = f"loss-{uuid.uuid4().hex[:6]}"
    # 0.01 BTC near 60000 pays a fee of about 0.6 on entry: a realised loss above 0.01.
    await set_limits(operator, account, {"max_daily_realised_loss": "0.01"})

    first = await enter(operator, account)
    await eventually(lambda: filled(operator, first), what="the entry FILLED")
    halt = await eventually(lambda: halted_by_risk(operator, account), what="the automatic halt")

    assert halt.actor == "risk"
    assert "daily realised loss" in halt.reason
    second = await enter(operator, account)
    why = await eventually(lambda: refused(operator, second), what="the next entry refused")
    assert "halted" in why.lower()
    await eventually(lambda: alerted(stack, account), what="the alert")


async def test_a_drawdown_from_the_equity_peak_halts_the_account(
    operator: Operator, stack: Stack
) -> None:
    account = f"drawdown-{uuid.uuid4().hex[:6]}"
    # Of a capital of 1,000,000, 0.00001 % is 0.1: the entry's fee alone takes more, and if the
    # market rose meanwhile, the first move down from the new peak does.
    await set_limits(
        operator,
        account,
        {
            "starting_capital": "1000000",
            "max_drawdown_percent": "0.00001",
            "quote_max_age_seconds": "30",  # quotes arrive every second
        },
    )

    first = await enter(operator, account)
    await eventually(lambda: filled(operator, first), what="the entry FILLED")
    halt = await eventually(
        lambda: halted_by_risk(operator, account),
        what="the automatic halt",
        timeout=HALT_TIMEOUT_SECONDS,
    )

    assert halt.actor == "risk"
    assert "below its peak" in halt.reason
