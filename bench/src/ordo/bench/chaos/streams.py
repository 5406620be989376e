"""Reading what the streams hold, as the admin user: every message of a subject, in order."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from ordo.contracts.envelope import Message
from ordo.contracts.subjects import STREAM_OF_SUBJECT, Subject

M = TypeVar("M", bound=Message)

# Every message this run injects carries it as the prefix of its Nats-Msg-Id.
INJECTED_PREFIX = "chaos-"
FETCH_BATCH = 512
FETCH_TIMEOUT = 2.0


@dataclass(frozen=True)
class StoredMessage:
    sequence: int
    subject: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def injected(self) -> bool:
        """Put there by this run (a duplicate, a replay, an undecodable message)."""
        return self.headers.get("Nats-Msg-Id", "").startswith(INJECTED_PREFIX)


async def read_subject(
    js: JetStreamContext, subject: str, stream: str | None = None
) -> list[StoredMessage]:
    """Every message the stream holds on ``subject`` (wildcards allowed), oldest first."""
    stream = stream or STREAM_OF_SUBJECT[subject]
    info = await js.stream_info(stream)
    if info.state.messages == 0:
        return []
    # An ephemeral consumer that the server forgets once we stop asking; nothing is acked.
    subscription = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            inactive_threshold=30.0,
        ),
    )
    found: list[StoredMessage] = []
    try:
        while True:
            try:
                batch = await subscription.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT)
            except TimeoutError:
                break  # nothing on the subject (any more)
            found.extend(_stored(msg) for msg in batch)
            if batch[-1].metadata.num_pending == 0:
                break
    finally:
        await subscription.unsubscribe()
    return found


def originals(messages: Iterable[StoredMessage], model: type[M]) -> list[M]:
    """The messages the services published, each once: injected copies and undecodable
    messages left out."""
    seen: dict[str, M] = {}
    for stored in messages:
        if stored.injected:
            continue
        try:
            message = model.from_json(stored.data)
        except ValidationError:
            continue
        seen.setdefault(message.message_id, message)
    return list(seen.values())


def stream_of(subject: Subject) -> str:
    return STREAM_OF_SUBJECT[subject]


def headers_of(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (raw or {}).items()}


def _stored(msg: Any) -> StoredMessage:
    return StoredMessage(
        sequence=int(msg.metadata.sequence.stream),
        subject=msg.subject,
        data=msg.data,
        headers=headers_of(msg.headers),
    )
