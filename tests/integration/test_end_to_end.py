"""Signals through every service, as processes, over a real NATS JetStream.

webhook → signal → order (OMS) → risk → execution (paper venue) → fill → position → notifier.
"""

import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path

import nats
import pytest
from integration_support import Operator, oms_knows_state, tradingview_alert

from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus, TradingState
from ordo.contracts.envelope import new_message_id
from ordo.contracts.queries import QuerySignals, SignalOutcomeView, SignalsView
from ordo.contracts.risk import SetTradingState, TradingStateChanged
from ordo.contracts.subjects import Service, Subject
from ordo.kit.testing import eventually


def strategy_name() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


async def test_a_tradingview_alert_becomes_a_filled_order_a_position_and_a_notification(
    operator: Operator, stack: Stack
) -> None:
    strategy = strategy_name()
    response = await operator.post_alert(**tradingview_alert(strategy, contracts="0.02"))
    assert response.status_code == 202, response.text
    signal_id = response.json()["signal_id"]

    async def filled() -> object:
        orders = await operator.orders(signal_id=signal_id)
        return orders if orders and orders[0].status is OrderStatus.FILLED else None

    (order,) = await eventually(filled, what="the order FILLED")
    assert order.symbol == "BTC/USDT"
    assert order.filled_quantity == Decimal("0.02")
    assert order.fees > 0

    async def position() -> object:
        found = [p for p in await operator.positions(account="main") if p.strategy == strategy]
        return found if found and found[0].quantity == Decimal("0.02") else None

    (pos,) = await eventually(position, what="the position")
    assert pos.average_entry == order.average_fill_price
    assert pos.realised_pnl == -order.fees  # an open position has paid its entry fee

    notifier_db = Path(stack.var_dir) / "data" / "notifier.db"

    async def notified() -> object:
        with sqlite3.connect(notifier_db) as db:
            return db.execute(
                "SELECT text FROM deliveries WHERE text LIKE ?", (f"%order {order.order_id}%",)
            ).fetchall()

    await eventually(notified, what="the fill notification in the notifier's delivery log")


async def test_the_same_alert_twice_makes_one_order(operator: Operator) -> None:
    alert = tradingview_alert(strategy_name(), alert_id=f"alert-{uuid.uuid4().hex}")
    first = await operator.post_alert(**alert)
    second = await operator.post_alert(**alert)

    assert first.status_code == 202
    assert second.json()["signal_id"] == first.json()["signal_id"]
    assert second.json()["duplicate"] is True
    signal_id = first.json()["signal_id"]
    await eventually(lambda: _has_status(operator, signal_id, OrderStatus.FILLED))
    assert len(await operator.orders(signal_id=signal_id)) == 1


async def test_bad_webhooks_get_4xx_and_publish_nothing(operator: Operator, stack: Stack) -> None:
    before = await operator.stream_count("SIGNALS")

    unauthenticated = await operator.http.post(
        operator.webhook_url, json={**tradingview_alert(strategy_name()), "secret": "wrong"}
    )
    malformed = await operator.post_alert(**tradingview_alert(strategy_name(), contracts="-3"))
    unknown_symbol = await operator.post_alert(
        **tradingview_alert(strategy_name(), ticker="NOPEUSDT")
    )

    assert unauthenticated.status_code == 401
    assert malformed.status_code == 422
    assert "contracts" in malformed.text
    assert unknown_symbol.status_code == 422
    assert await operator.stream_count("SIGNALS") == before


async def test_an_order_over_the_notional_limit_is_denied_with_reasons(operator: Operator) -> None:
    response = await operator.post_alert(**tradingview_alert(strategy_name(), contracts="5"))
    signal_id = response.json()["signal_id"]
    orders = await eventually(
        lambda: _has_status(operator, signal_id, OrderStatus.DENIED), what="the denial"
    )
    assert "MAX_NOTIONAL_PER_ORDER" in (orders[0].reason or "")


