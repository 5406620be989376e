"""NATS JetStream through FastStream, with Ordo's delivery policy.

- Streams come from the contracts (:data:`ordo.contracts.subjects.STREAMS`) and are ensured at
  start-up: created when missing, updated when their subjects changed.
- Every consumer is a durable pull consumer shared by all replicas of a service, with explicit
  (manual) acks: success acks; a failure is negatively acknowledged with a back-off delay; the last
  allowed attempt goes to the dead-letter stream and is acknowledged there. A handler error never
  silently terminates a message (FastStream's NATS default would).
- Every publish and request goes through the ``nats`` circuit breaker.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from faststream.middlewares import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.prometheus import NatsPrometheusMiddleware
from faststream.security import SASLPlaintext
from nats.errors import Error as NatsError
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from structlog.contextvars import bound_contextvars

from ordo.contracts.envelope import Message
from ordo.contracts.subjects import (
    DEAD_LETTER_STREAM,
    REPLIES,
    STREAM_OF_SUBJECT,
    STREAMS,
    Service,
    StreamSpec,
    Subject,
    dead_letter_subject,
    durable_name,
    subject_of,
)
from ordo.kit.breaker import Breakers
from ordo.kit.keyed_locks import KeyedLocks
from ordo.kit.logs import get_logger
from ordo.kit.metrics import DeliveryOutcome, ServiceMetrics
from ordo.kit.outbox import Outbox, OutgoingMessage, Transaction
from ordo.kit.settings import NatsSettings
from ordo.kit.store import ConcurrentUpdate

log = get_logger(__name__)
M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)

NATS_BREAKER = "nats"


def request_breaker(subject: str) -> str:
    # A slow responder is that service's problem, not NATS's: its requests get their own breaker
    # so that they never hold up this service's publishing.
    return f"nats-request:{subject}"


Handler = Callable[[M, Transaction], Awaitable[None]]


class PoisonMessage(Exception):
    """A message that can never succeed (it does not decode): dead-letter it at once."""


def make_broker(
    service: Service,
    settings: NatsSettings,
    *,
    instance: str,
    tracer_provider: TracerProvider | None,
    registry: CollectorRegistry,
) -> NatsBroker:
    security = None
    if settings.user:
        password = settings.password.get_secret_value() if settings.password else ""
        security = SASLPlaintext(username=settings.user, password=password)
    return NatsBroker(
        servers=settings.url,
        name=f"ordo-{service}-{instance}",
        security=security,
        connect_timeout=int(settings.connect_timeout_seconds),
        max_reconnect_attempts=-1,  # a service outlives a NATS restart
        reconnect_time_wait=1,
        graceful_timeout=15.0,
        # FastStream's own lines go through the service's JSON logs; its per-message access
        # lines only at DEBUG.
        logger=logging.getLogger(f"ordo.{service}.broker"),
        log_level=logging.DEBUG,
        middlewares=[
            NatsTelemetryMiddleware(tracer_provider=tracer_provider),
            NatsPrometheusMiddleware(
                registry=registry, app_name=f"ordo-{service}", metrics_prefix="ordo"
            ),
        ],
    )


def stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=spec.max_age_seconds,
        duplicate_window=spec.duplicate_window_seconds,
        num_replicas=replicas,
    )


async def ensure_streams(broker: NatsBroker, replicas: int = 1) -> None:
    """Create the streams that are missing and bring changed ones up to date."""
    js = broker.config.connection_state.stream
    for spec in STREAMS:
        wanted = stream_config(spec, replicas)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(config=wanted)
            log.info("stream created", stream=spec.name)
            continue
        if sorted(info.config.subjects or []) != sorted(wanted.subjects or []):
            await js.update_stream(config=wanted)
            log.info("stream updated", stream=spec.name)


class Messaging:
    """A service's view of NATS: publish through the breaker, consume with the delivery policy."""

    def __init__(
        self,
        service: Service,
        broker: NatsBroker,
        settings: NatsSettings,
        breakers: Breakers,
        metrics: ServiceMetrics,
    ) -> None:
        self.service = service
        self.broker = broker
        self.settings = settings
        self.breakers = breakers
        self.metrics = metrics
        self._locks = KeyedLocks()

    async def publish(self, outgoing: OutgoingMessage) -> None:
        headers = {**outgoing.headers, "Nats-Msg-Id": outgoing.message_id}

        async def send() -> None:
            await self.broker.publish(
                outgoing.payload,
                outgoing.subject,
                headers=headers,
                correlation_id=outgoing.correlation_id,
                stream=outgoing.stream,
                timeout=5.0,
            )

        await self.breakers.call(NATS_BREAKER, send, ignore=(), shared=False)

    async def request(
        self, message: Message, reply_type: type[R], timeout: float | None = None
    ) -> R:
        """Core NATS request/reply (queries, snapshots), through the breaker."""
        expected = REPLIES.get(type(message))
        if expected is not reply_type:
            raise TypeError(f"{type(message).__name__} is answered by {expected}, not {reply_type}")

        async def ask() -> NatsMessage:
            return await self.broker.request(
                message.to_json(),
                str(subject_of(message)),
                correlation_id=message.correlation_id,
                timeout=timeout or self.settings.request_timeout_seconds,
            )

        response = await self.breakers.call(
            request_breaker(subject_of(message)), ask, ignore=(), shared=False
        )
        return reply_type.from_json(response.body)

    def consume(
        self,
        subject: Subject,
        model: type[M],
        handler: Handler[M],
        outbox: Outbox,
        *,
        max_workers: int = 1,
        serialize_by: Callable[[M], Hashable] | None = None,
    ) -> None:
        """Subscribe ``handler`` to ``subject`` on this service's durable consumer.

        ``serialize_by`` names the aggregate a message changes (an account, say): the handlers of
        every subject given the same key take turns in this replica (see ``KeyedLocks``).
        ``max_workers`` above 1 handles that many of the subject's messages at once: one's
        transaction overlaps another's publish and ack. Give it only with ``serialize_by`` (or to
        a handler that is safe in any order, as it must be across replicas anyway).
        """
        durable = durable_name(self.service, subject)
        settings = self.settings
        ack_wait = settings.ack_wait_seconds
        subscriber = self.broker.subscriber(
            str(subject),
            stream=JStream(STREAM_OF_SUBJECT[subject], declare=False),
            durable=durable,
            # Each idle fetch lingers up to this long at the server; new messages end it at
            # once, so a longer wait only means fewer empty round trips.
            pull_sub=PullSub(batch_size=settings.fetch_batch, timeout=5.0),
            config=ConsumerConfig(
                ack_wait=ack_wait,
                # A hard bound under the handler's own policy (which dead-letters earlier), so
                # that even a message that crashes the process every time stops coming back.
                max_deliver=settings.max_deliver + 2,
                max_ack_pending=max(settings.fetch_batch * 4, 64),
            ),
            ack_policy=AckPolicy.MANUAL,
            max_workers=max_workers,
            title=f"{self.service}:{subject}",
            description=f"{model.__name__} ({model.schema_id()})",
        )

        async def on_message(msg: NatsMessage) -> None:
            await self._deliver(msg, subject, durable, model, handler, outbox, serialize_by)

        subscriber(on_message)

    async def _deliver(
        self,
        msg: NatsMessage,
        subject: Subject,
        durable: str,
        model: type[M],
        handler: Handler[M],
        outbox: Outbox,
        serialize_by: Callable[[M], Hashable] | None,
    ) -> None:
        attempt = _delivery_attempt(msg)
        try:
            if attempt > self.settings.max_deliver:
                raise PoisonMessage(
                    f"delivered {attempt} times, more than max_deliver "
                    f"{self.settings.max_deliver} (it may crash the process)"
                )
            try:
                message = model.from_json(msg.body)
            except ValidationError as exc:
                raise PoisonMessage(f"does not decode as {model.schema_id()}: {exc}") from exc
            # Every log line of the handler carries the flow's ids.
            with bound_contextvars(
                correlation_id=message.correlation_id,
                message_id=message.message_id,
                subject=str(subject),
            ):
                key = serialize_by(message) if serialize_by else None
                await _run_unit_of_work(
                    message,
                    durable,
                    handler,
                    outbox,
                    self._locks,
                    key,
                    last_attempt=attempt >= self.settings.max_deliver,
                )
        except asyncio.CancelledError:
            await msg.nack(delay=1.0)  # shutting down mid-message: let another replica have it
            raise
        except PoisonMessage as exc:
            await self._dead_letter(msg, subject, attempt, exc)
        except Exception as exc:
            if attempt >= self.settings.max_deliver:
                await self._dead_letter(msg, subject, attempt, exc)
                return
            delay = _backoff(self.settings.backoff_seconds, attempt)
            log.warning(
                "handler failed; will retry",
                subject=subject,
                attempt=attempt,
                retry_in=delay,
                error=repr(exc),
                exc_info=True,
            )
            self.metrics.failed(subject, DeliveryOutcome.RETRY)
            await msg.nack(delay=delay)
        else:
            await msg.ack()

    async def _dead_letter(
        self, msg: NatsMessage, subject: Subject, attempt: int, exc: BaseException
    ) -> None:
        target = dead_letter_subject(self.service, subject)
        headers = {
            "Ordo-Original-Subject": str(subject),
            "Ordo-Consumer": durable_name(self.service, subject),
            "Ordo-Attempts": str(attempt),
            "Ordo-Error": f"{type(exc).__name__}: {exc}"[:1000],
            "Nats-Msg-Id": _dead_letter_id(self.service, msg),
        }
        log.error(
            "message dead-lettered",
            subject=subject,
            dead_letter_subject=target,
            attempts=attempt,
            error=headers["Ordo-Error"],
        )
        try:
            await self.broker.publish(
                msg.body, target, headers=headers, stream=DEAD_LETTER_STREAM, timeout=5.0
            )
        except (NatsError, TimeoutError) as publish_error:
            log.error(
                "dead-letter publish failed; message will be redelivered", error=repr(publish_error)
            )
            self.metrics.failed(subject, DeliveryOutcome.RETRY)
            await msg.nack(delay=5.0)
            return
        self.metrics.failed(subject, DeliveryOutcome.DEAD_LETTER)
        await msg.ack()

    def consume_dead_letters(self, handler: "DeadLetterHandler", outbox: Outbox) -> None:
        """Subscribe ``handler`` to every dead letter (the notifier raises the alerts).

        A dead letter that cannot be handled is never dead-lettered again (that would loop):
        after the last attempt it is logged and left in the stream, where it stays for replay.
        """
        durable = durable_name(self.service, Subject.DEAD_LETTERS)
        subscriber = self.broker.subscriber(
            str(Subject.DEAD_LETTERS),
            stream=JStream(DEAD_LETTER_STREAM, declare=False),
            durable=durable,
            pull_sub=PullSub(batch_size=self.settings.fetch_batch, timeout=5.0),
            config=ConsumerConfig(
                ack_wait=self.settings.ack_wait_seconds, max_deliver=self.settings.max_deliver + 2
            ),
            ack_policy=AckPolicy.MANUAL,
            title=f"{self.service}:{Subject.DEAD_LETTERS}",
            description="Every message a service gave up on",
        )

        async def on_dead_letter(msg: NatsMessage) -> None:
            letter = DeadLetter.of(msg)
            attempt = _delivery_attempt(msg)
            try:
                async with outbox.consuming(durable, letter.dead_letter_id) as tx:
                    if not tx.duplicate:
                        await handler(letter, tx)
            except Exception:
                if attempt >= self.settings.max_deliver:
                    log.exception(
                        "dead letter not handled; it stays in the stream",
                        dead_letter_id=letter.dead_letter_id,
                        subject=letter.subject,
                    )
                    self.metrics.failed(Subject.DEAD_LETTERS, DeliveryOutcome.GIVEN_UP)
                    await msg.ack()
                    return
                self.metrics.failed(Subject.DEAD_LETTERS, DeliveryOutcome.RETRY)
                await msg.nack(delay=_backoff(self.settings.backoff_seconds, attempt))
            else:
                await msg.ack()

        subscriber(on_dead_letter)

    def reply(
        self, subject: Subject, model: type[M], responder: Callable[[M], Awaitable[Message]]
    ) -> None:
        """Answer core NATS requests on ``subject``; replicas share the work (queue group)."""
        subscriber = self.broker.subscriber(
            str(subject), queue=f"ordo-{self.service}", title=f"{self.service}:{subject}"
        )

        async def on_request(msg: NatsMessage) -> Any:
            request = model.from_json(msg.body)
            response = await responder(request)
            return response.to_json()

        subscriber(on_request)


