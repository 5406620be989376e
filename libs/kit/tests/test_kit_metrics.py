"""What a service's /metrics shows after real messages flow through a real NATS JetStream.

Handled and failed messages per subject, handler latency, publishes, the lag of each durable
consumer, the outbox backlog; and counts that follow the store's commits.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Column, Integer, String, Table, insert

from ordo.contracts.enums import Intent, OrderType, Side, SignalSource, SizeUnit
from ordo.contracts.orders import OrderProposed, OrderSpec
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.contracts.subjects import Subject
from ordo.contracts.types import utc_now
from ordo.kit.embedded import NatsCredentials, NatsServer
from ordo.kit.messaging import DeadLetter
from ordo.kit.metrics import count_when_committed
from ordo.kit.outbox import Transaction
from ordo.kit.service import ServiceKit
from ordo.kit.settings import HttpSettings, NatsSettings, OutboxSettings, ServiceSettings
from ordo.kit.store import Database, messaging_tables, new_metadata
from ordo.kit.testing import eventually

metadata = new_metadata()
tables = messaging_tables(metadata)
effects = Table(
    "metric_effects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("signal_id", String(64), nullable=False),
)

SUBJECT = str(Subject.SIGNAL_ACCEPTED)
CONSUMER = {"stream": "SIGNALS", "consumer": "order__signal_accepted_v1"}
DEAD_LETTER_CONSUMER = {"stream": "DEADLETTER", "consumer": "order__dlq_all"}


class MetricsTestSettings(ServiceSettings):
    service_name = "order"


Handler = Callable[[SignalAccepted, Transaction], Awaitable[None]]
DeadLetterHandler = Callable[[DeadLetter, Transaction], Awaitable[None]]


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    # A server per test: the durable consumers start with no lag.
    server = NatsServer(tmp_path / "nats", NatsCredentials.generate()).start()
    yield server
    server.stop()


@pytest.fixture
async def admin(nats_server: NatsServer) -> AsyncIterator[Any]:
    user = nats_server.credentials.admin
    client = await nats.connect(nats_server.url, user=user.name, password=user.password)
    yield client
    await client.drain()


@pytest.fixture
async def start_service(
    nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable["Scraper"]]]:
    kits: list[ServiceKit] = []

    async def start(handler: Handler, dead_letters: DeadLetterHandler | None = None) -> Scraper:
        admin = nats_server.credentials.admin
        settings = MetricsTestSettings(
            nats=NatsSettings(
                url=nats_server.url,
                user=admin.name,
                password=admin.password,
                max_deliver=2,
                backoff_seconds=(0.05,),
            ),
            http=HttpSettings(host="127.0.0.1", port=0),
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
            var_dir=tmp_path,
            outbox=OutboxSettings(sweep_interval_seconds=0.1, sweep_grace_seconds=0.2),
        )
        kit = ServiceKit(settings, metadata=metadata, tables=tables, telemetry=False)
        await kit.db.create_all(metadata)
        kit.consume(Subject.SIGNAL_ACCEPTED, SignalAccepted, handler)
        if dead_letters is not None:
            kit.consume_dead_letters(dead_letters)
        await kit.start(migrate=False)
        kits.append(kit)
        http = kit.http
        assert http is not None

        async def bound_port() -> int | None:
            return http.port if http.started else None

        port = await eventually(bound_port, what="the ops HTTP server")
        return Scraper(f"http://127.0.0.1:{port}/metrics")

    yield start
    for kit in kits:
        await kit.stop()


class Scraper:
    """Reads /metrics as Prometheus does, and finds one series by its labels."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[str, dict[str, str], float]] = []

    async def scrape(self) -> "Scraper":
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(self.url)
        response.raise_for_status()
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        ]
        return self

    def value(self, name: str, **labels: str) -> float | None:
        """The series ``name`` whose labels include ``labels`` (exactly one), or None."""
        found = [
            value
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and labels.items() <= sample_labels.items()
        ]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} series"
        return found[0] if found else None

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [labels for sample_name, labels, _ in self.samples if sample_name == name]


def signal_accepted(signal_id: str) -> SignalAccepted:
    request = SignalRequest(
        account="acct",
        strategy="s1",
        venue="paper",
        symbol="BTC/USDT",
        intent=Intent.ENTER_LONG,
        size=Size(unit=SizeUnit.QUANTITY, value=1),
    )
    return SignalAccepted(
        correlation_id=signal_id,
        producer="test",
        signal_id=signal_id,
        source=SignalSource.API,
        received_at=utc_now(),
        signal=request,
    )


def proposal_for(signal: SignalAccepted) -> OrderProposed:
    spec = OrderSpec(
        order_id=f"ord-{signal.signal_id}",
        account="acct",
        strategy="s1",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=1,
    )
    return OrderProposed.caused_by(
        signal,
        producer="order",
        proposal_id=f"p-{signal.signal_id}",
        signal_id=signal.signal_id,
        account="acct",
        orders=(spec,),
    )


