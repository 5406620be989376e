"""Sends pending deliveries: each channel behind its own circuit breaker, retried with back-off.

A channel that is down keeps its deliveries pending; they go out when it returns.
"""

from collections.abc import Mapping

from ordo.contracts.types import utc_now
from ordo.kit.breaker import Breakers, CircuitOpenError
from ordo.kit.logs import get_logger
from ordo.kit.store import Database
from ordo.notifier import store
from ordo.notifier.channels import Channel, ChannelRejected

log = get_logger(__name__)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        breakers: Breakers,
        *,
        max_attempts: int,
    ) -> None:
        self._db = db
        self._channels = channels
        self._breakers = breakers
        self._max_attempts = max_attempts

    async def dispatch_due(self) -> int:
        async with self._db.session() as session:
            rows = await store.due(session)
        sent = 0
        for row in rows:
            sent += await self._deliver(row)
        return sent

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
            await self._failed(delivery_id, attempts - 1, str(exc), give_up=False)
            return 0
        except ChannelRejected as exc:
            log.error("delivery refused by channel", channel=channel_name, error=str(exc))
            await self._failed(delivery_id, attempts, str(exc), give_up=True)
            return 0
        except Exception as exc:
            give_up = attempts >= self._max_attempts
            log.warning(
                "delivery failed",
                channel=channel_name,
                attempts=attempts,
                giving_up=give_up,
                error=repr(exc),
            )
            await self._failed(delivery_id, attempts, repr(exc), give_up=give_up)
            return 0
        async with self._db.session() as session:
            await store.mark_sent(session, delivery_id)
            await session.commit()
        return 1

    async def _failed(self, delivery_id: int, attempts: int, error: str, *, give_up: bool) -> None:
        async with self._db.session() as session:
            await store.mark_failed_attempt(
                session,
                delivery_id,
                attempts,
                error,
                give_up=give_up,
                retry_at=utc_now() + store.retry_delay(attempts),
            )
            await session.commit()
