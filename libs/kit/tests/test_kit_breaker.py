"""Circuit breakers: they open on transient failures only, and survive a Redis outage."""

import pytest

from ordo.kit.breaker import Breakers, CircuitOpenError
from ordo.kit.embedded import free_port
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
