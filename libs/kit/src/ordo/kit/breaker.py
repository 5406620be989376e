"""Circuit breakers (purgatory) and retries (tenacity) around every call that leaves the process.

A breaker is named per dependency (``venue:paper:acct-1``, ``nats``). Its state lives in Redis when
a Redis URL is configured, so every replica of a service sees the same state; otherwise in memory.
Only transient failures count: business errors pass through the breaker untouched.

A change of a shared breaker's state is announced to the listeners once for all replicas.
Replicas that share a breaker may each make the same change at the same moment (two calls find it
open past its recovery time, and both half-open it), so the first to claim the change in Redis
(``SET NX``) announces it. The claim lasts a little less than the recovery time: a breaker cannot
come back to a state sooner (every way back leads through open and its recovery), so a later
claim of the same state is a new change. A per-replica breaker (``shared=False``) is a different
breaker on every replica: each announces its own changes, with no claim (another replica's
change of its own breaker of the same name says nothing about this one's).
"""

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast

from prometheus_client import CollectorRegistry, Gauge
from purgatory import AsyncCircuitBreakerFactory, AsyncRedisUnitOfWork
from purgatory.domain.model import OpenedState
from purgatory.service._async.repository import AsyncRedisRepository
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

_ANNOUNCED_PREFIX = "ordo:breaker:announced:"
_CLAIM_SHARE_OF_RECOVERY = 0.9


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
        # purgatory's own client: the claims of announced changes live next to the states.
        self._shared: Any = cast(AsyncRedisRepository, uow.contexts).redis if uow else None
        self._claim_ms = max(1, int(settings.recovery_seconds * _CLAIM_SHARE_OF_RECOVERY * 1000))
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=settings.failure_threshold,
            default_ttl=settings.recovery_seconds,
            uow=uow,
        )
        self._factory.add_listener(self._on_shared_event)
        self._local = AsyncCircuitBreakerFactory(
            default_threshold=settings.failure_threshold, default_ttl=settings.recovery_seconds
        )
        self._local.add_listener(self._on_local_event)
        self._listeners: list[BreakerListener] = []
        # Changes this replica made, announced after the call that made them (the announcement
        # may need Redis): (breaker, state, whether replicas share the breaker).
        self._changes: list[tuple[str, BreakerState, bool]] = []
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
        """Call ``listener`` once per change of a breaker: a shared breaker's change on one
        replica only, a per-replica breaker's on the replica whose breaker changed."""
        self._listeners.append(listener)

    async def shared_state(self, breaker: str) -> BreakerState:
        """The breaker's state as every replica sees it (closed if it was never used)."""
        try:
            async with self._factory.uow as uow:
                context = await uow.contexts.get(breaker)
        except RedisError:
            return self.states.get(breaker, BreakerState.CLOSED)
        if context is None:
            return BreakerState.CLOSED
        return _STATE_NAMES.get(context.state, BreakerState.CLOSED)

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
        finally:
            await self._announce_changes()
        return result  # type: ignore[return-value]

    async def _announce_changes(self) -> None:
        while self._changes:
            name, state, shared = self._changes.pop(0)
            if shared and not await self._first_to_announce(name, state):
                continue
            log.warning("breaker changed", breaker=name, state=state)
            for listener in self._listeners:
                try:
                    listener(name, state)
                except Exception:
                    # A listener's trouble must not turn the call it follows into a failure.
                    log.exception("breaker listener failed", breaker=name, state=state)

    async def _first_to_announce(self, name: str, state: BreakerState) -> bool:
        """Whether this replica claimed the change first (another replica may have made it too)."""
        if self._shared is None:
            return True
        try:
            claimed = await self._shared.set(
                f"{_ANNOUNCED_PREFIX}{name}:{state.value}", "1", nx=True, px=self._claim_ms
            )
        except RedisError:
            # Better announced twice (by two replicas) than never.
            log.warning("breaker change not deduplicated: Redis unavailable", breaker=name)
            return True
        return bool(claimed)

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

    def _on_shared_event(self, name: str, event_name: str, event: Any) -> None:
        self._on_event(name, event_name, event, shared=True)

    def _on_local_event(self, name: str, event_name: str, event: Any) -> None:
        # This replica's own breakers, and a shared one's stand-in while Redis is unreachable
        # (then no claim can be made anyway: better announced by each replica than by none).
        self._on_event(name, event_name, event, shared=False)

    def _on_event(self, name: str, event_name: str, event: Any, *, shared: bool) -> None:
        if event_name not in {"state_changed", "circuit_breaker_created"}:
            return
        state = _STATE_NAMES.get(getattr(event, "state", "closed"), BreakerState.CLOSED)
        self.states[name] = state
        self._gauge.labels(breaker=name).set(_STATE_VALUES[state])
        # Every state_changed is a transition this replica made of the breaker's state (another
        # replica's changes of a shared one raise no event here), whatever it last saw of it.
        if event_name == "state_changed":
            self._changes.append((name, state, shared))
