"""The order-rate window shared by replicas: in Redis (atomic admission) and in the risk store."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from risk_factories import order
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.orders import OrderSpec
from ordo.kit.embedded import RedisServer, free_port
from ordo.kit.store import Database
from ordo.risk import store
from ordo.risk.domain.checks import DenialCode, OrderCounts
from ordo.risk.domain.limits import AccountLimits
from ordo.risk.rate import OrderRate, RedisOrderRate, StoreOrderRate

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LIMITS = AccountLimits.model_validate(
    {
        "default": {
            "order_rate_window_seconds": 60,
            "max_orders_per_account": 3,
            "max_orders_per_strategy": 2,
        },
        "strategies": {"scalp": {"max_orders_per_strategy": 3}},
    }
)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}")
    await db.create_all(store.metadata)
    async with db.session() as opened:
        yield opened
    await db.close()


def orders(count: int, strategy: str = "trend") -> list[OrderSpec]:
    return [order(strategy=strategy) for _ in range(count)]


async def test_replicas_share_the_window_and_the_second_cannot_overfill_it(
    redis: Redis, session: AsyncSession
) -> None:
    replica_a, replica_b = RedisOrderRate(redis), RedisOrderRate(redis)
    first, second = orders(1), orders(1, strategy="scalp") + orders(1, strategy="scalp")

    assert await replica_a.admit(session, first, LIMITS, NOW) is None
    # Both replicas read 1 in the window; only one of the next two proposals fits.
    third = orders(1)
    assert await replica_b.recent(session, third, LIMITS, NOW) == OrderCounts(
        account=1, by_strategy={"trend": 1}
    )
    assert await replica_b.admit(session, second, LIMITS, NOW) is None
    refused = await replica_a.admit(session, third, LIMITS, NOW)

    assert refused is not None
    assert refused.code == DenialCode.ORDER_RATE_ACCOUNT
    assert (refused.limit, refused.actual) == (3, 4)
    # Nothing of a refused proposal is counted.
    assert (await replica_a.recent(session, orders(1), LIMITS, NOW)).account == 3


async def test_a_strategy_window_refuses_with_its_own_limit(
    redis: Redis, session: AsyncSession
) -> None:
    rate = RedisOrderRate(redis)
    assert await rate.admit(session, orders(2), LIMITS, NOW) is None

    refused = await rate.admit(session, orders(1), LIMITS, NOW)

    assert refused is not None
    assert refused.code == DenialCode.ORDER_RATE_STRATEGY
    assert (refused.limit, refused.actual) == (2, 3)


async def test_orders_admitted_again_after_a_retry_count_once(
    redis: Redis, session: AsyncSession
) -> None:
    rate = RedisOrderRate(redis)
    retried = orders(2)

    assert await rate.admit(session, retried, LIMITS, NOW) is None
    # The decision is retried (its transaction failed after Redis counted it): it does not
    # find its own orders in the window, and admitting them again counts nothing twice.
    again = await rate.recent(session, retried, LIMITS, NOW)
    assert await rate.admit(session, retried, LIMITS, NOW) is None

    assert (again.account, again.by_strategy) == (0, {"trend": 0})
    assert (await rate.recent(session, orders(1), LIMITS, NOW)).account == 2


@pytest.mark.parametrize("kind", ["redis", "store"])
async def test_orders_leave_the_window_once_it_has_passed(
    kind: str, redis: Redis, session: AsyncSession
) -> None:
    rate: OrderRate = RedisOrderRate(redis) if kind == "redis" else StoreOrderRate()
    await rate.admit(session, orders(2), LIMITS, NOW)

    later = orders(1)
    within = await rate.recent(session, later, LIMITS, NOW + timedelta(seconds=59))
    after = await rate.recent(session, later, LIMITS, NOW + timedelta(seconds=60))

    assert (within.account, within.by_strategy) == (2, {"trend": 2})
    assert after.account == 0


async def test_an_unreachable_redis_falls_back_to_the_store_and_says_so(
    session: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5, socket_timeout=0.5
    )
    rate = RedisOrderRate(unreachable)

    assert await rate.admit(session, orders(2), LIMITS, NOW) is None
    counted = await rate.recent(session, orders(1), LIMITS, NOW)
    await unreachable.aclose()

    assert (counted.account, counted.by_strategy) == (2, {"trend": 2})
    assert "Redis is unavailable" in capsys.readouterr().out
