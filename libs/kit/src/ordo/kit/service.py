"""The service runner: one place that opens connections, starts work and shuts it down cleanly.

A service's ``app.py`` builds a :class:`ServiceKit`, registers its consumers, responders and
periodic jobs on it, and its ``__main__`` hands the builder to :func:`main`.
"""

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from fastapi import FastAPI
from sqlalchemy import MetaData

from ordo.contracts.envelope import Message
from ordo.contracts.subjects import (
    DEAD_LETTER_STREAM,
    STREAM_OF_SUBJECT,
    Service,
    Subject,
    durable_name,
)
from ordo.kit.breaker import Breakers
from ordo.kit.http import HttpServer, ops_app, ops_router
from ordo.kit.logs import get_logger, setup_logging
from ordo.kit.messaging import (
    DeadLetterHandler,
    Handler,
    Messaging,
    ensure_streams,
    make_broker,
)
from ordo.kit.metrics import ConsumerLag, ServiceMetrics
from ordo.kit.migrations import upgrade_async
from ordo.kit.outbox import Outbox
from ordo.kit.settings import ServiceSettings
from ordo.kit.store import Database, MessagingTables
from ordo.kit.supervisor import Supervisor
from ordo.kit.telemetry import setup_tracing

log = get_logger(__name__)
M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)
Hook = Callable[[], Awaitable[None]]


class ServiceKit:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        metadata: MetaData,
        tables: MessagingTables,
        http_app: FastAPI | None = None,
        telemetry: bool = True,
    ) -> None:
        self.service = Service(settings.service_name)
        self.settings = settings
        self.metadata = metadata
        self.metrics = ServiceMetrics()
        self.registry = self.metrics.registry
        self.tracer_provider = (
            setup_tracing(self.service, settings.instance, settings.telemetry)
            if telemetry
            else None
        )
        self.db = Database(settings.effective_database_url)
        self.breakers = Breakers(
            settings.breaker, redis_url=settings.redis_url, registry=self.registry
        )
        self.broker = make_broker(
            self.service,
            settings.nats,
            instance=settings.instance,
            tracer_provider=self.tracer_provider,
            registry=self.registry,
        )
        self.messaging = Messaging(
            self.service, self.broker, settings.nats, self.breakers, self.metrics
        )
        self.consumer_lag = ConsumerLag(self.broker, self.registry)
        self.metrics.measure_on_scrape("consumer-lag", self.consumer_lag.measure)
        self.outbox = Outbox(
            self.db, tables, self.messaging.publish, settings.outbox, registry=self.registry
        )
        self.metrics.measure_on_scrape("outbox-backlog", self.outbox.measure_backlog)
        self.supervisor = Supervisor()
        self.http_app = http_app or ops_app(self.service)
        self.http_app.include_router(
            ops_router(self.metrics.exposition, self.readiness, self.liveness)
        )
        self.http: HttpServer | None = None
        self._periodic: list[tuple[str, float, Callable[[], Awaitable[object]]]] = []
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []

    # -- wiring, called by a service's app.py -------------------------------------------------
    def consume(
        self,
        subject: Subject,
        model: type[M],
        handler: Handler[M],
        *,
        serialize_by: Callable[[M], Hashable] | None = None,
        max_workers: int = 1,
    ) -> None:
        self.messaging.consume(
            subject,
            model,
            handler,
            self.outbox,
            serialize_by=serialize_by,
            max_workers=max_workers,
        )
        self.consumer_lag.watch(STREAM_OF_SUBJECT[subject], durable_name(self.service, subject))

    def consume_dead_letters(self, handler: DeadLetterHandler) -> None:
        self.messaging.consume_dead_letters(handler, self.outbox)
        self.consumer_lag.watch(
            DEAD_LETTER_STREAM, durable_name(self.service, Subject.DEAD_LETTERS)
        )

    def reply(
        self, subject: Subject, model: type[M], responder: Callable[[M], Awaitable[Message]]
    ) -> None:
        self.messaging.reply(subject, model, responder)

    async def request(
        self, message: Message, reply_type: type[R], timeout: float | None = None
    ) -> R:
        return await self.messaging.request(message, reply_type, timeout)

    def every(self, name: str, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        """A periodic job, supervised, started with the service."""
        self._periodic.append((name, seconds, job))

    def on_start(self, hook: Hook) -> None:
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        self._on_stop.append(hook)

    # -- lifecycle -----------------------------------------------------------------------------
    async def migrate(self) -> None:
        await upgrade_async(self.service, self.settings.effective_database_url)

    async def start(self, *, migrate: bool | None = None, serve_http: bool = True) -> None:
        if self.settings.migrate_on_start if migrate is None else migrate:
            await self.migrate()
        await self.breakers.start()
        await self.broker.connect()
        await ensure_streams(self.broker, self.settings.nats.stream_replicas)
        for hook in self._on_start:
            await hook()
        await self.broker.start()
        self.supervisor.every(
            "outbox-sweeper", self.settings.outbox.sweep_interval_seconds, self.outbox.sweep
        )
        self.supervisor.every("outbox-pruner", 600.0, self.outbox.prune)
        for name, seconds, job in self._periodic:
            self.supervisor.every(name, seconds, job)
        if serve_http:
            self.http = HttpServer(self.http_app, self.settings.http.host, self.settings.http.port)
            self.supervisor.start("http", self.http.serve)
        log.info("service started", service=self.service, instance=self.settings.instance)

    async def stop(self) -> None:
        log.info("service stopping", service=self.service)
        if self.http is not None:
            await self.http.stop()
        await self.broker.stop()  # waits for in-flight handlers (graceful timeout)
        await self.outbox.flush_marks()
        for hook in reversed(self._on_stop):
            await hook()
        await self.supervisor.stop()
        await self.db.close()
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
            self.tracer_provider.shutdown()
        log.info("service stopped", service=self.service)

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- health --------------------------------------------------------------------------------
    def liveness(self) -> bool:
        return self.supervisor.healthy

    async def readiness(self) -> dict[str, bool]:
        checks: dict[str, bool] = {}
        checks["nats"] = await self.broker.ping(timeout=1.0)
        try:
            checks["store"] = await asyncio.wait_for(self.db.ping(), timeout=2.0)
        except Exception as exc:
            # Not ready is the answer, not an error of the probe; say why for the operator.
            log.warning("store not ready", error=repr(exc))
            checks["store"] = False
        return checks


def main(build: Callable[[], ServiceKit]) -> None:
    """Entry point of ``python -m ordo.<service> [run|migrate]``."""
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    if command not in {"run", "migrate"}:
        sys.exit(f"usage: python -m ordo.<service> [run|migrate] (got {command!r})")
    kit = build()
    setup_logging(kit.service, kit.settings.log_level, as_json=kit.settings.log_json)
    if command == "migrate":
        asyncio.run(kit.migrate())
        log.info("migrations applied", service=kit.service)
        return
    asyncio.run(kit.run_until_signalled())
