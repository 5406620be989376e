"""An approval the venue turns away on every delivery, through real NATS JetStream: its last
delivery settles the order (REJECTED, never placed) instead of leaving it to the dead letters."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import nats
import pytest
from execution_support import reports, submission

from ordo.contracts.enums import ExecutionStatus, OrderType, Side
from ordo.contracts.execution import ExecutionReport
from ordo.contracts.orders import OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.contracts.subjects import DEAD_LETTER_STREAM, Subject
from ordo.execution import store
from ordo.execution.app import ExecutionApp, assemble
from ordo.execution.config import ExecutionSettings, PaperSettings
from ordo.execution.store import SubmissionStatus
from ordo.kit.embedded import NatsServer
from ordo.kit.settings import NatsSettings
from ordo.kit.testing import eventually


@pytest.fixture
async def service(tmp_path: Path, own_nats: NatsServer) -> AsyncIterator[ExecutionApp]:
    admin = own_nats.credentials.admin
    settings = ExecutionSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'execution.db'}",
        nats=NatsSettings(
            url=own_nats.url,
            user=admin.name,
            password=admin.password,
            max_deliver=3,
            backoff_seconds=(0.05,),
        ),
        # Every create is turned away before the venue acts on it.
        paper=PaperSettings(
            failure_probability=Decimal(1), fault_calls=frozenset({"create_order"})
        ),
    )
    app = assemble(settings, telemetry=False)
    await app.kit.db.create_all(store.metadata)
    await app.kit.start(migrate=False, serve_http=False)
    yield app
    await app.kit.stop()


async def test_an_approval_turned_away_on_every_delivery_is_settled_by_its_last(
    service: ExecutionApp, own_nats: NatsServer
) -> None:
    spec = OrderSpec(
        order_id="ord-1",
        account="main",
        strategy="trend",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.01"),
    )
    approved = OrderApproved(
        correlation_id="sig-1", producer="risk", proposal_id="p-1", account="main", orders=(spec,)
    )
    admin = own_nats.credentials.admin
    client = await nats.connect(own_nats.url, user=admin.name, password=admin.password)
    try:
        await client.jetstream().publish(
            str(Subject.RISK_APPROVED),
            approved.to_json(),
            headers={"Nats-Msg-Id": approved.message_id},
        )

        async def reported() -> list[ExecutionReport]:
            return await reports(service)

        (rejected,) = await eventually(reported, timeout=30, what="the order settled")
        dead_letters = await client.jetstream().stream_info(DEAD_LETTER_STREAM)
    finally:
        await client.drain()

    assert rejected.status is ExecutionStatus.REJECTED
    assert rejected.reason == (
        "never placed: the venue does not hold the order after 3 attempt(s) to place it "
        "(paper: create_order failed (injected))"
    )
    recorded = await submission(service)
    assert recorded is not None
    assert (recorded.status, recorded.attempts) == (SubmissionStatus.REJECTED, 3)
    assert dead_letters.state.messages == 0
