"""Circuit breakers: they open on transient failures only, survive a Redis outage, each change
of a breaker that replicas share is announced once, and each change of a replica's own breaker by
that replica."""

import asyncio
import time
import uuid

import pytest
from purgatory.domain import model as purgatory_model

from ordo.contracts.enums import BreakerState
from ordo.kit.breaker import Breakers, CircuitOpenError
from ordo.kit.embedded import RedisServer, free_port
from ordo.kit.settings import BreakerSettings


class Rejected(Exception):
    """A business error: the dependency answered, and said no."""


async def _fail(error: Exception) -> None:
    raise error


async def test_transient_failures_open_the_breaker_and_calls_stop_being_made() -> None:
    breakers = Breakers(BreakerSettings(failure_threshold=2, recovery_seconds=60))
    await breakers.start()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breakers.call("venue:paper:main", lambda: _fail(ConnectionError("down")))

    calls: list[int] = []

    async def counted() -> None:
        calls.append(1)

    with pytest.raises(CircuitOpenError, match="venue:paper:main"):
        await breakers.call("venue:paper:main", counted)
    assert calls == []


async def test_business_errors_do_not_count_towards_the_breaker() -> None:
    breakers = Breakers(BreakerSettings(failure_threshold=2, recovery_seconds=60))
    await breakers.start()
    for _ in range(5):
        with pytest.raises(Rejected):
            await breakers.call(
                "venue:paper:main", lambda: _fail(Rejected("min notional")), ignore=(Rejected,)
            )

    async def ok() -> str:
        return "placed"

    assert await breakers.call("venue:paper:main", ok) == "placed"


async def test_reads_are_retried_on_transient_failures() -> None:
    breakers = Breakers(BreakerSettings(failure_threshold=10, recovery_seconds=60))
    await breakers.start()
    attempts: list[int] = []

    async def flaky_read() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TimeoutError("slow venue")
        return "snapshot"

    result = await breakers.call(
        "venue:paper:main", flaky_read, retry=lambda e: isinstance(e, TimeoutError)
    )
    assert result == "snapshot"
    assert len(attempts) == 3


async def test_calls_go_on_when_the_shared_breaker_state_in_redis_is_unreachable() -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    breakers = Breakers(
        BreakerSettings(failure_threshold=2, recovery_seconds=60), redis_url=unreachable
    )

    async def publish() -> str:
        return "published"

    assert await breakers.call("nats", publish) == "published"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breakers.call("nats", lambda: _fail(ConnectionError("down")))
    with pytest.raises(CircuitOpenError):  # still protected, by this replica's own state
        await breakers.call("nats", publish)


async def test_a_change_made_by_a_replica_that_never_saw_the_breaker_is_announced() -> None:
    breakers = Breakers(BreakerSettings(failure_threshold=1, recovery_seconds=60))
    await breakers.start()
    changes: list[tuple[str, BreakerState]] = []
    breakers.on_change(lambda name, state: changes.append((name, state)))

    with pytest.raises(ConnectionError):
        await breakers.call("venue:paper:main", lambda: _fail(ConnectionError("down")))

    assert changes == [("venue:paper:main", BreakerState.OPEN)]
    assert await breakers.shared_state("venue:paper:main") is BreakerState.OPEN


class ShiftedTime:
    """purgatory's clock, moved forward by the test (the breaker's recovery time passes)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def time(self) -> float:
        return time.time() + self.shift


async def test_replicas_sharing_a_breaker_announce_each_change_once(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ShiftedTime()
    monkeypatch.setattr(purgatory_model, "time", clock)
    settings = BreakerSettings(failure_threshold=2, recovery_seconds=60)
    replicas = [Breakers(settings, redis_url=redis_server.url) for _ in range(2)]
    announced: list[BreakerState] = []
    for replica in replicas:
        await replica.start()
        replica.on_change(lambda name, state: announced.append(state))
    first, second = replicas
    name = f"venue:paper:{uuid.uuid4().hex}"

    # Each replica fails once: the second failure, counted in Redis, opens the shared breaker.
    for replica in replicas:
        with pytest.raises(ConnectionError):
            await replica.call(name, lambda: _fail(ConnectionError("down")))
    assert announced == [BreakerState.OPEN]
    assert await first.shared_state(name) is BreakerState.OPEN

    # Past the recovery time both replicas probe the venue at once: each half-opens the breaker
    # and closes it, and each of the two changes is announced once.
    clock.shift = 61
    both_inside = asyncio.Barrier(2)

    async def probe() -> str:
        await both_inside.wait()
        return "ok"

    assert await asyncio.gather(*(r.call(name, probe) for r in replicas)) == ["ok", "ok"]
    assert announced == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    assert await second.shared_state(name) is BreakerState.CLOSED


async def test_replicas_announce_each_change_of_their_own_per_replica_breakers(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A per-replica breaker (each replica's NATS connection) is one breaker per replica, even
    # when they share Redis: the second replica's breaker opening is news, though the first's
    # opened a moment before under the same name.
    clock = ShiftedTime()
    monkeypatch.setattr(purgatory_model, "time", clock)
    settings = BreakerSettings(failure_threshold=1, recovery_seconds=60)
    replicas = [Breakers(settings, redis_url=redis_server.url) for _ in range(2)]
    announced: list[list[tuple[str, BreakerState]]] = [[], []]
    for replica, changes in zip(replicas, announced, strict=True):
        await replica.start()
        replica.on_change(lambda name, state, changes=changes: changes.append((name, state)))
    name = f"nats:{uuid.uuid4().hex}"

    for replica in replicas:
        with pytest.raises(ConnectionError):
            await replica.call(name, lambda: _fail(ConnectionError("down")), shared=False)
    assert announced == [[(name, BreakerState.OPEN)], [(name, BreakerState.OPEN)]]
    # Each replica's breaker is its own: Redis holds no state of it.
    assert await replicas[0].shared_state(name) is BreakerState.CLOSED

    clock.shift = 61

    async def publish() -> str:
        return "published"

    for replica in replicas:
        assert await replica.call(name, publish, shared=False) == "published"
    recovered = [
        (name, BreakerState.OPEN),
        (name, BreakerState.HALF_OPEN),
        (name, BreakerState.CLOSED),
    ]
    assert announced == [recovered, recovered]