async def publish(admin: Any, *signal_ids: str) -> None:
    for signal_id in signal_ids:
        message = signal_accepted(signal_id)
        await admin.jetstream().publish(
            SUBJECT, message.to_json(), headers={"Nats-Msg-Id": message.message_id}
        )


async def propose_unless_bad(message: SignalAccepted, tx: Transaction) -> None:
    if message.signal_id.startswith("bad"):
        raise RuntimeError("the venue is on fire")
    await tx.session.execute(insert(effects).values(signal_id=message.signal_id))
    tx.publish(proposal_for(message))


async def cannot_handle(letter: DeadLetter, tx: Transaction) -> None:
    raise RuntimeError("no channel answers")


async def test_handled_and_failed_messages_are_counted_per_subject_with_their_latency(
    start_service: Callable[..., Awaitable[Scraper]], admin: Any
) -> None:
    metrics = await start_service(propose_unless_bad, dead_letters=cannot_handle)
    await publish(admin, "ok-1", "ok-2", "bad-1")

    async def settled() -> Scraper | None:
        await metrics.scrape()
        gave_up = metrics.value("ordo_messages_failed_total", subject="dlq.>", outcome="given_up")
        idle = [
            metrics.value(gauge, **consumer)
            for gauge in ("ordo_consumer_pending_messages", "ordo_consumer_ack_pending_messages")
            for consumer in (CONSUMER, DEAD_LETTER_CONSUMER)
        ]
        return metrics if gave_up == 1 and idle == [0, 0, 0, 0] else None

    await eventually(settled, what="the bad message dead-lettered, every consumer caught up")

    # bad-1 failed on its first delivery (retried), and on its last (dead-lettered)...
    failed = {
        labels["outcome"]: metrics.value("ordo_messages_failed_total", **labels)
        for labels in metrics.labels_of("ordo_messages_failed_total")
        if labels["subject"] == SUBJECT
    }
    assert failed == {"retry": 1, "dead_letter": 1}
    # ... and the notifier-like dead-letter handler failed on both of its attempts.
    assert metrics.value("ordo_messages_failed_total", subject="dlq.>", outcome="retry") == 1

    handler = {"app_name": "ordo-order", "broker": "nats", "handler": SUBJECT}
    assert metrics.value("ordo_received_messages_total", **handler) == 4  # two tries of bad-1
    processed = "ordo_received_processed_messages_total"
    assert metrics.value(processed, **handler, status="acked") == 3  # the dead letter too
    assert metrics.value(processed, **handler, status="nacked") == 1
    latency = "ordo_received_processed_messages_duration_seconds"
    assert metrics.value(f"{latency}_count", **handler) == 4
    assert metrics.value(f"{latency}_bucket", **handler, le="+Inf") == 4
    published = {"destination": str(Subject.ORDER_PROPOSED), "status": "success"}
    assert metrics.value("ordo_published_messages_total", **published) == 2
    assert metrics.value("ordo_outbox_backlog") == 0


async def test_consumer_lag_counts_what_waits_and_what_is_not_yet_acknowledged(
    start_service: Callable[..., Awaitable[Scraper]], admin: Any
) -> None:
    release = asyncio.Event()

    async def slow(message: SignalAccepted, tx: Transaction) -> None:
        await release.wait()

    metrics = await start_service(slow)
    await publish(admin, *(f"sig-{n}" for n in range(20)))

    async def lag() -> tuple[float, float] | None:
        await metrics.scrape()
        pending = metrics.value("ordo_consumer_pending_messages", **CONSUMER)
        ack_pending = metrics.value("ordo_consumer_ack_pending_messages", **CONSUMER)
        if pending is None or ack_pending is None or pending + ack_pending != 20:
            return None
        return (pending, ack_pending) if ack_pending >= 1 else None

    pending, ack_pending = await eventually(lag, what="all 20 messages waiting, one delivered")
    assert pending + ack_pending == 20

    release.set()

    async def caught_up() -> bool:
        await metrics.scrape()
        return (
            metrics.value("ordo_consumer_pending_messages", **CONSUMER),
            metrics.value("ordo_consumer_ack_pending_messages", **CONSUMER),
        ) == (0, 0)

    await eventually(caught_up, what="the consumer caught up")


async def test_a_count_follows_the_commit_of_its_transaction(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'count.db'}")
    await db.create_all(metadata)
    registry = CollectorRegistry()
    counter = Counter("decisions", "Decisions stored", registry=registry)

    def counted() -> float | None:
        return registry.get_sample_value("decisions_total")

    try:
        async with db.session() as session:
            await session.execute(insert(effects).values(signal_id="rolled-back"))
            count_when_committed(session, counter)
            await session.rollback()
        assert counted() == 0

        async with db.session() as session:
            await session.execute(insert(effects).values(signal_id="committed"))
            count_when_committed(session, counter)
            assert counted() == 0, "not before the commit"
            await session.commit()
            await session.execute(insert(effects).values(signal_id="later"))
            await session.commit()
        assert counted() == 1, "once, at the commit that stored it"
    finally:
        await db.close()
