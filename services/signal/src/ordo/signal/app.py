"""Wiring of the signal service: HTTP intake, the SubmitSignal consumer, Redis when configured."""

from datetime import timedelta

from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from redis.asyncio import Redis

from ordo.contracts.signals import SubmitSignal
from ordo.contracts.subjects import Subject
from ordo.kit.service import ServiceKit
from ordo.signal import store
from ordo.signal.config import SignalSettings
from ordo.signal.guards import (
    DedupeCache,
    LocalRateLimiter,
    NoDedupeCache,
    RateLimiter,
    RedisDedupeCache,
    RedisRateLimiter,
)
from ordo.signal.handlers import submit_signal_handler
from ordo.signal.http import HttpIntake, add_intake_routes, new_app
from ordo.signal.intake import Intake

REJECTION_PRUNE_INTERVAL_SECONDS = 3600.0
# Redis is a fast path only: a slow Redis must not hold up an intake that works without it.
REDIS_TIMEOUT_SECONDS = 0.5


def build(settings: SignalSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or SignalSettings()
    app = new_app()
    kit = ServiceKit(
        settings,
        metadata=store.metadata,
        tables=store.messaging,
        http_app=app,
        telemetry=telemetry,
    )
    cache: DedupeCache = NoDedupeCache()
    limiter: RateLimiter = LocalRateLimiter(settings.rate_limit_per_minute)
    if settings.redis_url:
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        cache = RedisDedupeCache(redis)
        limiter = RedisRateLimiter(redis, settings.rate_limit_per_minute)
        kit.on_stop(redis.aclose)
    intake = Intake(
        kit.outbox,
        kit.db,
        cache,
        dedupe_window=timedelta(seconds=settings.dedupe_window_seconds),
        rejection_retention=timedelta(days=settings.rejection_retention_days),
    )

    add_intake_routes(app, HttpIntake(settings, intake, limiter))
    # The trace of a signal starts at the webhook call; the outbox carries it on to NATS.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=kit.tracer_provider, excluded_urls="/healthz,/readyz,/metrics"
    )
    kit.consume(
        Subject.SIGNAL_SUBMIT, SubmitSignal, submit_signal_handler(intake, settings.markets)
    )
    kit.every("rejection-pruner", REJECTION_PRUNE_INTERVAL_SECONDS, intake.prune_rejections)
    return kit
