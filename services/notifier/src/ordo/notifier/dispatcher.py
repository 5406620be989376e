"""Sends pending deliveries: each channel behind its own circuit breaker, retried with back-off.

A channel that is down keeps its deliveries pending; they go out when it returns, unless it
stays down past the deadline (``give_up_after``), when they are given up. Each row is claimed
before it is sent, so that replicas sharing the delivery log never send one twice.
"""

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import cast

from ordo.contracts.types import utc_now
from ordo.kit.breaker import Breakers, CircuitOpenError
from ordo.kit.logs import get_logger
from ordo.kit.store import Database
from ordo.notifier import store
from ordo.notifier.channels import Channel, ChannelRejected, ChannelUnavailable

log = get_logger(__name__)

# How long a claimed delivery is reserved for the dispatcher sending it: longer than any one
# send can take (the webhook's timeout is at most 60 s for each of pool, connect, write and
# read). A dispatcher that dies mid-send leaves the delivery to be retried after it.
CLAIM = timedelta(minutes=5)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        breakers: Breakers,
        *,
        give_up_after: timedelta,
        retention: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._channels = channels
        self._breakers = breakers
        self._give_up_after = give_up_after
        self._retention = retention
        self._clock = clock

    async def dispatch_due(self) -> int:
        """Send what is due; how many were sent."""
        async with self._db.session() as session:
            rows = await store.due(session, self._clock())
        sent = 0
        for row in rows:
            if await self._claim(int(str(row["id"]))):
                sent += await self._deliver(row)
        return sent

    async def prune_history(self) -> int:
        """Keep the delivery log bounded: forget finished deliveries older than the retention."""
        async with self._db.session() as session:
            pruned = await store.prune(session, self._clock() - self._retention)
            await session.commit()
        if pruned:
            log.info("old deliveries pruned", deliveries=pruned)
        return pruned

    async def _claim(self, delivery_id: int) -> bool:
        now = self._clock()
        async with self._db.session() as session:
            claimed = await store.claim(session, delivery_id, now, now + CLAIM)
            await session.commit()
        return claimed

    async def _deliver(self, row: dict[str, object]) -> int:
        delivery_id, channel_name = int(str(row["id"])), str(row["channel"])
        channel = self._channels.get(channel_name)
        attempts = int(str(row["attempts"])) + 1
        try:
            if channel is None:
                raise ChannelRejected(f"channel {channel_name!r} is no longer configured")
            await self._breakers.call(
                f"channel:{channel_name}",
                lambda: channel.send(str(row["kind"]), str(row["severity"]), str(row["text"])),
                ignore=(ChannelRejected,),
            )
        except CircuitOpenError as exc:
            # Not tried: the attempt is not counted, but the deadline still runs.
            await self._retry_later(row, attempts - 1, str(exc))
            return 0
        except ChannelRejected as exc:
            log.error("delivery refused by channel", channel=channel_name, error=str(exc))
            await self._failed(delivery_id, attempts, str(exc), give_up=True)
            return 0
        except Exception as exc:
            retry_after = exc.retry_after if isinstance(exc, ChannelUnavailable) else None
            error = str(exc) if isinstance(exc, ChannelUnavailable) else repr(exc)
            await self._retry_later(row, attempts, error, retry_after)
            return 0
        async with self._db.session() as session:
            await store.mark_sent(session, delivery_id)
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
