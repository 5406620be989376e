"""The rate limit, the address allow-list and the dedupe cache, in this process and in Redis."""

import ipaddress
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ordo.kit.embedded import RedisServer, free_port
from ordo.signal.guards import (
    AddressAllowList,
    LocalRateLimiter,
    RedisDedupeCache,
    RedisRateLimiter,
    rate_limit_client,
)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_each_client_gets_its_own_budget_per_minute() -> None:
    clock = Clock(60 * 1000)
    limiter = LocalRateLimiter(2, clock=clock)

    calls = [await limiter.allow("10.0.0.1") for _ in range(3)]
    other = await limiter.allow("10.0.0.2")
    clock.now += 60
    next_minute = await limiter.allow("10.0.0.1")

    assert calls == [True, True, False]
    assert other
    assert next_minute


async def test_the_in_process_counter_stays_bounded() -> None:
    limiter = LocalRateLimiter(10, clock=Clock(), max_clients=2)

    assert await limiter.allow("a")
    assert await limiter.allow("b")
    assert not await limiter.allow("c")
    assert await limiter.allow("a")


def test_retry_after_is_the_rest_of_the_minute() -> None:
    assert LocalRateLimiter(1, clock=Clock(60 * 1000 + 45)).retry_after() == 15


def test_the_allow_list_takes_addresses_and_networks() -> None:
    allow = AddressAllowList(
        (ipaddress.ip_network("52.89.214.238"), ipaddress.ip_network("10.0.0.0/8"))
    )

    assert allow.allows("52.89.214.238")
    assert allow.allows("10.1.2.3")
    assert not allow.allows("52.89.214.239")
    assert not allow.allows("not-an-address")
    assert not allow.allows(None)
    assert AddressAllowList(()).allows(None)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    yield client
    await client.aclose()


async def test_replicas_share_the_rate_limit_through_redis(redis: Redis) -> None:
    clock = Clock(60 * 2000)
    replica_a = RedisRateLimiter(redis, 2, clock=clock)
    replica_b = RedisRateLimiter(redis, 2, clock=clock)

    assert await replica_a.allow("10.0.0.1")
    assert await replica_b.allow("10.0.0.1")
    assert not await replica_a.allow("10.0.0.1")


async def test_the_dedupe_cache_keeps_the_first_holder(redis: Redis) -> None:
    cache = RedisDedupeCache(redis)

    await cache.remember("tv-alert-1", "signal-1", "print-1", ttl_seconds=60)
    await cache.remember("tv-alert-1", "signal-2", "print-2", ttl_seconds=60)

    assert await cache.holder("tv-alert-1", "print-1") == "signal-1"
    assert await cache.holder("tv-alert-2", "print-1") is None
    assert 0 < await redis.ttl("ordo:signal:dedupe:tv-alert-1") <= 60


async def test_an_unreachable_redis_falls_back_to_this_process() -> None:
    client = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5, socket_timeout=0.5
    )
    limiter = RedisRateLimiter(client, 1, clock=Clock())
    cache = RedisDedupeCache(client)

    assert await limiter.allow("10.0.0.1")
    assert not await limiter.allow("10.0.0.1")
    assert await cache.holder("tv-alert-1", "print-1") is None
    await cache.remember("tv-alert-1", "signal-1", "print-1", ttl_seconds=60)  # no error
    await client.aclose()


async def test_the_dedupe_cache_knows_no_holder_for_another_signal_under_the_key(
    redis: Redis,
) -> None:
    # The key reused for a different signal: the database decides (a conflict), not the cache.
    cache = RedisDedupeCache(redis)

    await cache.remember("api:bot-1", "signal-1", "print-1", ttl_seconds=60)

    assert await cache.holder("api:bot-1", "print-2") is None


def test_ipv6_clients_are_limited_per_network() -> None:
    assert rate_limit_client("2001:db8:1:2::1") == rate_limit_client("2001:db8:1:2:ffff::9")
    assert rate_limit_client("2001:db8:1:2::1") != rate_limit_client("2001:db8:1:3::1")
    assert rate_limit_client("198.51.100.7") == "198.51.100.7"
    assert rate_limit_client(None) == "unknown"
