"""Recording signals and refusals, the same way whether they came over HTTP or NATS.

An accepted signal's row and its ``SignalAccepted`` commit in one transaction (the outbox), so a
signal is never recorded without being announced, nor announced twice. The signal id is the
correlation id of everything that follows from it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.enums import SignalSource
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.signals import SignalAccepted, SignalRejected, SignalRequest
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Outbox, Transaction
from ordo.kit.store import Database
from ordo.signal import store
from ordo.signal.domain import (
    KeyReused,
    SignalError,
    UnknownSymbol,
    UnknownVenue,
    UnmappableIntent,
    bounded,
    fingerprint,
)
from ordo.signal.guards import DedupeCache

PRODUCER = "signal"
log = get_logger(__name__)
tracer = trace.get_tracer(__name__)


class RejectionReason(StrEnum):
    """Why a signal was refused: the ``reason`` of a rejection record and of SignalRejected."""

    INVALID_INPUT = "invalid_input"
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNKNOWN_VENUE = "unknown_venue"
    UNMAPPABLE_INTENT = "unmappable_intent"
    INVALID_SECRET = "invalid_secret"  # noqa: S105 (a reason code, not a secret)
    INVALID_TOKEN = "invalid_token"  # noqa: S105
    INVALID_SIGNATURE = "invalid_signature"
    FORBIDDEN_ADDRESS = "forbidden_address"
    BODY_TOO_LARGE = "body_too_large"
    KEY_REUSED = "key_reused"  # the dedupe key already names a different signal


_REASONS: dict[type[SignalError], RejectionReason] = {
    UnknownSymbol: RejectionReason.UNKNOWN_SYMBOL,
    UnknownVenue: RejectionReason.UNKNOWN_VENUE,
    UnmappableIntent: RejectionReason.UNMAPPABLE_INTENT,
    KeyReused: RejectionReason.KEY_REUSED,
}


@dataclass(frozen=True)
class Recorded:
    """The outcome of an intake: the signal id, and whether an earlier copy already had it."""

    signal_id: str
    duplicate: bool


@dataclass(frozen=True)
class Incoming:
    """A valid, normalised signal on its way in."""

    source: SignalSource
    dedupe_key: str
    request: SignalRequest
    raw_body: str | None = None
    key_field: str = "idempotency_key"  # what the dedupe key stands for, named in a conflict


@dataclass(frozen=True)
class Refusal:
    """A signal that will not be recorded, and why."""

    source: SignalSource
    reason: RejectionReason
    detail: str
    field: str | None = None
    remote_address: str | None = None
    raw_body: str | None = None

    @classmethod
    def of(
        cls,
        error: SignalError,
        source: SignalSource,
        *,
        remote_address: str | None = None,
        raw_body: str | None = None,
    ) -> "Refusal":
        """The refusal of a signal the domain found invalid."""
        return cls(
            source=source,
            reason=_REASONS.get(type(error), RejectionReason.INVALID_INPUT),
            detail=error.reason,
            field=error.field,
            remote_address=remote_address,
            raw_body=raw_body,
        )

    @property
    def explanation(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


class Intake:
    def __init__(
        self,
        outbox: Outbox,
        db: Database,
        cache: DedupeCache,
        *,
        dedupe_window: timedelta,
        rejection_retention: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._outbox = outbox
        self._db = db
        self._cache = cache
        self._window = dedupe_window
        self._retention = rejection_retention
        self._clock = clock

    # -- HTTP ----------------------------------------------------------------------------------
    async def accept(self, incoming: Incoming) -> Recorded:
        """Record ``incoming`` in its own transaction, or name the signal it repeats.

        Raises :class:`KeyReused` when its dedupe key already names a different signal.
        """
        content = fingerprint(incoming.request)
        cached = await self._cache.holder(incoming.dedupe_key, content)
        if cached is not None:
            return Recorded(cached, duplicate=True)
        # A publish that fails after the commit does not raise here: the signal is accepted, and
        # the outbox sweeper announces it once NATS answers again.
        async with self._outbox.transaction() as tx:
            outcome = await self._record(tx, incoming, cause=None)
        recorded, expires_at = outcome
        ttl = int((expires_at - self._clock()).total_seconds())
        await self._cache.remember(incoming.dedupe_key, recorded.signal_id, content, ttl)
        return recorded

    async def refuse(self, refusal: Refusal) -> str:
        """Keep a record of an HTTP refusal (it publishes nothing: the caller got the answer)."""
        async with self._db.session() as session:
            rejection_id = await self._insert_rejection(session, refusal)
            await session.commit()
        return rejection_id

    async def find(self, signal_id: str) -> store.StoredSignal | None:
        async with self._db.session() as session:
            return await store.get_signal(session, signal_id)

    # -- NATS ----------------------------------------------------------------------------------
    async def record(self, tx: Transaction, incoming: Incoming, cause: Message) -> Recorded:
        """Record ``incoming`` in the consumer's transaction ``tx``; raises :class:`KeyReused`."""
        recorded, _ = await self._record(tx, incoming, cause=cause)
        return recorded

    async def reject(self, tx: Transaction, refusal: Refusal, cause: Message) -> str:
        """Record a refused NATS submission and tell its sender with ``SignalRejected``."""
        rejection_id = await self._insert_rejection(tx.session, refusal)
        tx.publish(
            SignalRejected.caused_by(
                cause,
                producer=PRODUCER,
                signal_id=rejection_id,
                source=refusal.source,
                reason=refusal.reason.value,
                detail=refusal.explanation,
            )
        )
        return rejection_id

    # -- housekeeping --------------------------------------------------------------------------
    async def prune_rejections(self) -> int:
        """Forget refusals older than the retention: the table stays bounded under abuse."""
        async with self._db.session() as session:
            removed = await store.prune_rejections(session, self._clock() - self._retention)
            await session.commit()
        if removed:
            log.info("old rejections pruned", count=removed)
        return removed

    # -- shared --------------------------------------------------------------------------------
    async def _record(
        self, tx: Transaction, incoming: Incoming, cause: Message | None
    ) -> tuple[Recorded, datetime]:
        received_at = self._clock()
        signal = store.NewSignal(
            signal_id=new_message_id(),
            dedupe_key=incoming.dedupe_key,
            dedupe_expires_at=received_at + self._window,
            source=incoming.source,
            request=incoming.request,
            raw_body=bounded(incoming.raw_body, store.STORED_BODY_CHARS)
            if incoming.raw_body is not None
            else None,
            received_at=received_at,
        )
        with tracer.start_as_current_span("signal.record") as span:
            holder = await store.claim_dedupe_key(tx.session, signal)
            span.set_attribute("ordo.signal_id", holder.signal_id)
            span.set_attribute("ordo.account", incoming.request.account)
            if holder.signal_id != signal.signal_id:
                if fingerprint(holder.request) != fingerprint(incoming.request):
                    raise KeyReused(
                        incoming.key_field,
                        f"already names another signal ({holder.signal_id}) within the dedupe "
                        "window: a retry must repeat that signal, a new signal needs a new key",
                    )
                span.set_attribute("ordo.duplicate", True)
                log.info(
                    "repeated signal ignored",
                    signal_id=holder.signal_id,
                    dedupe_key=incoming.dedupe_key,
                )
                return Recorded(holder.signal_id, duplicate=True), holder.expires_at
            tx.publish(self._accepted(signal, cause))
        log.info(
            "signal accepted",
            signal_id=signal.signal_id,
            source=incoming.source,
            account=incoming.request.account,
            symbol=incoming.request.symbol,
            intent=incoming.request.intent,
        )
        return Recorded(signal.signal_id, duplicate=False), signal.dedupe_expires_at

    @staticmethod
    def _accepted(signal: store.NewSignal, cause: Message | None) -> SignalAccepted:
        # A new flow starts here: its correlation id is the signal id, whatever the cause's was.
        return SignalAccepted(
            correlation_id=signal.signal_id,
            causation_id=cause.message_id if cause is not None else None,
            producer=PRODUCER,
            signal_id=signal.signal_id,
            source=signal.source,
            received_at=signal.received_at,
            signal=signal.request,
        )

    async def _insert_rejection(self, session: AsyncSession, refusal: Refusal) -> str:
        rejection_id = new_message_id()
        await store.insert_rejection(
            session,
            store.NewRejection(
                rejection_id=rejection_id,
                source=refusal.source,
                reason=refusal.reason.value,
                field=refusal.field,
                detail=refusal.detail,
                remote_address=refusal.remote_address,
                raw_body=bounded(refusal.raw_body, store.STORED_BODY_CHARS)
                if refusal.raw_body is not None
                else None,
                received_at=self._clock(),
            ),
        )
        log.info(
            "signal refused",
            rejection_id=rejection_id,
            source=refusal.source,
            reason=refusal.reason,
            field=refusal.field,
        )
        return rejection_id
