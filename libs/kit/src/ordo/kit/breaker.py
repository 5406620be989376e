"""Circuit breakers (purgatory) and retries (tenacity) around every call that leaves the process.

A breaker is named per dependency (``venue:paper:acct-1``, ``nats``). Its state lives in Redis when
a Redis URL is configured, so every replica of a service sees the same state; otherwise in memory.
Only transient failures count: business errors pass through the breaker untouched.
"""

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Gauge
from purgatory import AsyncCircuitBreakerFactory, AsyncRedisUnitOfWork
from purgatory.domain.model import OpenedState
from redis.exceptions import RedisError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ordo.contracts.enums import BreakerState
from ordo.kit.logs import get_logger
from ordo.kit.settings import BreakerSettings

T = TypeVar("T")
log = get_logger(__name__)

_STATE_NAMES = {
    "closed": BreakerState.CLOSED,
    "opened": BreakerState.OPEN,
    "half-opened": BreakerState.HALF_OPEN,
}
_STATE_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}

BreakerListener = Callable[[str, BreakerState], None]


class CircuitOpenError(Exception):
    """The breaker is open: the dependency is failing, so the call was not even tried."""

    def __init__(self, breaker: str) -> None:
        super().__init__(f"circuit breaker {breaker!r} is open: the call was not attempted")
        self.breaker = breaker


class Breakers:
    def __init__(
        self,
        settings: BreakerSettings,
        *,
        redis_url: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        uow = AsyncRedisUnitOfWork(redis_url) if redis_url else None
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=settings.failure_threshold,
            default_ttl=settings.recovery_seconds,
            uow=uow,
        )
        self._factory.add_listener(self._on_event)
        self._local = AsyncCircuitBreakerFactory(
            default_threshold=settings.failure_threshold, default_ttl=settings.recovery_seconds
        )
        self._local.add_listener(self._on_event)
        self._listeners: list[BreakerListener] = []
        self.states: dict[str, BreakerState] = {}
        self._gauge = Gauge(
            "ordo_breaker_state",
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            ["breaker"],
            registry=registry,
        )

    async def start(self) -> None:
        await self._factory.initialize()

    def on_change(self, listener: BreakerListener) -> None:
        self._listeners.append(listener)

    async def call(
        self,
        breaker: str,
        operation: Callable[[], Awaitable[T]],
        *,
        ignore: Iterable[type[BaseException]] = (),
        retry: Callable[[BaseException], bool] | None = None,
        attempts: int = 3,
        shared: bool = True,
    ) -> T:
        """Run ``operation`` through the named breaker.

        ``ignore`` lists exceptions that do not count as failures (business errors). ``retry``,
        when given, decides which failures are retried: give it for reads only; order creation is
        never retried blindly. ``shared=False`` keeps the breaker's state in this replica: for a
        dependency each replica reaches on its own (its NATS connection), where another replica's
        failures say nothing and a Redis round trip per call would be pure cost.
        """
        if retry is None:
            return await self._once(breaker, operation, tuple(ignore), shared)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1),
            retry=retry_if_exception(
                lambda exc: not isinstance(exc, CircuitOpenError) and retry(exc)
            ),
            reraise=True,
        ):
            with attempt:
                return await self._once(breaker, operation, tuple(ignore), shared)
        raise AssertionError("unreachable: tenacity reraises the last failure")

    async def _once(
        self,
        breaker: str,
        operation: Callable[[], Awaitable[T]],
        ignore: tuple[type[BaseException], ...],
        shared: bool,
    ) -> T:
        brk = (
            await self._get(breaker, ignore)
            if shared
            else await self._local.get_breaker(breaker, exclude=list(ignore))
        )
        done, result = False, None
        try:
            async with brk:
                result = await operation()
                done = True
        except OpenedState as exc:
            raise CircuitOpenError(breaker) from exc
        except RedisError:
            if not done:
                raise
            # The call succeeded; only recording the breaker's state failed. Reporting a
            # failure now would make the caller redo (or doubt) work that is done.
            log.warning("breaker state not recorded: Redis unavailable", breaker=breaker)
        return result  # type: ignore[return-value]

    async def _get(self, breaker: str, ignore: tuple[type[BaseException], ...]) -> Any:
        try:
            return await self._factory.get_breaker(breaker, exclude=list(ignore))
        except RedisError:
            # Shared state is unreachable: protect this replica on its own rather than stop
            # every call (every NATS publish goes through a breaker).
            log.warning(
                "breaker state unavailable: Redis unreachable; using this replica's own",
                breaker=breaker,
            )
            return await self._local.get_breaker(breaker, exclude=list(ignore))

    def _on_event(self, name: str, event_name: str, event: Any) -> None:
        if event_name not in {"state_changed", "circuit_breaker_created"}:
            return
        state = _STATE_NAMES.get(getattr(event, "state", "closed"), BreakerState.CLOSED)
        previous = self.states.get(name)
        self.states[name] = state
        self._gauge.labels(breaker=name).set(_STATE_VALUES[state])
        if previous is not None and previous != state:
            log.warning("breaker changed", breaker=name, state=state, previous=previous)
            for listener in self._listeners:
                listener(name, state)
