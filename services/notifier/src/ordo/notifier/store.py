"""The notifier's store: the delivery log, and the position changes the report is made from.

The delivery log has one row per notification and channel. Replicas share it: a dispatcher
claims a row (moves its ``next_attempt_at`` past the claim's end, under its claim token) before
it sends, so that no two send the same row. A burst is folded into a digest row: its members are
marked ``grouped`` and go out with it. A repeat is recorded as ``suppressed`` and never sent.
The log is bounded: finished rows are pruned after a retention.

Position changes are the OMS's ``PositionChanged`` events, one row per position version; the
end-of-day report is computed from them (see :mod:`ordo.notifier.domain.analytics`).
"""

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from ordo.contracts.orders import PositionChanged
from ordo.kit.store import (
    ExactDecimal,
    UtcDateTime,
    insert_with_conflicts,
    messaging_tables,
    new_metadata,
)
from ordo.notifier.domain.analytics import PositionKey, PositionStep
from ordo.notifier.domain.notifications import Attachment, Notification

metadata = new_metadata()
messaging = messaging_tables(metadata)

DIGEST_KIND = "digest"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up: refused by the channel, or still failing at the deadline
    GROUPED = "grouped"  # folded into a digest (``digest_id``), which carries it
    SUPPRESSED = "suppressed"  # a repeat of what the channel was just told: never sent


# What a repeat is compared with: what the channel was told, or will be.
TOLD = (DeliveryStatus.PENDING.value, DeliveryStatus.SENT.value, DeliveryStatus.GROUPED.value)
FINISHED = (
    DeliveryStatus.SENT.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.GROUPED.value,
    DeliveryStatus.SUPPRESSED.value,
)

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
    Column("topic_key", String(64), nullable=True, doc="sha256 of the notification's topic"),
    Column("fingerprint", String(64), nullable=True, doc="sha256 of the text"),
    Column("claim_token", String(36), nullable=True, doc="The dispatcher sending it, if any"),
    Column("digest_id", Integer, nullable=True, doc="The digest that carries a grouped row"),
    Column("attachment_name", String(100), nullable=True),
    Column("attachment_type", String(64), nullable=True),
    Column("attachment", LargeBinary, nullable=True),
    UniqueConstraint("message_id", "channel", name="uq_deliveries_message_channel"),
)
Index("ix_deliveries_due", deliveries.c.status, deliveries.c.next_attempt_at)
# Finds the last delivery a channel was told on a topic, past the repeats recorded after it.
Index("ix_deliveries_topic", deliveries.c.channel, deliveries.c.topic_key, deliveries.c.status)
Index("ix_deliveries_delivered", deliveries.c.channel, deliveries.c.delivered_at)
Index("ix_deliveries_digest", deliveries.c.digest_id)

position_changes = Table(
    "position_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("flat", Boolean, nullable=False, doc="quantity is zero: a round trip may start here"),
    Column("realised_pnl", ExactDecimal, nullable=False),
    Column("fees", ExactDecimal, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "account", "strategy", "venue", "symbol", "version", name="uq_position_changes_version"
    ),
)
Index("ix_position_changes_changed_at", position_changes.c.changed_at)

