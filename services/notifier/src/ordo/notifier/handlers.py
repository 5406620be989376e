"""Events in → pending deliveries in the delivery log (the dispatcher sends them)."""

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from ordo.contracts.envelope import Message
from ordo.kit.messaging import DeadLetter
from ordo.kit.outbox import Transaction
from ordo.notifier import store
from ordo.notifier.domain import EventKind, Notification, for_dead_letter

M = TypeVar("M", bound=Message)


class Notifications:
    def __init__(self, channels: tuple[str, ...], routes: Mapping[EventKind, tuple[str, ...]]):
        self._channels = channels
        self._routes = routes

    def channels_for(self, kind: EventKind) -> tuple[str, ...]:
        wanted = self._routes.get(kind, self._channels)
        return tuple(channel for channel in wanted if channel in self._channels)

    def handler(
        self, render: Callable[[M], Notification | None]
    ) -> Callable[[M, Transaction], Awaitable[None]]:
        """A consumer that renders the event and records one delivery per routed channel."""

        async def handle(message: M, tx: Transaction) -> None:
            notification = render(message)
            if notification is not None:
                await store.enqueue(
                    tx.session,
                    message.message_id,
                    notification,
                    self.channels_for(notification.kind),
                )

        return handle

    async def on_dead_letter(self, letter: DeadLetter, tx: Transaction) -> None:
        notification = for_dead_letter(letter)
        await store.enqueue(
            tx.session, letter.dead_letter_id, notification, self.channels_for(notification.kind)
        )
