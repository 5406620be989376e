"""The transactional outbox and inbox: nothing accepted is lost, nothing is done twice.

A handler's state changes, the id of the message it consumed (inbox) and the messages it will
publish (outbox) commit in one transaction. Right after the commit the outbox rows are published
with ``Nats-Msg-Id`` = ``message_id`` (JetStream drops repeats inside its duplicate window); once
JetStream has acknowledged them the input is acknowledged. The rows are marked sent a moment later,
grouped with other units of work: until then they are merely candidates for a republish that
JetStream would drop. A redelivered input that the inbox already knows
re-publishes its unsent rows and is acknowledged. The sweeper publishes whatever a crash left.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Update, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.envelope import Message
from ordo.contracts.subjects import STREAM_OF_SUBJECT, subject_of
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.settings import OutboxSettings
from ordo.kit.store import Database, MessagingTables, retention_cutoff
from ordo.kit.telemetry import inject_headers

log = get_logger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    """An outbox row on its way to NATS."""

    message_id: str
    subject: str
    stream: str | None
    payload: bytes
    headers: dict[str, str]
    correlation_id: str


PublishFn = Callable[[OutgoingMessage], Awaitable[None]]


@dataclass
class Transaction:
    """One unit of work: a session plus the messages to publish once it commits."""

    session: AsyncSession
    caused_by: str | None = None
    duplicate: bool = False
    # The consumed message's last delivery: if the handler fails now, it is dead-lettered.
    last_attempt: bool = False
    _pending: list[Message] = field(default_factory=list)
    _written: list[OutgoingMessage] = field(default_factory=list)

    def publish(self, message: Message) -> None:
        """Publish ``message`` if, and only if, this transaction commits."""
        self._pending.append(message)


class Outbox:
    def __init__(
        self,
        db: Database,
        tables: MessagingTables,
        publish: PublishFn,
        settings: OutboxSettings,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._db = db
        self._tables = tables
        self._publish = publish
        self._settings = settings
        self._unmarked: list[str] = []
        self._marking: asyncio.Task[None] | None = None
        self._backlog = Gauge(
            "ordo_outbox_backlog", "Outbox rows not yet published", registry=registry
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A unit of work not caused by a consumed message (HTTP intake, timers)."""
        async with self._db.session() as session:
            tx = Transaction(session)
            yield tx
            await self._commit(tx)
        try:
            await self._publish_written(tx)
        except Exception:
            # Committed is accepted: the rows wait in the outbox and the sweeper publishes them
            # once NATS answers again. The caller must not see a failure for work that is done.
            log.warning(
                "publish after commit failed; the outbox sweeper will publish", exc_info=True
            )

    @asynccontextmanager
    async def consuming(
        self,
        consumer: str,
        message_id: str,
        *,
        serial: AbstractAsyncContextManager[None] | None = None,
        last_attempt: bool = False,
    ) -> AsyncIterator[Transaction]:
        """The unit of work of a consumed message; ``tx.duplicate`` says it was done before.

        ``last_attempt`` (``tx.last_attempt``) tells the handler that a failure now dead-letters
        the message: a handler with a way to settle things itself takes it now.

        ``serial`` (a held lock) spans the transaction, up to its commit, but not the publish
        after it: the next handler of the same key may start while this one's messages go out.
        """
        inbox_key = f"{consumer}:{message_id}"
        async with serial or nullcontext(), self._db.session() as session:
            tx = Transaction(session, caused_by=inbox_key, last_attempt=last_attempt)
            if await self._seen(session, consumer, message_id):
                tx.duplicate = True
                await session.rollback()
                yield tx
            else:
                yield tx
                await self._record_inbox(tx, consumer, message_id)
                if not tx.duplicate:
                    await self._commit(tx)
        if tx.duplicate:
            await self._republish_caused_by(inbox_key)
        else:
            await self._publish_written(tx)

    async def checkpoint(self, tx: Transaction) -> None:
        """Commit what the handler did so far (and publish it) before an external side effect.

        The inbox row is written only by the final commit, so a crash after a checkpoint makes
        the input come back: the handler must find its own checkpointed work (idempotency by a
        business key such as the client order id).
        """
        await self._commit(tx)
        await self._publish_written(tx)

    async def _seen(self, session: AsyncSession, consumer: str, message_id: str) -> bool:
        inbox = self._tables.inbox
        found = await session.scalar(
            select(inbox.c.message_id).where(
                inbox.c.consumer == consumer, inbox.c.message_id == message_id
            )
        )
        return found is not None

    async def _record_inbox(self, tx: Transaction, consumer: str, message_id: str) -> None:
        try:
            await tx.session.execute(
                insert(self._tables.inbox).values(
                    consumer=consumer, message_id=message_id, processed_at=utc_now()
                )
            )
        except IntegrityError:
            # Another replica finished the same message while we worked on it (its ack wait
            # expired and it was redelivered): keep theirs, drop ours.
            log.warning(
                "message processed concurrently elsewhere; discarding this attempt",
                consumer=consumer,
                message_id=message_id,
            )
            await tx.session.rollback()
            tx.duplicate = True
            tx._pending.clear()

    async def _commit(self, tx: Transaction) -> None:
        now = utc_now()
        rows = [self._row(message, tx.caused_by, now) for message in tx._pending]
        if rows:
            await tx.session.execute(insert(self._tables.outbox), rows)
        await tx.session.commit()
        tx._written.extend(_outgoing(row) for row in rows)
        tx._pending.clear()

    def _row(self, message: Message, caused_by: str | None, now: Any) -> dict[str, Any]:
        subject = subject_of(message)
        return {
            "message_id": message.message_id,
            "subject": str(subject),
            "stream": STREAM_OF_SUBJECT.get(subject),
            "payload": message.to_json().decode(),
            # The trace context of the moment the message was decided, so that a sweeper that
            # publishes it later still continues the same trace.
            "headers": inject_headers(),
            "correlation_id": message.correlation_id,
            "caused_by": caused_by,
            "created_at": now,
            "sent_at": None,
        }

    async def _publish_written(self, tx: Transaction) -> None:
        written, tx._written = tx._written, []
        await self._publish_rows(written)

    async def _republish_caused_by(self, inbox_key: str) -> None:
        outbox = self._tables.outbox
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(outbox)
                    .where(outbox.c.caused_by == inbox_key, outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.seq)
                )
            ).all()
        await self._publish_rows([_outgoing(row._mapping) for row in rows])

    async def _publish_rows(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish, pipelined, then have the rows marked sent.

        The publishes go out together and their acks are awaited together: they leave on one
        connection in this order, and JetStream stores them in the order it receives them. The
        marks are grouped with those of other units of work (``_mark_sent_soon``).
        """
        if not messages:
            return
        await asyncio.gather(*(self._publish(message) for message in messages))
        self._mark_sent_soon([message.message_id for message in messages])

    def _mark_sent_soon(self, message_ids: list[str]) -> None:
        """Mark rows sent in one statement with every other row published meanwhile.

        One write per published unit of work was a second transaction per message. A mark that
        never lands (a crash, a store error) only makes the sweeper publish the row again, with
        the same ``Nats-Msg-Id``: JetStream drops the repeat inside its duplicate window.
        """
        self._unmarked.extend(message_ids)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_unmarked(), name="outbox-mark-sent")

    async def _mark_unmarked(self) -> None:
        while self._unmarked:
            message_ids, self._unmarked = self._unmarked, []
            try:
                async with self._db.session() as session:
                    await session.execute(self._mark_sent(message_ids))
                    await session.commit()
            except Exception:
                log.warning(
                    "marking outbox rows sent failed; the sweeper will publish them again",
                    rows=len(message_ids),
                    exc_info=True,
                )

    def _mark_sent(self, message_ids: list[str]) -> Update:
        outbox = self._tables.outbox
        return update(outbox).where(outbox.c.message_id.in_(message_ids)).values(sent_at=utc_now())

    async def flush_marks(self) -> None:
        """Wait until every row published so far is marked sent (before a sweep, at shutdown)."""
        while self._marking is not None and not self._marking.done():
            await asyncio.shield(self._marking)

    async def sweep(self, limit: int = 500) -> int:
        """Publish rows that a crash (or an unreachable NATS) left unsent. Returns how many."""
        await self.flush_marks()  # rows published moments ago are not leftovers
        outbox = self._tables.outbox
        older_than = utc_now() - timedelta(seconds=self._settings.sweep_grace_seconds)
        async with self._db.session() as session:
            query = (
                select(outbox)
                .where(outbox.c.sent_at.is_(None), outbox.c.created_at < older_than)
                .order_by(outbox.c.seq)
                .limit(limit)
            )
            if not self._db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            if rows:
                log.info("outbox sweeper publishing leftovers", count=len(rows))
                leftovers = [_outgoing(row._mapping) for row in rows]
                for message in leftovers:  # one by one: after a failure, the rest waits
                    await self._publish(message)
                # In this session, which holds the rows' locks (PostgreSQL).
                await session.execute(self._mark_sent([m.message_id for m in leftovers]))
            await session.commit()
        return len(rows)

    async def measure_backlog(self) -> int:
        outbox = self._tables.outbox
        async with self._db.session() as session:
            backlog = (
                await session.scalar(
                    select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                )
                or 0
            )
        self._backlog.set(backlog)
        return backlog

    async def prune(self) -> None:
        """Keep the outbox and inbox bounded: forget what is older than the retention."""
        cutoff = retention_cutoff(self._settings.retention_hours)
        outbox, inbox = self._tables.outbox, self._tables.inbox
        async with self._db.session() as session:
            await session.execute(delete(outbox).where(outbox.c.sent_at < cutoff))
            await session.execute(delete(inbox).where(inbox.c.processed_at < cutoff))
            await session.commit()


def _outgoing(row: Mapping[str, Any]) -> OutgoingMessage:
    """An outbox row (as written, or as read back) on its way to NATS."""
    return OutgoingMessage(
        message_id=row["message_id"],
        subject=row["subject"],
        stream=row["stream"],
        payload=row["payload"].encode(),
        headers=dict(row["headers"]),
        correlation_id=row["correlation_id"],
    )
