"""Events in → pending deliveries in the delivery log (the dispatcher sends them), and position
changes in → the history the end-of-day report is made from."""

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.envelope import Message
from ordo.contracts.orders import PositionChanged
from ordo.contracts.types import utc_now
from ordo.kit.messaging import DeadLetter
from ordo.kit.outbox import Transaction
from ordo.notifier import store
from ordo.notifier.channels import AttachmentSupport
from ordo.notifier.config import Route
from ordo.notifier.domain.notifications import (
    EventKind,
    Notification,
    at_least,
    for_dead_letter,
)

M = TypeVar("M", bound=Message)


class Notifications:
    """Routes a notification to channels by its kind and severity, and records the deliveries."""

    def __init__(
        self,
        channels: Mapping[str, AttachmentSupport],
        routes: Mapping[EventKind, Route],
        *,
        dedupe_window: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._channels = channels
        self._routes = routes
        self._dedupe_window = dedupe_window
        self._clock = clock

    def channels_for(self, notification: Notification) -> tuple[str, ...]:
        route = self._routes.get(notification.kind)
        if route is None:
            return tuple(self._channels)
        return tuple(
            channel
            for channel, least in route.items()
            if channel in self._channels and at_least(notification.severity, least)
        )

    async def record(
        self, session: AsyncSession, message_id: str, notification: Notification
    ) -> None:
        """One pending delivery per routed channel (a repeat is recorded as suppressed)."""
        now = self._clock()
        for channel in self.channels_for(notification):
            support = self._channels[channel]
            await store.enqueue(
                session,
                message_id,
                notification,
                channel,
                now=now,
                dedupe_window=self._dedupe_window,
                attachment_apart=support is AttachmentSupport.APART,
                with_attachment=support is not AttachmentSupport.NONE,
            )

    def handler(
        self, render: Callable[[M], Notification | None]
    ) -> Callable[[M, Transaction], Awaitable[None]]:
        """A consumer that renders the event and records its deliveries."""

        async def handle(message: M, tx: Transaction) -> None:
            notification = render(message)
            if notification is not None:
                await self.record(tx.session, message.message_id, notification)

        return handle

    async def on_dead_letter(self, letter: DeadLetter, tx: Transaction) -> None:
        await self.record(tx.session, letter.dead_letter_id, for_dead_letter(letter))


async def on_position_changed(changed: PositionChanged, tx: Transaction) -> None:
    """Keep the position's new version: the report's trades are made of these."""
    await store.record_position_change(tx.session, changed)