scheduled_reports = Table(
    "scheduled_reports",
    metadata,
    Column("report_date", Date, primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)


# -- the delivery log: recording --------------------------------------------------------------


async def enqueue(
    session: AsyncSession,
    message_id: str,
    notification: Notification,
    channel: str,
    *,
    now: datetime,
    dedupe_window: timedelta,
    attachment_apart: bool = False,
    with_attachment: bool = True,
) -> None:
    """Record the notification's delivery on one channel; a repeat of the same event adds nothing.

    A repeat of what the channel was last told on the same topic, within ``dedupe_window``, is
    recorded as suppressed. The attachment goes in the same row, or, when ``attachment_apart``
    (a Telegram photo has a short caption), in a row of its own with the title as its text.
    """
    repeat = await _is_repeat(
        session, channel, notification.topic_key, notification.fingerprint, now - dedupe_window
    )
    status = DeliveryStatus.SUPPRESSED if repeat else DeliveryStatus.PENDING
    row = {
        "message_id": message_id,
        "channel": channel,
        "kind": notification.kind.value,
        "severity": notification.severity.value,
        "text": notification.text,
        "status": status.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "topic_key": notification.topic_key,
        "fingerprint": notification.fingerprint,
        # Every row of a multi-row insert names the same columns.
        "attachment_name": None,
        "attachment_type": None,
        "attachment": None,
    }
    attachment = notification.attachment if with_attachment else None
    rows = [row]
    if attachment is not None and attachment_apart:
        rows.append(
            row
            | {"message_id": f"{message_id}:attachment", "text": notification.title}
            | _attachment_columns(attachment)
        )
    elif attachment is not None:
        row.update(_attachment_columns(attachment))
    insert = insert_with_conflicts(session, deliveries)
    await session.execute(insert.values(rows).on_conflict_do_nothing())


def _attachment_columns(attachment: Attachment) -> dict[str, object]:
    return {
        "attachment_name": attachment.filename,
        "attachment_type": attachment.media_type,
        "attachment": attachment.content,
    }


async def _is_repeat(
    session: AsyncSession, channel: str, topic_key: str, fingerprint: str, since: datetime
) -> bool:
    last = (
        await session.execute(
            select(deliveries.c.fingerprint, deliveries.c.created_at)
            .where(
                deliveries.c.channel == channel,
                deliveries.c.topic_key == topic_key,
                deliveries.c.status.in_(TOLD),
            )
            .order_by(deliveries.c.id.desc())
            .limit(1)
        )
    ).first()
    return last is not None and last.fingerprint == fingerprint and last.created_at >= since


# -- the delivery log: sending ----------------------------------------------------------------


async def due(
    session: AsyncSession, channel: str, now: datetime, limit: int = 100
) -> list[dict[str, object]]:
    """The channel's due deliveries, oldest first: their ids and kinds (a claim reads the rest)."""
    query = (
        select(deliveries.c.id, deliveries.c.kind)
        .where(
            deliveries.c.channel == channel,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


async def claim(
    session: AsyncSession, delivery_id: int, token: str, now: datetime, until: datetime
) -> dict[str, object] | None:
    """Take a due delivery for sending: the row as claimed, or None when another took it first.

    The claim ends at ``until``: a dispatcher that dies while sending leaves the row due again.
    The row is read after the claim, so that what is sent is what was claimed.
    """
    claimed = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        )
        .values(next_attempt_at=until, claim_token=token)
    )
    if int(getattr(claimed, "rowcount", 0) or 0) != 1:
        return None
    row = (await session.execute(select(deliveries).where(deliveries.c.id == delivery_id))).one()
    return dict(row._mapping)


async def claim_due(
    session: AsyncSession, channel: str, token: str, now: datetime, until: datetime, limit: int
) -> int:
    """Claim up to ``limit`` due deliveries of a channel (digests aside) at once; how many."""
    due_ids = (
        select(deliveries.c.id)
        .where(
            deliveries.c.channel == channel,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
            deliveries.c.kind != DIGEST_KIND,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
        .scalar_subquery()
    )
    claimed = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id.in_(due_ids),
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        )
        .values(next_attempt_at=until, claim_token=token)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(claimed, "rowcount", 0) or 0)


async def sent_since(session: AsyncSession, channel: str, since: datetime) -> int:
    """Messages the channel was sent since ``since`` (a digest is one message)."""
    count = await session.scalar(
        select(func.count())
        .select_from(deliveries)
        .where(
            deliveries.c.channel == channel,
            deliveries.c.status == DeliveryStatus.SENT.value,
            deliveries.c.delivered_at >= since,
        )
    )
    return int(count or 0)


async def open_digest(session: AsyncSession, channel: str) -> int | None:
    """The channel's digest that has not gone out and that no dispatcher is sending, if any."""
    return await session.scalar(
        select(deliveries.c.id)
        .where(
            deliveries.c.channel == channel,
            deliveries.c.kind == DIGEST_KIND,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.claim_token.is_(None),
        )
        .order_by(deliveries.c.id.desc())
        .limit(1)
    )


async def new_digest(session: AsyncSession, channel: str, message_id: str, now: datetime) -> int:
    await session.execute(
        deliveries.insert().values(
            message_id=message_id,
            channel=channel,
            kind=DIGEST_KIND,
            severity="info",
            text="",
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    created = await session.execute(
        select(deliveries.c.id).where(
            deliveries.c.message_id == message_id, deliveries.c.channel == channel
        )
    )
    return int(created.scalar_one())


async def group_claimed(session: AsyncSession, token: str, digest_id: int) -> None:
    """Fold the deliveries claimed under ``token`` into the digest."""
    await session.execute(
        update(deliveries)
        .where(deliveries.c.claim_token == token, deliveries.c.kind != DIGEST_KIND)
        .values(status=DeliveryStatus.GROUPED.value, digest_id=digest_id, claim_token=None)
    )


async def digest_members(session: AsyncSession, digest_id: int) -> list[dict[str, object]]:
    query = (
        select(
            deliveries.c.kind,
            deliveries.c.severity,
            deliveries.c.text,
            deliveries.c.created_at,
        )
        .where(deliveries.c.digest_id == digest_id)
        .order_by(deliveries.c.id)
    )
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


async def rewrite_digest(
    session: AsyncSession, digest_id: int, text: str, severity: str, created_at: datetime
) -> bool:
    """Give the digest its members' text; False when a dispatcher claimed it meanwhile.

    ``created_at`` is its oldest member's: the give-up deadline runs from the oldest event.
    """
    rewritten = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id == digest_id,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.claim_token.is_(None),
        )
        .values(text=text, severity=severity, created_at=created_at)
    )
    return int(getattr(rewritten, "rowcount", 0) or 0) == 1


