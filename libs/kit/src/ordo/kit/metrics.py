"""Prometheus metrics: what every service exports on ``/metrics``, and how shared state is measured.

Every service (names as Prometheus shows them; Prometheus adds the ``service`` target label):

- FastStream's middleware (:func:`ordo.kit.messaging.make_broker`), per subject in the ``handler``
  label: messages received (``ordo_received_messages_total``), processed by ack status
  (``ordo_received_processed_messages_total{status="acked"|"nacked"|...}``), and the handler
  latency histogram (``ordo_received_processed_messages_duration_seconds``); per ``destination``:
  messages published (``ordo_published_messages_total{status}``) and the publish latency.
- ``ordo_messages_failed_total{subject, outcome}`` (here): a handler failed, and the message was
  retried later (``retry``), moved to the dead-letter stream after its last attempt
  (``dead_letter``), or, for the dead-letter consumer itself, left unhandled (``given_up``).
  FastStream cannot see these: the kit's delivery policy catches every handler error, and a
  dead-lettered message is acknowledged.
- ``ordo_consumer_pending_messages`` and ``ordo_consumer_ack_pending_messages`` ``{stream,
  consumer}`` (here): each durable consumer's lag, not yet delivered and delivered but not yet
  acknowledged, from JetStream's consumer info.
- ``ordo_outbox_backlog`` (:mod:`ordo.kit.outbox`): messages committed and not yet published;
  ``ordo_breaker_state{breaker}`` (:mod:`ordo.kit.breaker`): 0 closed, 1 half-open, 2 open.
- A service's own, registered on ``kit.registry``: ``ordo_orders{status}`` (the OMS),
  ``ordo_risk_denials_total{reason}`` (the risk gate).

Gauges of shared state (consumer lag, the outbox backlog, counts in a store) are measured when
Prometheus scrapes (:meth:`ServiceMetrics.measure_on_scrape`): never older than the scrape, and
no work when nobody looks. Every replica of a service reports the same shared numbers, so
dashboards aggregate them with ``max``, not ``sum``.
"""

import asyncio
from collections.abc import Awaitable, Callable
from enum import StrEnum

from faststream.nats import NatsBroker
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.kit.logs import get_logger

log = get_logger(__name__)

Measure = Callable[[], Awaitable[object]]

# A measurement that has not answered by then is skipped: its gauges keep their last values
# and the scrape is served well within Prometheus's scrape timeout (10 s by default).
MEASURE_TIMEOUT_SECONDS = 3.0


class DeliveryOutcome(StrEnum):
    """What became of a message whose handler failed."""

    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    GIVEN_UP = "given_up"


class ServiceMetrics:
    """A service's registry, the failures of its handlers, and the measurements run per scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._failed = Counter(
            "ordo_messages_failed",
            "Messages whose handler failed, by subject and by what became of the message",
            ["subject", "outcome"],
            registry=self.registry,
        )
        self._measures: dict[str, Measure] = {}

    def failed(self, subject: str, outcome: DeliveryOutcome) -> None:
        self._failed.labels(subject=subject, outcome=outcome.value).inc()

    def measure_on_scrape(self, name: str, measure: Measure) -> None:
        """Run ``measure`` (which sets gauges) before each scrape is rendered."""
        self._measures[name] = measure

    async def exposition(self) -> bytes:
        """The text Prometheus scrapes, measured now."""
        names = list(self._measures)
        results = await asyncio.gather(
            *(asyncio.wait_for(self._measures[name](), MEASURE_TIMEOUT_SECONDS) for name in names),
            return_exceptions=True,
        )
        for name, result in zip(names, results, strict=True):
            if isinstance(result, Exception):
                log.warning(
                    "metric not measured; serving its last value", measure=name, error=repr(result)
                )
        return generate_latest(self.registry)


class ConsumerLag:
    """The lag of a service's durable consumers, as JetStream counts it (shared by all replicas)."""

    def __init__(self, broker: NatsBroker, registry: CollectorRegistry) -> None:
        self._broker = broker
        self._consumers: list[tuple[str, str]] = []
        labels = ["stream", "consumer"]
        self._pending = Gauge(
            "ordo_consumer_pending_messages",
            "Messages of the stream the durable consumer has not delivered yet",
            labels,
            registry=registry,
        )
        self._ack_pending = Gauge(
            "ordo_consumer_ack_pending_messages",
            "Messages the durable consumer delivered that are not acknowledged yet",
            labels,
            registry=registry,
        )

    def watch(self, stream: str, consumer: str) -> None:
        self._consumers.append((stream, consumer))

    async def measure(self) -> None:
        js = self._broker.config.connection_state.stream
        for stream, consumer in self._consumers:
            try:
                info = await js.consumer_info(stream, consumer)
            except NotFoundError:
                continue  # created when the service starts consuming
            self._pending.labels(stream=stream, consumer=consumer).set(info.num_pending or 0)
            self._ack_pending.labels(stream=stream, consumer=consumer).set(
                info.num_ack_pending or 0
            )


def count_when_committed(session: AsyncSession, *counters: Counter) -> None:
    """Increment each of ``counters`` once the session's transaction commits.

    Not when it rolls back, and once only when the kit runs a unit of work again after a lost
    race (that run has a session of its own): the count matches what the store holds.
    """

    def increment(_session: object) -> None:
        for counter in counters:
            counter.inc()

    event.listen(session.sync_session, "after_commit", increment, once=True)
