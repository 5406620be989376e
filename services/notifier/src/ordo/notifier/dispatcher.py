"""Sends pending deliveries: each channel behind its own circuit breaker and rate limit.

A channel that is down keeps its deliveries pending, retried with back-off; they go out when it
returns, unless it stays down past the deadline (``give_up_after``), when they are given up.
Each row is claimed before it is sent, so that replicas sharing the delivery log never send one
twice. When more is due on a channel than its rate limit lets through this minute, the burst is
folded into one digest, which goes out as one message (see :mod:`ordo.notifier.domain.digest`).
"""

import asyncio
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import cast

from ordo.contracts.enums import Severity
from ordo.contracts.envelope import new_message_id
from ordo.contracts.types import utc_now
from ordo.kit.breaker import Breakers, CircuitOpenError
from ordo.kit.logs import get_logger
from ordo.kit.store import Database
from ordo.notifier import store
from ordo.notifier.channels import Channel, ChannelRejected, ChannelUnavailable, Outgoing
from ordo.notifier.domain.digest import Held, digest_severity, digest_text
from ordo.notifier.domain.notifications import Attachment

log = get_logger(__name__)

# How long a claimed delivery is reserved for the dispatcher sending it: longer than any one
# send can take (a channel's timeout is at most 60 s for each of pool, connect, write and read).
# A dispatcher that dies mid-send leaves the delivery to be retried after it.
CLAIM = timedelta(minutes=5)
RATE_WINDOW = timedelta(minutes=1)
# The most deliveries folded into a digest in one round; a larger burst takes a few rounds.
MAX_BURST = 5000


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        breakers: Breakers,
        *,
        rate_limits: Mapping[str, int],
        give_up_after: timedelta,
        retention: timedelta,
        digest_max_lines: int = 20,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._channels = channels
        self._breakers = breakers
        self._rate_limits = rate_limits
        self._give_up_after = give_up_after
        self._retention = retention
        self._digest_max_lines = digest_max_lines
        self._clock = clock

    async def give_up_unconfigured(self) -> int:
        """Give up what waits for a channel that is no longer configured (at start-up: channels
        change only with the configuration)."""
        async with self._db.session() as session:
            given_up = await store.give_up_unconfigured(session, self._channels)
            await session.commit()
        if given_up:
            log.error("deliveries given up: their channel is no longer configured", count=given_up)
        return given_up

    async def dispatch_due(self) -> int:
        """Send what is due on every channel, each on its own; how many messages were sent."""
        sent = await asyncio.gather(
            *(self._dispatch(name, channel) for name, channel in self._channels.items())
        )
        return sum(sent)

    async def prune_history(self) -> int:
        """Keep the delivery log bounded: forget finished deliveries older than the retention."""
        async with self._db.session() as session:
            pruned = await store.prune(session, self._clock() - self._retention)
            await session.commit()
        if pruned:
            log.info("old deliveries pruned", deliveries=pruned)
        return pruned

    async def _dispatch(self, name: str, channel: Channel) -> int:
        now = self._clock()
        async with self._db.session() as session:
            # Approximate across replicas: each may spend what is left of the minute once.
            budget = self._rate_limits[name] - await store.sent_since(
                session, name, now - RATE_WINDOW
            )
            if budget <= 0:
                return 0  # what is due waits for the next minute
            due = await store.due(session, name, now, limit=budget + 1)
            digest_open = await store.open_digest(session, name) is not None
        if not due:
            return 0
        if len(due) > budget or digest_open:
            # A burst, or more of one that waits in a digest (its channel down): one message.
            await self._fold_burst(name)
            due = await self._due_digests(name)
        sent = 0
        for row in due:
            sent += await self._deliver(channel, int(str(row["id"])))
        return sent

    async def _due_digests(self, name: str) -> list[dict[str, object]]:
        async with self._db.session() as session:
            due = await store.due(session, name, self._clock(), limit=MAX_BURST)
        return [row for row in due if row["kind"] == store.DIGEST_KIND]

    async def _fold_burst(self, name: str) -> None:
        """Claim what is due on the channel and fold it into its open digest (or a new one)."""
        now = self._clock()
        token = str(uuid.uuid4())
        async with self._db.session() as session:
            claimed = await store.claim_due(session, name, token, now, now + CLAIM, MAX_BURST)
            if not claimed:
                return
            digest_id = await store.open_digest(session, name)
            if digest_id is None:
                digest_id = await store.new_digest(session, name, f"digest:{new_message_id()}", now)
            await store.group_claimed(session, token, digest_id)
            members = await store.digest_members(session, digest_id)
            held = [
                Held(str(m["kind"]), Severity(str(m["severity"])), str(m["text"])) for m in members
            ]
            folded = await store.rewrite_digest(
                session,
                digest_id,
                digest_text(held, max_lines=self._digest_max_lines),
                digest_severity(held).value,
                min(cast(datetime, m["created_at"]) for m in members),
            )
            if not folded:
                # A dispatcher claimed the digest to send it meanwhile: undone, the burst is due
                # again next round, and never joins a digest already on its way.
                await session.rollback()
                return
            await session.commit()
        log.warning("burst folded into a digest", channel=name, deliveries=claimed)

    async def _deliver(self, channel: Channel, delivery_id: int) -> int:
        now = self._clock()
        async with self._db.session() as session:
            row = await store.claim(session, delivery_id, str(uuid.uuid4()), now, now + CLAIM)
            await session.commit()
        if row is None:
            return 0  # another dispatcher took it
        attempts = int(str(row["attempts"])) + 1
        try:
            await self._breakers.call(
                f"channel:{channel.name}",
                lambda: channel.send(_outgoing(row)),
                ignore=(ChannelRejected,),
            )
        except CircuitOpenError as exc:
            # Not tried: the attempt is not counted, but the deadline still runs.
            await self._retry_later(row, attempts - 1, str(exc))
            return 0
        except ChannelRejected as exc:
            log.error("delivery refused by channel", channel=channel.name, error=str(exc))
            await self._failed(delivery_id, attempts, str(exc), give_up=True)
            return 0
        except Exception as exc:
            retry_after = exc.retry_after if isinstance(exc, ChannelUnavailable) else None
            error = str(exc) if isinstance(exc, ChannelUnavailable) else repr(exc)
            await self._retry_later(row, attempts, error, retry_after)
            return 0
        async with self._db.session() as session:
            await store.mark_sent(session, delivery_id, self._clock())
            await session.commit()
        return 1

    async def _retry_later(
        self,
        row: dict[str, object],
        attempts: int,
        error: str,
        retry_after: timedelta | None = None,
    ) -> None:
        created_at = cast(datetime, row["created_at"])
        give_up = self._clock() - created_at >= self._give_up_after
        report = log.error if give_up else log.warning
        report(
            "delivery given up: still failing at the deadline" if give_up else "delivery failed",
            channel=row["channel"],
            attempts=attempts,
            error=error,
        )
        await self._failed(
            int(str(row["id"])), attempts, error, give_up=give_up, retry_after=retry_after
        )

    async def _failed(
        self,
        delivery_id: int,
        attempts: int,
        error: str,
        *,
        give_up: bool,
        retry_after: timedelta | None = None,
    ) -> None:
        delay = max(store.retry_delay(attempts), retry_after or timedelta(0))
        async with self._db.session() as session:
            await store.mark_failed_attempt(
                session,
                delivery_id,
                attempts,
                error,
                give_up=give_up,
                retry_at=self._clock() + delay,
            )
            await session.commit()


def _outgoing(row: Mapping[str, object]) -> Outgoing:
    attachment = None
    if row["attachment"] is not None:
        attachment = Attachment(
            filename=str(row["attachment_name"]),
            content=cast(bytes, row["attachment"]),
            media_type=str(row["attachment_type"]),
        )
    return Outgoing(
        delivery_id=int(str(row["id"])),
        message_id=str(row["message_id"]),
        kind=str(row["kind"]),
        severity=str(row["severity"]),
        text=str(row["text"]),
        attachment=attachment,
    )
