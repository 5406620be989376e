"""``ordo_orders{status}``: the OMS's orders by status, counted in its store at each scrape."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.nats import TestNatsBroker
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from ordo.contracts.enums import Intent, OrderStatus, SignalSource, SizeUnit
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.orders import OrderProposed
from ordo.contracts.risk import DenialReason, OrderDenied
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.contracts.subjects import STREAM_OF_SUBJECT, Subject, subject_of
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.order import store
from ordo.order.app import build
from ordo.order.config import OrderSettings


@pytest.fixture
async def oms(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = OrderSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}")
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    yield kit
    await kit.db.close()


def accepted_signal() -> SignalAccepted:
    signal_id = new_message_id()
    return SignalAccepted(
        correlation_id=signal_id,
        producer="signal",
        signal_id=signal_id,
        source=SignalSource.API,
        received_at=utc_now(),
        signal=SignalRequest(
            account="main",
            strategy="trend",
            venue="paper",
            symbol="BTC/USDT",
            intent=Intent.ENTER_LONG,
            size=Size(unit=SizeUnit.QUANTITY, value=Decimal("0.5")),
            reference_price=Decimal(60000),
        ),
    )


def denial(proposal: OrderProposed) -> OrderDenied:
    reason = DenialReason(code="MAX_NOTIONAL_PER_ORDER", message="too big")
    return OrderDenied.caused_by(
        proposal,
        producer="risk",
        proposal_id=proposal.proposal_id,
        account=proposal.account,
        order_ids=tuple(spec.order_id for spec in proposal.orders),
        reasons=(reason,),
    )


async def send(kit: ServiceKit, *messages: Message) -> None:
    async with TestNatsBroker(kit.broker) as broker:
        for message in messages:
            subject = subject_of(message)
            await broker.publish(message.to_json(), str(subject), stream=STREAM_OF_SUBJECT[subject])


async def proposals(kit: ServiceKit) -> list[OrderProposed]:
    outbox = store.messaging.outbox
    query = select(outbox.c.payload).where(outbox.c.subject == str(Subject.ORDER_PROPOSED))
    async with kit.db.session() as session:
        payloads = (await session.execute(query.order_by(outbox.c.seq))).scalars().all()
    return [OrderProposed.from_json(payload) for payload in payloads]


async def orders_by_status(kit: ServiceKit) -> dict[str, float]:
    text = (await kit.metrics.exposition()).decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "ordo_orders"]
    return {sample.labels["status"]: sample.value for sample in family.samples}


async def test_the_scrape_counts_the_orders_in_each_status(oms: ServiceKit) -> None:
    assert set((await orders_by_status(oms)).values()) == {0}
    await send(oms, accepted_signal(), accepted_signal())
    first, _ = await proposals(oms)
    await send(oms, denial(first))

    counted = await orders_by_status(oms)

    assert set(counted) == {status.value for status in OrderStatus}
    assert {status: n for status, n in counted.items() if n} == {"initialized": 1, "denied": 1}
