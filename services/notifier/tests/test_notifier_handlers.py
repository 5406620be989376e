"""Notifier handlers on FastStream's in-memory broker: events become deliveries, sent once."""

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.nats import TestNatsBroker
from sqlalchemy import select

from ordo.contracts.enums import ExecutionStatus, Side
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.risk import DenialReason, OrderDenied
from ordo.contracts.subjects import Subject
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.notifier import store
from ordo.notifier.app import build
from ordo.notifier.channels import LogChannel, Outgoing
from ordo.notifier.config import NotifierSettings
from ordo.notifier.dispatcher import Dispatcher


@pytest.fixture
async def notifier(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = NotifierSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'n.db'}")
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    yield kit
    await kit.db.close()


def filled_report() -> ExecutionReport:
    fill = Fill(
        fill_id="v1-1",
        quantity=Decimal("0.5"),
        price=Decimal("60000"),
        fee=Decimal("30"),
        fee_currency="USDT",
        filled_at=utc_now(),
    )
    return ExecutionReport(
        correlation_id="sig-1",
        producer="execution",
        order_id="ord-1",
        venue_order_id="v1",
        account="main",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        status=ExecutionStatus.FILLED,
        cumulative_quantity=Decimal("0.5"),
        average_price=Decimal("60000"),
        fill=fill,
    )


async def deliveries(kit: ServiceKit) -> list[dict[str, object]]:
    async with kit.db.session() as session:
        return [dict(r._mapping) for r in (await session.execute(select(store.deliveries))).all()]


async def test_a_fill_becomes_one_delivery_per_channel_even_when_repeated(
    notifier: ServiceKit,
) -> None:
    report = filled_report()
    async with TestNatsBroker(notifier.broker) as broker:
        await broker.publish(report.to_json(), str(Subject.EXEC_REPORT), stream="EXEC")
        await broker.publish(report.to_json(), str(Subject.EXEC_REPORT), stream="EXEC")

    rows = await deliveries(notifier)
    assert [(r["channel"], r["status"]) for r in rows] == [("log", "pending")]
    assert "Filled: BUY 0.5 BTC/USDT @ 60000" in str(rows[0]["text"])


async def test_a_denial_lists_every_reason(notifier: ServiceKit) -> None:
    denied = OrderDenied(
        correlation_id="sig-2",
        producer="risk",
        proposal_id="p-1",
        account="main",
        order_ids=("ord-2",),
        reasons=(
            DenialReason(
                code="MAX_NOTIONAL_PER_ORDER",
                message="too big",
                limit=Decimal(100),
                actual=Decimal(150),
            ),
        ),
    )
    async with TestNatsBroker(notifier.broker) as broker:
        await broker.publish(denied.to_json(), str(Subject.RISK_DENIED), stream="RISK")

    rows = await deliveries(notifier)
    assert "MAX_NOTIONAL_PER_ORDER: too big" in str(rows[0]["text"])


async def test_the_dispatcher_sends_pending_deliveries_once(notifier: ServiceKit) -> None:
    sent: list[str] = []

    class RecordingChannel(LogChannel):
        async def send(self, message: Outgoing) -> None:
            sent.append(message.text)

    async with TestNatsBroker(notifier.broker) as broker:
        await broker.publish(filled_report().to_json(), str(Subject.EXEC_REPORT), stream="EXEC")
    dispatcher = Dispatcher(
        notifier.db,
        {"log": RecordingChannel()},
        notifier.breakers,
        rate_limits={"log": 600},
        give_up_after=timedelta(hours=1),
        retention=timedelta(days=1),
    )
    await notifier.breakers.start()

    assert await dispatcher.dispatch_due() == 1
    assert await dispatcher.dispatch_due() == 0
    assert len(sent) == 1
    assert (await deliveries(notifier))[0]["status"] == "sent"


async def test_a_channel_outage_keeps_the_delivery_pending(notifier: ServiceKit) -> None:
    class DownChannel(LogChannel):
        async def send(self, message: Outgoing) -> None:
            raise ConnectionError("channel unreachable")

    async with TestNatsBroker(notifier.broker) as broker:
        await broker.publish(filled_report().to_json(), str(Subject.EXEC_REPORT), stream="EXEC")
    await notifier.breakers.start()
    dispatcher = Dispatcher(
        notifier.db,
        {"log": DownChannel()},
        notifier.breakers,
        rate_limits={"log": 600},
        give_up_after=timedelta(hours=1),
        retention=timedelta(days=1),
    )

    assert await dispatcher.dispatch_due() == 0
    row = (await deliveries(notifier))[0]
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert "channel unreachable" in str(row["last_error"])
