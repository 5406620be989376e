"""The signal service's store: every accepted signal, and every refusal.

A signal's dedupe key belongs to it for the dedupe window: ``active_dedupe_key`` is UNIQUE, so
the database decides which of two concurrent copies of an alert wins, whatever replica got them.
When the window has passed, the key is retired (set to NULL, which UNIQUE allows many times) and
the same alert makes a new signal: a template without ids or time that fires again tomorrow is a
new signal, not a repeat.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Table, Text, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.enums import SignalSource
from ordo.contracts.signals import SignalRequest
from ordo.kit.store import UtcDateTime, insert_with_conflicts, messaging_tables, new_metadata

metadata = new_metadata()
messaging = messaging_tables(metadata)

DEDUPE_KEY_LENGTH = 255
# Enough for any body the intake accepts (16 KiB); rejections of larger bodies keep the start.
STORED_BODY_CHARS = 16_384
_CLAIM_ATTEMPTS = 3

signals = Table(
    "signals",
    metadata,
    Column("signal_id", String(64), primary_key=True),
    Column("dedupe_key", String(DEDUPE_KEY_LENGTH), nullable=False, index=True),
    Column(
        "active_dedupe_key",
        String(DEDUPE_KEY_LENGTH),
        nullable=True,
        unique=True,
        doc="The dedupe key while its window lasts; NULL once retired",
    ),
    Column("dedupe_expires_at", UtcDateTime, nullable=False),
    Column("source", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("intent", String(32), nullable=False),
    Column("request", JSON, nullable=False, doc="The normalised SignalRequest (JSON mode)"),
    Column("raw_body", Text, nullable=True, doc="As received, secret redacted, bounded"),
    Column("received_at", UtcDateTime, nullable=False),
)

rejections = Table(
    "rejections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("reason", String(64), nullable=False, doc="A RejectionReason code"),
    Column("field", String(200), nullable=True),
    Column("detail", Text, nullable=False),
    Column("remote_address", String(64), nullable=True),
    Column("raw_body", Text, nullable=True, doc="As received, secret redacted, bounded"),
    Column("received_at", UtcDateTime, nullable=False),
)
Index("ix_rejections_received_at", rejections.c.received_at)


@dataclass(frozen=True)
class NewSignal:
    signal_id: str
    dedupe_key: str
    dedupe_expires_at: datetime
    source: SignalSource
    request: SignalRequest
    raw_body: str | None
    received_at: datetime


@dataclass(frozen=True)
class KeyHolder:
    """The signal that holds a dedupe key, until when, and what it asked for."""

    signal_id: str
    expires_at: datetime
    request: SignalRequest


@dataclass(frozen=True)
class StoredSignal:
    signal_id: str
    dedupe_key: str
    source: SignalSource
    request: SignalRequest
    received_at: datetime


@dataclass(frozen=True)
class NewRejection:
    rejection_id: str
    source: SignalSource
    reason: str
    field: str | None
    detail: str
    remote_address: str | None
    raw_body: str | None
    received_at: datetime


class DedupeContention(RuntimeError):
    """The dedupe key kept changing hands while we tried to claim it (retry the whole intake)."""


async def claim_dedupe_key(session: AsyncSession, signal: NewSignal) -> KeyHolder:
    """Insert ``signal`` unless another live signal holds its dedupe key; return the holder.

    The holder is ``signal`` itself when it was inserted. Never raises for a duplicate, so the
    caller's transaction (and a consumer's inbox row in it) stays usable.
    """
    for _ in range(_CLAIM_ATTEMPTS):
        if await _insert_unless_key_taken(session, signal):
            return KeyHolder(signal.signal_id, signal.dedupe_expires_at, signal.request)
        holder = await _active_holder(session, signal.dedupe_key)
        if holder is None:
            continue  # retired by a concurrent intake between our insert and our look-up
        if holder.expires_at > signal.received_at:
            return holder
        await _retire(session, holder.signal_id, signal.dedupe_key)
    raise DedupeContention(f"could not claim dedupe key {signal.dedupe_key!r}")


async def get_signal(session: AsyncSession, signal_id: str) -> StoredSignal | None:
    row = (await session.execute(select(signals).where(signals.c.signal_id == signal_id))).first()
    if row is None:
        return None
    return StoredSignal(
        signal_id=row.signal_id,
        dedupe_key=row.dedupe_key,
        source=SignalSource(row.source),
        request=SignalRequest.model_validate(row.request),
        received_at=row.received_at,
    )


async def insert_rejection(session: AsyncSession, rejection: NewRejection) -> None:
    await session.execute(
        rejections.insert().values(
            id=rejection.rejection_id,
            source=rejection.source.value,
            reason=rejection.reason,
            field=rejection.field[:200] if rejection.field else None,
            detail=rejection.detail,
            remote_address=rejection.remote_address,
            raw_body=rejection.raw_body,
            received_at=rejection.received_at,
        )
    )


async def prune_rejections(session: AsyncSession, older_than: datetime) -> int:
    result = await session.execute(delete(rejections).where(rejections.c.received_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


async def _insert_unless_key_taken(session: AsyncSession, signal: NewSignal) -> bool:
    request = signal.request
    values: dict[str, Any] = {
        "signal_id": signal.signal_id,
        "dedupe_key": signal.dedupe_key,
        "active_dedupe_key": signal.dedupe_key,
        "dedupe_expires_at": signal.dedupe_expires_at,
        "source": signal.source.value,
        "account": request.account,
        "strategy": request.strategy,
        "venue": request.venue,
        "symbol": request.symbol,
        "intent": request.intent.value,
        "request": request.model_dump(mode="json"),
        "raw_body": signal.raw_body,
        "received_at": signal.received_at,
    }
    statement = (
        insert_with_conflicts(session, signals)
        .values(values)
        .on_conflict_do_nothing(index_elements=[signals.c.active_dedupe_key])
        .returning(signals.c.signal_id)
    )
    return (await session.scalar(statement)) is not None


async def _active_holder(session: AsyncSession, dedupe_key: str) -> KeyHolder | None:
    row = (
        await session.execute(
            select(signals.c.signal_id, signals.c.dedupe_expires_at, signals.c.request).where(
                signals.c.active_dedupe_key == dedupe_key
            )
        )
    ).first()
    if row is None:
        return None
    return KeyHolder(
        row.signal_id, row.dedupe_expires_at, SignalRequest.model_validate(row.request)
    )


async def _retire(session: AsyncSession, signal_id: str, dedupe_key: str) -> None:
    # Guarded by the key itself: of two intakes retiring the same holder, one changes the row
    # and the other changes nothing; both then try to insert and the database picks one.
    await session.execute(
        update(signals)
        .where(signals.c.signal_id == signal_id, signals.c.active_dedupe_key == dedupe_key)
        .values(active_dedupe_key=None)
    )
