"""Two replicas of the order service on one durable consumer, one store, over real NATS JetStream.

Signals and venue reports for one position arrive at once and duplicated; both replicas take
them from the same durable consumers and race on the same order and position rows. Nothing may
be lost: every fill is applied exactly once, every order ends FILLED, and the position holds the
sum of the fills and their fees. (SQLite file shared by both, or PostgreSQL when
ORDO_TEST_POSTGRES_URL is set.)
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import func, select

from ordo.contracts.enums import ExecutionStatus, Intent, OrderStatus, SignalSource, SizeUnit
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.orders import OrderProposed, OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.contracts.subjects import DEAD_LETTER_STREAM, subject_of
from ordo.contracts.types import utc_now
from ordo.kit.embedded import NatsServer
from ordo.kit.service import ServiceKit
from ordo.kit.settings import NatsSettings, OutboxSettings
from ordo.kit.testing import eventually
from ordo.order import store
from ordo.order.app import build
from ordo.order.config import OrderSettings
from ordo.order.handlers import OrderManagement

pytestmark = pytest.mark.integration

ACCOUNT, STRATEGY, VENUE, SYMBOL = "main", "replicas", "paper", "BTC/USDT"
ENTRIES = 6
LATE_ENTRIES = 3
PRICE = Decimal(60000)


class Replicas:
    """The running replicas, and which of them handled each execution report."""

    def __init__(self) -> None:
        self.kits: list[ServiceKit] = []
        self.reports_by_replica: Counter[int] = Counter()


@pytest.fixture
async def replicas(
    nats_server: NatsServer, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Replicas]:
    running = Replicas()
    handle = OrderManagement.on_execution_report

    async def counted(self: OrderManagement, report: ExecutionReport, tx: Any) -> None:
        running.reports_by_replica[id(self)] += 1
        await handle(self, report, tx)

    monkeypatch.setattr(OrderManagement, "on_execution_report", counted)
    admin = nats_server.credentials.admin
    for name in ("replica-a", "replica-b"):
        settings = OrderSettings(
            instance=name,
            nats=NatsSettings(
                url=nats_server.url,
                user=admin.name,
                password=admin.password,
                max_deliver=5,
                backoff_seconds=(0.05, 0.2),
                ack_wait_seconds=10,
            ),
            database_url=database_url,
            var_dir=tmp_path / name,
            outbox=OutboxSettings(sweep_interval_seconds=0.2, sweep_grace_seconds=0.5),
        )
        kit = build(settings, telemetry=False)
        if not running.kits:
            await kit.migrate()  # one schema, by the migrations, for both
        await kit.start(migrate=False, serve_http=False)
        running.kits.append(kit)
    yield running
    for kit in running.kits:
        await kit.stop()


Publish = Callable[[Message], Awaitable[None]]


async def publisher(nats_server: NatsServer) -> tuple[Any, Any, Publish]:
    admin = nats_server.credentials.admin
    nc = await nats.connect(nats_server.url, user=admin.name, password=admin.password)
    js = nc.jetstream()

    async def publish(message: Message) -> None:
        headers = {"Nats-Msg-Id": message.message_id}
        await js.publish(str(subject_of(message)), message.to_json(), headers=headers)

    return nc, js, publish


async def dead_letters(js: Any) -> int:
    return int((await js.stream_info(DEAD_LETTER_STREAM)).state.messages)


def entry(quantity: str) -> SignalAccepted:
    signal_id = new_message_id()
    return SignalAccepted(
        correlation_id=signal_id,
        producer="signal",
        signal_id=signal_id,
        source=SignalSource.API,
        received_at=utc_now(),
        signal=SignalRequest(
            account=ACCOUNT,
            strategy=STRATEGY,
            venue=VENUE,
            symbol=SYMBOL,
            intent=Intent.ENTER_LONG,
            size=Size(unit=SizeUnit.QUANTITY, value=Decimal(quantity)),
            reference_price=PRICE,
        ),
    )


def fill_reports(spec: OrderSpec) -> list[ExecutionReport]:
    """The order filled in two halves, each reported with the venue's cumulative quantity."""
    half = spec.quantity / 2
    reports = []
    for index, status in enumerate((ExecutionStatus.PARTIALLY_FILLED, ExecutionStatus.FILLED)):
        fill = Fill(
            fill_id=f"{spec.order_id}-{index}",
            quantity=half,
            price=PRICE + index,
            fee=Decimal("0.5"),
            fee_currency="USDT",
            filled_at=utc_now(),
        )
        reports.append(
            ExecutionReport(
                correlation_id=spec.order_id,
                producer="execution",
                order_id=spec.order_id,
                venue_order_id=f"v-{spec.order_id}",
                account=spec.account,
                venue=spec.venue,
                symbol=spec.symbol,
                side=spec.side,
                status=status,
                cumulative_quantity=half * (index + 1),
                fill=fill,
            )
        )
    return reports