@dataclass(frozen=True)
class DeadLetter:
    """A message a service gave up on, as the dead-letter stream keeps it (for replay)."""

    dead_letter_id: str
    subject: str  # dlq.<service>.<original subject>
    service: str
    original_subject: str
    consumer: str
    attempts: int
    error: str
    body: bytes

    @classmethod
    def of(cls, msg: NatsMessage) -> "DeadLetter":
        headers = msg.headers or {}
        subject = msg.raw_message.subject
        service = subject.split(".")[1] if subject.count(".") >= 2 else "unknown"
        sequence = _stream_sequence(msg)
        return cls(
            dead_letter_id=headers.get("Nats-Msg-Id") or f"{subject}:{sequence}",
            subject=subject,
            service=service,
            original_subject=headers.get("Ordo-Original-Subject", "unknown"),
            consumer=headers.get("Ordo-Consumer", "unknown"),
            attempts=int(headers.get("Ordo-Attempts", "0") or 0),
            error=headers.get("Ordo-Error", "unknown"),
            body=msg.body,
        )


DeadLetterHandler = Callable[[DeadLetter, Transaction], Awaitable[None]]

CONFLICT_RETRIES = 5


async def _run_unit_of_work(
    message: M,
    durable: str,
    handler: Handler[M],
    outbox: Outbox,
    locks: KeyedLocks | None = None,
    key: Hashable | None = None,
    *,
    last_attempt: bool = False,
) -> None:
    """The handler in one unit of work; a lost optimistic-concurrency race runs it again.

    Conflicts are expected when handlers of one order race (an approval and a fill report, or two
    replicas): they are retried here, on fresh data, instead of spending the message's delivery
    attempts, which are kept for real failures.
    """
    for conflict in range(1, CONFLICT_RETRIES + 1):
        try:
            serial = locks.hold(key) if locks is not None and key is not None else None
            async with outbox.consuming(
                durable, message.message_id, serial=serial, last_attempt=last_attempt
            ) as tx:
                if tx.duplicate:
                    log.info("duplicate delivery acknowledged", message_id=message.message_id)
                else:
                    await handler(message, tx)
            return
        except ConcurrentUpdate as conflict_error:
            if conflict == CONFLICT_RETRIES:
                raise
            log.info(
                "concurrent update; running the unit of work again",
                conflict=conflict,
                error=str(conflict_error),
            )
            await asyncio.sleep(random.uniform(0.002, 0.02) * conflict)


def _delivery_attempt(msg: NatsMessage) -> int:
    try:
        return int(msg.raw_message.metadata.num_delivered)
    except (AttributeError, TypeError, ValueError, NatsError):
        return 1  # FastStream's in-memory test broker carries no JetStream metadata


def _dead_letter_id(service: Service, msg: NatsMessage) -> str:
    """The dead letter's ``Nats-Msg-Id``: the same for a redelivery of the message (JetStream
    keeps one dead letter), different for every other message. A stream sequence alone is not
    enough: a service consumes several streams, each numbering its messages from 1, and
    JetStream would silently drop the second of two dead letters with the same id."""
    sequence = _stream_sequence(msg)
    if sequence is None:
        return f"dlq-{service}-{msg.message_id}"
    return f"dlq-{service}-{msg.raw_message.metadata.stream}-{sequence}"


def _stream_sequence(msg: NatsMessage) -> int | None:
    try:
        return int(msg.raw_message.metadata.sequence.stream)
    except (AttributeError, TypeError, ValueError, NatsError):
        return None


def _backoff(schedule: tuple[float, ...], attempt: int) -> float:
    if not schedule:
        return 1.0
    return schedule[min(attempt - 1, len(schedule) - 1)]
