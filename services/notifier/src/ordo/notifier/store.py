"""The notifier's store: the delivery log (one row per notification and channel).

Replicas share the log: a dispatcher claims a row (moves its ``next_attempt_at`` past the
claim's end) before it sends, so that no two send the same row. The log is bounded: sent and
given-up rows are pruned after a retention.
"""

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.types import utc_now
from ordo.kit.store import UtcDateTime, insert_with_conflicts, messaging_tables, new_metadata
from ordo.notifier.domain import Notification

metadata = new_metadata()
messaging = messaging_tables(metadata)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up: refused by the channel, or still failing at the deadline


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
    insert = insert_with_conflicts(session, deliveries)
    await session.execute(insert.values(rows).on_conflict_do_nothing())


async def due(session: AsyncSession, now: datetime, limit: int = 100) -> list[dict[str, object]]:
    query = (
        select(deliveries)
        .where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


async def claim(session: AsyncSession, delivery_id: int, now: datetime, until: datetime) -> bool:
    """Take a due delivery for sending; False when another dispatcher took it first.

    The claim ends at ``until``: a dispatcher that dies while sending leaves the row due again.
    """
    claimed = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        )
        .values(next_attempt_at=until)
    )
    return int(getattr(claimed, "rowcount", 0) or 0) == 1


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


async def prune(session: AsyncSession, created_before: datetime) -> int:
    """Forget sent and given-up deliveries of events older than ``created_before``; how many."""
    pruned = await session.execute(
        delete(deliveries).where(
            deliveries.c.status.in_((DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value)),
            deliveries.c.created_at < created_before,
        )
    )
    return int(getattr(pruned, "rowcount", 0) or 0)


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off, capped at five minutes."""
    return timedelta(seconds=min(2**attempts, 300))