async def test_a_halted_account_gets_no_new_orders_until_resumed(operator: Operator) -> None:
    account = f"halt-{uuid.uuid4().hex[:6]}"
    await _set_state(operator, account, TradingState.HALTED)
    await eventually(lambda: _state_published(operator, account, TradingState.HALTED))
    await eventually(lambda: oms_knows_state(operator, account, TradingState.HALTED))

    # The OMS refuses the entry itself (the risk gate would deny it too): no order is made.
    halted = await operator.post_alert(**tradingview_alert(strategy_name(), account=account))
    refused = await eventually(lambda: _outcome(operator, halted.json()["signal_id"]))
    assert refused.outcome == "refused"
    assert "is halted" in (refused.reason or "")
    assert await operator.orders(signal_id=halted.json()["signal_id"]) == ()

    await _set_state(operator, account, TradingState.ACTIVE)
    await eventually(lambda: _state_published(operator, account, TradingState.ACTIVE))
    await eventually(lambda: oms_knows_state(operator, account, TradingState.ACTIVE))
    resumed = await operator.post_alert(**tradingview_alert(strategy_name(), account=account))
    await eventually(lambda: _has_status(operator, resumed.json()["signal_id"], OrderStatus.FILLED))


async def test_a_service_user_cannot_publish_a_subject_it_does_not_own(stack: Stack) -> None:
    order = stack.credentials.for_service(Service.ORDER)
    nc = await nats.connect(stack.nats.url, user=order.name, password=order.password)
    try:
        with pytest.raises(nats.errors.Error):
            await nc.jetstream().publish(str(Subject.RISK_APPROVED), b"{}", timeout=1.0)
    finally:
        await nc.close()


async def _has_status(operator: Operator, signal_id: str, status: OrderStatus) -> object:
    orders = await operator.orders(signal_id=signal_id)
    return orders if orders and all(o.status is status for o in orders) else None


async def _set_state(operator: Operator, account: str, state: TradingState) -> None:
    command = SetTradingState(
        correlation_id=new_message_id(),
        producer="operator",
        account=account,
        state=state,
        reason="integration test",
        operator="tester",
    )
    await operator.nc.jetstream().publish(
        str(Subject.OPS_SET_TRADING_STATE),
        command.to_json(),
        headers={"Nats-Msg-Id": command.message_id},
    )


async def _outcome(operator: Operator, signal_id: str) -> SignalOutcomeView | None:
    query = QuerySignals(correlation_id=new_message_id(), producer="operator", signal_id=signal_id)
    reply = await operator.nc.request(str(Subject.QUERY_SIGNALS), query.to_json(), timeout=5)
    found = SignalsView.from_json(reply.data).signals
    return found[0] if found else None


async def _state_published(operator: Operator, account: str, state: TradingState) -> bool:
    sub = await operator.admin_js.pull_subscribe(str(Subject.RISK_STATE), stream="RISK")
    try:
        messages = await sub.fetch(1000, timeout=0.5)
    except nats.errors.TimeoutError:
        return False
    finally:
        await sub.unsubscribe()
    changes = [TradingStateChanged.from_json(m.data) for m in messages]
    return any(c.account == account and c.state is state for c in changes)


async def test_a_poison_message_is_dead_lettered_and_raises_an_alert(
    operator: Operator, stack: Stack
) -> None:
    poison = b'{"schema": "SignalAccepted.v1", "not": "a signal"}'
    ack = await operator.admin_js.publish(str(Subject.SIGNAL_ACCEPTED), poison)
    notifier_db = Path(stack.var_dir) / "data" / "notifier.db"

    async def alerted() -> object:
        with sqlite3.connect(notifier_db) as db:
            return db.execute(
                "SELECT severity, text FROM deliveries WHERE kind = 'dead_letter' AND text LIKE ?",
                (f"%order gave up on signal.accepted.v1%dlq-order-{ack.stream}-{ack.seq}%",),
            ).fetchall()

    ((severity, text),) = await eventually(alerted, what="the dead-letter alert")
    assert severity == "critical"
    assert "does not decode" in text
