"""What the execution service tests share: delivering messages, and reading what was published."""

from faststream.nats import TestNatsBroker
from sqlalchemy import select

from ordo.contracts.enums import ExecutionStatus
from ordo.contracts.envelope import Message
from ordo.contracts.execution import ExecutionReport, VenueStatusChanged
from ordo.contracts.risk import OrderApproved
from ordo.contracts.subjects import STREAM_OF_SUBJECT, Service, Subject, durable_name, subject_of
from ordo.execution import store
from ordo.execution.app import ExecutionApp


async def deliver(app: ExecutionApp, *messages: Message) -> None:
    """Each message through the service's consumer, on FastStream's in-memory broker."""
    async with TestNatsBroker(app.kit.broker) as broker:
        for message in messages:
            subject = subject_of(message)
            await broker.publish(message.to_json(), str(subject), stream=STREAM_OF_SUBJECT[subject])


async def deliver_last_attempt(app: ExecutionApp, approved: OrderApproved) -> None:
    """The approval's last delivery attempt, as the kit runs it: if it fails, it is dead-lettered.

    (FastStream's in-memory broker has no delivery count: every ``deliver`` is a first attempt.)
    """
    durable = durable_name(Service.EXECUTION, Subject.RISK_APPROVED)
    async with (
        TestNatsBroker(app.kit.broker),  # what the unit of work publishes goes nowhere
        app.kit.outbox.consuming(durable, approved.message_id, last_attempt=True) as tx,
    ):
        await app.execution.on_approved(approved, tx)


async def published(app: ExecutionApp, subject: Subject) -> list[str]:
    """The payloads (JSON text) the service wrote to its outbox on ``subject``, oldest first."""
    outbox = store.messaging.outbox
    async with app.kit.db.session() as session:
        rows = await session.execute(
            select(outbox.c.payload).where(outbox.c.subject == str(subject)).order_by(outbox.c.seq)
        )
        return [row.payload for row in rows]


async def reports(app: ExecutionApp) -> list[ExecutionReport]:
    return [ExecutionReport.from_json(p) for p in await published(app, Subject.EXEC_REPORT)]


async def statuses(app: ExecutionApp) -> list[ExecutionStatus]:
    return [report.status for report in await reports(app)]


async def venue_changes(app: ExecutionApp) -> list[VenueStatusChanged]:
    return [VenueStatusChanged.from_json(p) for p in await published(app, Subject.EXEC_VENUE)]


async def submission(app: ExecutionApp, order_id: str = "ord-1") -> store.Submission | None:
    async with app.kit.db.session() as session:
        return await store.get_submission(session, order_id)


async def done(app: ExecutionApp) -> set[str]:
    """The ids of the messages the service finished with (acknowledged, never retried)."""
    inbox = store.messaging.inbox
    async with app.kit.db.session() as session:
        return set(await session.scalars(select(inbox.c.message_id)))