async def proposals(kit: ServiceKit) -> list[OrderProposed]:
    outbox = store.messaging.outbox
    async with kit.db.session() as session:
        rows = await session.execute(
            select(outbox.c.payload).where(outbox.c.subject == str(subject_of(OrderProposed)))
        )
        return [OrderProposed.from_json(payload) for (payload,) in rows.all()]


async def count(kit: ServiceKit, table: Any) -> int:
    async with kit.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_two_replicas_racing_on_one_position_lose_no_update(
    replicas: Replicas, nats_server: NatsServer
) -> None:
    kit = replicas.kits[0]
    nc, js, publish = await publisher(nats_server)
    dead_before = await dead_letters(js)
    try:
        entries = [entry(f"0.0{n + 1}") for n in range(ENTRIES)]
        await asyncio.gather(*(publish(signal) for signal in entries))

        async def proposed() -> list[OrderProposed] | None:
            found = await proposals(kit)
            return found if len(found) == ENTRIES else None

        specs = [
            spec for p in await eventually(proposed, what="the proposals") for spec in p.orders
        ]
        approvals = [
            OrderApproved.caused_by(
                p, producer="risk", proposal_id=p.proposal_id, account=ACCOUNT, orders=p.orders
            )
            for p in await proposals(kit)
        ]
        reports = [report for spec in specs for report in fill_reports(spec)]
        # Each report twice as the venue might resend it (a new message, the same facts), the
        # approvals after the reports that overtook them, and more entries for the same position
        # while its fills are being applied.
        resent = [r.model_copy(update={"message_id": new_message_id()}) for r in reports]
        late = [entry("0.05") for _ in range(LATE_ENTRIES)]
        await asyncio.gather(*(publish(m) for m in [*reports, *late, *resent, *approvals]))

        async def settled() -> list[Any] | None:
            async with kit.db.session() as session:
                found = await store.find_orders(session, account=ACCOUNT, limit=1000)
                positions = await store.find_positions(session, account=ACCOUNT)
            done = [o for o in found if o.status is OrderStatus.FILLED]
            planned = len(found) == ENTRIES + LATE_ENTRIES
            # An order is FILLED by the report with the full cumulative quantity, which may
            # overtake the report of its first fill: wait for every fill as well.
            applied = await count(kit, store.order_fills) == 2 * ENTRIES
            return positions if planned and len(done) == ENTRIES and applied else None

        (position,) = await eventually(settled, timeout=60, what="every order FILLED")
        assert await dead_letters(js) == dead_before
    finally:
        await nc.drain()

    total = sum((spec.quantity for spec in specs), Decimal(0))
    fees = Decimal("0.5") * 2 * ENTRIES
    assert position.quantity == total
    assert position.fees == fees
    assert position.realised_pnl == -fees
    # Both replicas took reports from the one durable consumer.
    assert len(replicas.reports_by_replica) == 2, replicas.reports_by_replica