async def mark_sent(session: AsyncSession, delivery_id: int, now: datetime) -> None:
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=DeliveryStatus.SENT.value,
            delivered_at=now,
            attempts=deliveries.c.attempts + 1,
            last_error=None,
            claim_token=None,
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
            claim_token=None,
        )
    )


async def give_up_unconfigured(session: AsyncSession, configured: Iterable[str]) -> int:
    """Give up the pending deliveries of channels that are no longer configured; how many."""
    given_up = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.channel.not_in(list(configured)),
        )
        .values(
            status=DeliveryStatus.FAILED.value,
            last_error="the channel is no longer configured",
            claim_token=None,
        )
    )
    return int(getattr(given_up, "rowcount", 0) or 0)


async def prune(session: AsyncSession, created_before: datetime) -> int:
    """Forget finished deliveries of events older than ``created_before``; how many."""
    pruned = await session.execute(
        delete(deliveries).where(
            deliveries.c.status.in_(FINISHED), deliveries.c.created_at < created_before
        )
    )
    return int(getattr(pruned, "rowcount", 0) or 0)


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off, capped at five minutes."""
    return timedelta(seconds=min(2**attempts, 300))


# -- position changes -------------------------------------------------------------------------


async def record_position_change(session: AsyncSession, changed: PositionChanged) -> None:
    """Keep one row per position version; a repeat of a version adds nothing."""
    position = changed.position
    insert = insert_with_conflicts(session, position_changes)
    await session.execute(
        insert.values(
            account=position.account,
            strategy=position.strategy,
            venue=position.venue,
            symbol=position.symbol,
            version=position.version,
            quantity=position.quantity,
            flat=position.quantity == 0,
            realised_pnl=position.realised_pnl,
            fees=position.fees,
            changed_at=position.updated_at,
        ).on_conflict_do_nothing()
    )


def _key_columns(key: PositionKey) -> tuple[ColumnElement[bool], ...]:
    table = position_changes.c
    return (
        table.account == key.account,
        table.strategy == key.strategy,
        table.venue == key.venue,
        table.symbol == key.symbol,
    )


async def active_positions(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    account: str | None = None,
    strategy: str | None = None,
) -> dict[PositionKey, datetime]:
    """The positions that changed in [start, end), each with the time of its first change ever."""
    table = position_changes.c
    key_columns = (table.account, table.strategy, table.venue, table.symbol)
    filters = [
        column == value
        for column, value in ((table.account, account), (table.strategy, strategy))
        if value is not None
    ]
    active = (
        select(*key_columns)
        .where(table.changed_at >= start, table.changed_at < end, *filters)
        .distinct()
        .subquery()
    )
    query = (
        select(*key_columns, func.min(table.changed_at).label("first"))
        .join(
            active,
            (table.account == active.c.account)
            & (table.strategy == active.c.strategy)
            & (table.venue == active.c.venue)
            & (table.symbol == active.c.symbol),
        )
        .group_by(*key_columns)
    )
    return {
        PositionKey(row.account, row.strategy, row.venue, row.symbol): row.first
        for row in (await session.execute(query)).all()
    }


async def position_steps(
    session: AsyncSession, key: PositionKey, start: datetime, end: datetime
) -> list[PositionStep]:
    """The position's changes before ``end``, from the last time it was flat before ``start``.

    That is every change a round trip closing in [start, end) is made of.
    """
    table = position_changes.c
    last_flat = await session.scalar(
        select(func.max(table.version)).where(
            *_key_columns(key), table.flat.is_(True), table.changed_at < start
        )
    )
    query = (
        select(table.version, table.quantity, table.realised_pnl, table.fees, table.changed_at)
        .where(*_key_columns(key), table.changed_at < end, table.version >= (last_flat or 0))
        .order_by(table.version)
    )
    return [
        PositionStep(
            key=key,
            version=row.version,
            quantity=row.quantity,
            realised_pnl=row.realised_pnl,
            fees=row.fees,
            at=row.changed_at,
        )
        for row in (await session.execute(query)).all()
    ]


async def prune_position_changes(session: AsyncSession, changed_before: datetime) -> int:
    pruned = await session.execute(
        delete(position_changes).where(position_changes.c.changed_at < changed_before)
    )
    return int(getattr(pruned, "rowcount", 0) or 0)


# -- the scheduled report ---------------------------------------------------------------------


async def report_scheduled(session: AsyncSession, report_date: date) -> bool:
    found = await session.scalar(
        select(scheduled_reports.c.report_date).where(
            scheduled_reports.c.report_date == report_date
        )
    )
    return found is not None


async def mark_report_scheduled(session: AsyncSession, report_date: date, now: datetime) -> bool:
    """Note that the day's report was handed to the channels; False if a replica did already."""
    insert = insert_with_conflicts(session, scheduled_reports)
    inserted = await session.execute(
        insert.values(report_date=report_date, created_at=now).on_conflict_do_nothing()
    )
    return int(getattr(inserted, "rowcount", 0) or 0) == 1


async def prune_scheduled_reports(session: AsyncSession, before: date) -> None:
    await session.execute(delete(scheduled_reports).where(scheduled_reports.c.report_date < before))
