"""The delivery guarantees of the kit, over a real NATS JetStream server.

Nothing accepted is lost, nothing is done twice: effects and outgoing messages commit together,
redeliveries are recognised by the inbox, failures are retried with back-off and end in the
dead-letter stream, and the sweeper publishes what a crash left behind.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import ConsumerConfig
from sqlalchemy import Column, Integer, String, Table, func, insert, select

from ordo.contracts.enums import Intent, OrderType, Side, SignalSource, SizeUnit
from ordo.contracts.orders import OrderProposed, OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.contracts.subjects import Service, Subject
from ordo.contracts.types import utc_now
from ordo.kit.embedded import NatsCredentials, NatsServer
from ordo.kit.messaging import DeadLetter
from ordo.kit.outbox import Outbox, OutgoingMessage, Transaction
from ordo.kit.service import ServiceKit
from ordo.kit.settings import NatsSettings, OutboxSettings, ServiceSettings
from ordo.kit.store import ConcurrentUpdate, messaging_tables, new_metadata
from ordo.kit.testing import eventually

metadata = new_metadata()
tables = messaging_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("signal_id", String(64), nullable=False),
)


class KitTestSettings(ServiceSettings):
    service_name = "order"


Handler = Callable[[SignalAccepted, Transaction], Awaitable[None]]


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    # A server per test: streams and durable consumers start empty every time.
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
async def start_kit(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> AsyncIterator[Callable[[Handler], Awaitable[ServiceKit]]]:
    kits: list[ServiceKit] = []

    async def start(
        handler: Handler,
        dead_letters: Any = None,
        *,
        also: Callable[[ServiceKit], None] | None = None,
    ) -> ServiceKit:
        admin = nats_server.credentials.admin
        settings = KitTestSettings(
            nats=NatsSettings(
                url=nats_server.url,
                user=admin.name,
                password=admin.password,
                max_deliver=3,
                backoff_seconds=(0.05,),
                ack_wait_seconds=5,
            ),
            database_url=database_url,
            var_dir=tmp_path,
            outbox=OutboxSettings(sweep_interval_seconds=0.1, sweep_grace_seconds=0.2),
        )
        kit = ServiceKit(settings, metadata=metadata, tables=tables, telemetry=False)
        await kit.db.create_all(metadata)
        kit.consume(Subject.SIGNAL_ACCEPTED, SignalAccepted, handler)
        if dead_letters is not None:
            kit.consume_dead_letters(dead_letters)
        if also is not None:
            also(kit)  # more consumers
        await kit.start(migrate=False, serve_http=False)
        kits.append(kit)
        return kit

    yield start
    for kit in kits:
        await kit.stop()


def signal_accepted(signal_id: str = "sig-1") -> SignalAccepted:
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
        quantity=signal.signal.size.value if signal.signal.size else 1,
    )
    return OrderProposed.caused_by(
        signal,
        producer="order",
        proposal_id=f"p-{signal.signal_id}",
        signal_id=signal.signal_id,
        account="acct",
        orders=(spec,),
    )


async def record_and_propose(message: SignalAccepted, tx: Transaction) -> None:
    await tx.session.execute(insert(effects).values(signal_id=message.signal_id))
    tx.publish(proposal_for(message))


async def count_effects(kit: ServiceKit) -> int:
    async with kit.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(effects)) or 0)


async def stream_messages(admin: Any, stream: str, subject: str) -> list[Any]:
    js = admin.jetstream()
    sub = await js.pull_subscribe(
        subject, stream=stream, config=ConsumerConfig(inactive_threshold=5)
    )
    try:
        return list(await sub.fetch(100, timeout=0.5))
    except nats.errors.TimeoutError:
        return []
    finally:
        await sub.unsubscribe()


async def publish(admin: Any, message: SignalAccepted, msg_id: str | None = None) -> None:
    await admin.jetstream().publish(
        str(Subject.SIGNAL_ACCEPTED),
        message.to_json(),
        headers={"Nats-Msg-Id": msg_id or message.message_id},
    )


async def test_effects_and_outgoing_messages_commit_together(start_kit: Any, admin: Any) -> None:
    kit = await start_kit(record_and_propose)
    await publish(admin, signal_accepted())

    proposals = await eventually(
        lambda: stream_messages(admin, "ORDERS", str(Subject.ORDER_PROPOSED)),
        what="the proposal on the ORDERS stream",
    )
    assert await count_effects(kit) == 1
    proposal = OrderProposed.from_json(proposals[0].data)
    assert proposal.signal_id == "sig-1"
    assert proposals[0].headers["Nats-Msg-Id"] == proposal.message_id
    assert await kit.outbox.measure_backlog() == 0


async def test_a_redelivered_message_is_processed_once(start_kit: Any, admin: Any) -> None:
    kit = await start_kit(record_and_propose)
    message = signal_accepted()
    # Two different stream ids for the same message: what a redelivery after the duplicate
    # window (or a producer retry) looks like to the consumer.
    await publish(admin, message, msg_id="first")
    await publish(admin, message, msg_id="second")
    await eventually(lambda: stream_messages(admin, "ORDERS", str(Subject.ORDER_PROPOSED)))
    await eventually(lambda: _inbox_size_is(kit, 1), what="the inbox entry")

    consumer = await admin.jetstream().consumer_info("SIGNALS", "order__signal_accepted_v1")
    await eventually(lambda: _all_acked(admin), what="both deliveries acknowledged")
    assert consumer.num_redelivered == 0
    assert await count_effects(kit) == 1
    assert len(await stream_messages(admin, "ORDERS", str(Subject.ORDER_PROPOSED))) == 1


async def test_a_failing_handler_is_retried_until_it_succeeds(start_kit: Any, admin: Any) -> None:
    attempts: list[int] = []

    async def flaky(message: SignalAccepted, tx: Transaction) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("the database went away for a moment")
        await record_and_propose(message, tx)

    kit = await start_kit(flaky)
    await publish(admin, signal_accepted())
    await eventually(lambda: count_effects(kit), what="the effect after retries")
    assert len(attempts) == 3
    assert await stream_messages(admin, "DEADLETTER", "dlq.>") == []


async def test_a_message_that_always_fails_ends_in_the_dead_letter_stream(
    start_kit: Any, admin: Any
) -> None:
    attempts: list[int] = []

    async def broken(message: SignalAccepted, tx: Transaction) -> None:
        attempts.append(1)
        raise ValueError("a bug in the handler")

    kit = await start_kit(broken)
    await publish(admin, signal_accepted())
    dead = await eventually(
        lambda: stream_messages(admin, "DEADLETTER", "dlq.>"), what="the dead letter"
    )
    assert dead[0].subject == "dlq.order.signal.accepted.v1"
    assert dead[0].headers["Ordo-Attempts"] == "3"
    assert "a bug in the handler" in dead[0].headers["Ordo-Error"]
    assert SignalAccepted.from_json(dead[0].data).signal_id == "sig-1"
    assert len(attempts) == 3
    assert await count_effects(kit) == 0


async def test_a_handler_is_told_its_last_attempt_and_may_settle_the_message_itself(
    start_kit: Any, admin: Any
) -> None:
    told: list[bool] = []

    async def settles_at_last(message: SignalAccepted, tx: Transaction) -> None:
        told.append(tx.last_attempt)
        if not tx.last_attempt:
            raise ConnectionError("the venue keeps failing")
        await record_and_propose(message, tx)  # its own way out instead of a dead letter

    kit = await start_kit(settles_at_last)
    await publish(admin, signal_accepted())
    await eventually(lambda: count_effects(kit), what="the effect of the last attempt")
    assert told == [False, False, True]  # max_deliver is 3
    assert await stream_messages(admin, "DEADLETTER", "dlq.>") == []


async def test_an_undecodable_message_is_dead_lettered_at_once(start_kit: Any, admin: Any) -> None:
    calls: list[int] = []

    async def handler(message: SignalAccepted, tx: Transaction) -> None:
        calls.append(1)

    await start_kit(handler)
    await admin.jetstream().publish(str(Subject.SIGNAL_ACCEPTED), b'{"not": "a signal"}')
    dead = await eventually(lambda: stream_messages(admin, "DEADLETTER", "dlq.>"))
    assert dead[0].headers["Ordo-Attempts"] == "1"
    assert "does not decode" in dead[0].headers["Ordo-Error"]
    assert calls == []


async def test_undecodable_messages_of_two_streams_are_both_dead_lettered(
    start_kit: Any, admin: Any
) -> None:
    # Each stream numbers its messages from 1: the two dead letters must not share an id, or
    # JetStream would keep the first and silently drop the second (already acknowledged).
    async def unused(message: Any, tx: Transaction) -> None:
        raise AssertionError("not called")

    def also_approvals(kit: ServiceKit) -> None:
        kit.consume(Subject.RISK_APPROVED, OrderApproved, unused)

    await start_kit(unused, also=also_approvals)
    js = admin.jetstream()
    first = await js.publish(str(Subject.SIGNAL_ACCEPTED), b"not a signal")
    second = await js.publish(str(Subject.RISK_APPROVED), b"not an approval")
    assert first.seq == second.seq

    async def both_dead_lettered() -> list[Any]:
        dead = await stream_messages(admin, "DEADLETTER", "dlq.>")
        return dead if len(dead) == 2 else []

    dead = await eventually(both_dead_lettered, what="both dead letters")
    assert sorted(letter.data for letter in dead) == [b"not a signal", b"not an approval"]


async def test_the_sweeper_publishes_what_a_crash_left_unsent(start_kit: Any, admin: Any) -> None:
    async def unused(message: SignalAccepted, tx: Transaction) -> None:
        raise AssertionError("not called")

    kit = await start_kit(unused)
    left_behind = proposal_for(signal_accepted("sig-crash"))
    async with kit.db.session() as session:
        await session.execute(
            insert(tables.outbox).values(
                message_id=left_behind.message_id,
                subject=str(Subject.ORDER_PROPOSED),
                stream="ORDERS",
                payload=left_behind.to_json().decode(),
                headers={},
                correlation_id=left_behind.correlation_id,
                caused_by=None,
                created_at=utc_now() - timedelta(seconds=30),
                sent_at=None,
            )
        )
        await session.commit()

    published = await eventually(
        lambda: stream_messages(admin, "ORDERS", str(Subject.ORDER_PROPOSED))
    )
    assert OrderProposed.from_json(published[0].data) == left_behind
    await eventually(lambda: _backlog_is(kit, 0), what="the row marked sent")


async def test_a_service_user_cannot_publish_a_subject_it_does_not_own(
    nats_server: NatsServer,
) -> None:
    order = nats_server.credentials.for_service(Service.ORDER)
    client = await nats.connect(nats_server.url, user=order.name, password=order.password)
    try:
        with pytest.raises(nats.errors.Error):
            await client.jetstream().publish(str(Subject.RISK_APPROVED), b"{}", timeout=1.0)
    finally:
        await client.close()


async def _inbox_size_is(kit: ServiceKit, expected: int) -> bool:
    async with kit.db.session() as session:
        size = await session.scalar(select(func.count()).select_from(tables.inbox))
    return size == expected


async def _backlog_is(kit: ServiceKit, expected: int) -> bool:
    return await kit.outbox.measure_backlog() == expected


async def _all_acked(admin: Any) -> bool:
    info = await admin.jetstream().consumer_info("SIGNALS", "order__signal_accepted_v1")
    return info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_lost_concurrency_race_is_run_again_without_a_redelivery(
    start_kit: Any, admin: Any
) -> None:
    conflicts: list[int] = []

    async def racing(message: SignalAccepted, tx: Transaction) -> None:
        if len(conflicts) < 2:
            conflicts.append(1)
            await tx.session.execute(insert(effects).values(signal_id="rolled back"))
            raise ConcurrentUpdate("the order changed since it was loaded")
        await record_and_propose(message, tx)

    kit = await start_kit(racing)
    await publish(admin, signal_accepted())
    await eventually(lambda: _all_acked(admin), what="the message acknowledged")

    info = await admin.jetstream().consumer_info("SIGNALS", "order__signal_accepted_v1")
    assert info.num_redelivered == 0
    assert len(conflicts) == 2
    assert await count_effects(kit) == 1  # the losing attempts left nothing behind


async def test_work_committed_while_nats_is_down_is_published_later(
    nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    settings = KitTestSettings(database_url=database_url, var_dir=tmp_path)
    kit = ServiceKit(settings, metadata=metadata, tables=tables, telemetry=False)
    await kit.db.create_all(metadata)

    async def nats_unreachable(outgoing: OutgoingMessage) -> None:
        raise ConnectionError("nats is down")

    outbox = Outbox(kit.db, tables, nats_unreachable, settings.outbox)
    async with outbox.transaction() as tx:  # no error: the work is committed
        await tx.session.execute(insert(effects).values(signal_id="sig-1"))
        tx.publish(proposal_for(signal_accepted()))

    assert await count_effects(kit) == 1
    assert await outbox.measure_backlog() == 1  # waiting for the sweeper
    await kit.db.close()


async def test_dead_letters_reach_their_consumer_with_the_reason(
    start_kit: Any, admin: Any
) -> None:
    letters: list[DeadLetter] = []

    async def broken(message: SignalAccepted, tx: Transaction) -> None:
        raise ValueError("a bug in the handler")

    async def alert(letter: DeadLetter, tx: Transaction) -> None:
        letters.append(letter)

    await start_kit(broken, dead_letters=alert)
    await publish(admin, signal_accepted())
    (letter,) = await eventually(lambda: _returns(letters), what="the dead letter handled")
    assert letter.original_subject == "signal.accepted.v1"
    assert letter.service == "order"
    assert letter.attempts == 3
    assert "a bug in the handler" in letter.error
    assert SignalAccepted.from_json(letter.body).signal_id == "sig-1"


async def _returns(items: list[Any]) -> list[Any]:
    return items
