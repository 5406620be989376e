"""The notifier's store: the delivery log (one row per notification and channel)."""

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, Index, Integer, String, Table, Text, UniqueConstraint, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.types import utc_now
from ordo.kit.store import UtcDateTime, messaging_tables, new_metadata
from ordo.notifier.domain import Notification

metadata = new_metadata()
messaging = messaging_tables(metadata)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the configured attempts


deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, doc="The event that caused it"),
    Column("channel", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("message_id", "channel", name="uq_deliveries_message_channel"),
)
Index("ix_deliveries_due", deliveries.c.status, deliveries.c.next_attempt_at)


async def enqueue(
    session: AsyncSession, message_id: str, notification: Notification, channels: tuple[str, ...]
) -> None:
    """Record one pending delivery per channel; a repeat of the same event adds nothing."""
    now = utc_now()
    rows = [
        {
            "message_id": message_id,
            "channel": channel,
            "kind": notification.kind.value,
            "severity": notification.severity.value,
            "text": notification.text,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for channel in channels
    ]
    if not rows:
        return
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(insert(deliveries).values(rows).on_conflict_do_nothing())


async def due(session: AsyncSession, limit: int = 100) -> list[dict[str, object]]:
    query = (
        select(deliveries)
        .where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= utc_now(),
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


async def mark_sent(session: AsyncSession, delivery_id: int) -> None:
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=DeliveryStatus.SENT.value,
            delivered_at=utc_now(),
            attempts=deliveries.c.attempts + 1,
            last_error=None,
        )
    )


async def mark_failed_attempt(
    session: AsyncSession,
    delivery_id: int,
    attempts: int,
    error: str,
    *,
    give_up: bool,
    retry_at: datetime,
) -> None:
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=(DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING).value,
            attempts=attempts,
            last_error=error[:2000],
            next_attempt_at=retry_at,
        )
    )


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off, capped at five minutes."""
    return timedelta(seconds=min(2**attempts, 300))
