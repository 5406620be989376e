"""What stands in front of the intake: the address allow-list, the rate limit, the dedupe cache.

Redis, when configured, is shared by every replica: the rate limit counts a client's calls to
all of them, and a repeated alert is recognised without a database round trip. Redis is only
ever a fast path: when it is missing or failing, the limits fall back to this process and the
database alone decides what is a duplicate.
"""

import ipaddress
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ordo.kit.logs import get_logger

log = get_logger(__name__)

Clock = Callable[[], float]
WINDOW_SECONDS = 60
_KEY_PREFIX = "ordo:signal"
# A fixed-window counter per client must not grow without bound when addresses are many.
MAX_TRACKED_CLIENTS = 100_000
# The network an IPv6 client is counted by: what one site or host is usually given.
IPV6_CLIENT_PREFIX = 64


class AddressAllowList:
    """Addresses and CIDR networks allowed to call; an empty list allows every address."""

    def __init__(self, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]):
        self._networks = networks

    def allows(self, address: str | None) -> bool:
        if not self._networks:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


def rate_limit_client(address: str | None) -> str:
    """Whose budget a call from ``address`` spends: the address, or its /64 network for IPv6.

    One IPv6 host holds a whole /64 (2^64 addresses): counted per address, it would never reach
    its limit, and it could fill the in-process counter so that every new client is refused.
    """
    if address is None:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(ip)


class RateLimiter(Protocol):
    async def allow(self, client: str) -> bool:
        """Count one call of ``client``; whether it is within the limit."""
        ...

    def retry_after(self) -> int:
        """Seconds until the current window ends."""
        ...


class LocalRateLimiter:
    """A fixed window per client per minute, in this process."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Clock = time.time,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._max_clients = max_clients
        self._window = -1
        self._counts: dict[str, int] = {}

    async def allow(self, client: str) -> bool:
        return self.count(client)

    def count(self, client: str) -> bool:
        window = int(self._clock() // WINDOW_SECONDS)
        if window != self._window:
            self._window, self._counts = window, {}
        if client not in self._counts and len(self._counts) >= self._max_clients:
            return False  # more distinct clients this minute than we keep count of: refuse
        calls = self._counts.get(client, 0) + 1
        self._counts[client] = calls
        return calls <= self._per_minute

    def retry_after(self) -> int:
        return _seconds_left(self._clock())


class RedisRateLimiter:
    """The fixed window counted in Redis, so that replicas share it; local if Redis fails."""

    def __init__(self, redis: Redis, per_minute: int, *, clock: Clock = time.time) -> None:
        self._redis = redis
        self._per_minute = per_minute
        self._clock = clock
        self._fallback = LocalRateLimiter(per_minute, clock=clock)

    async def allow(self, client: str) -> bool:
        window = int(self._clock() // WINDOW_SECONDS)
        key = f"{_KEY_PREFIX}:rate:{window}:{client}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_SECONDS * 2)
                calls, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning("rate limit falls back to this process", error=repr(error))
            return self._fallback.count(client)
        return int(calls) <= self._per_minute

    def retry_after(self) -> int:
        return _seconds_left(self._clock())


def _seconds_left(now: float) -> int:
    return max(1, WINDOW_SECONDS - int(now % WINDOW_SECONDS))


class DedupeCache(Protocol):
    async def holder(self, dedupe_key: str, fingerprint: str) -> str | None:
        """The signal id that holds ``dedupe_key`` with this content ``fingerprint``, if known.

        None when the key is unknown here or holds another signal: the database then decides.
        """
        ...

    async def remember(
        self, dedupe_key: str, signal_id: str, fingerprint: str, ttl_seconds: int
    ) -> None: ...


class NoDedupeCache:
    """Without Redis: the database alone recognises repeats."""

    async def holder(self, dedupe_key: str, fingerprint: str) -> str | None:
        return None

    async def remember(
        self, dedupe_key: str, signal_id: str, fingerprint: str, ttl_seconds: int
    ) -> None:
        return None


class RedisDedupeCache:
    """Dedupe key → signal id and fingerprint, kept for what remains of the dedupe window."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def holder(self, dedupe_key: str, fingerprint: str) -> str | None:
        try:
            value = await self._redis.get(self._key(dedupe_key))
        except (RedisError, OSError) as error:
            log.warning("dedupe cache unavailable; asking the database", error=repr(error))
            return None
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        signal_id, _, cached_fingerprint = text.partition(" ")
        return signal_id if cached_fingerprint == fingerprint else None

    async def remember(
        self, dedupe_key: str, signal_id: str, fingerprint: str, ttl_seconds: int
    ) -> None:
        if ttl_seconds <= 0:
            return
        try:
            # NX: the first signal to hold the key stays in the cache; the database agrees.
            await self._redis.set(
                self._key(dedupe_key), f"{signal_id} {fingerprint}", nx=True, ex=ttl_seconds
            )
        except (RedisError, OSError) as error:
            log.warning("dedupe cache not updated", error=repr(error))

    @staticmethod
    def _key(dedupe_key: str) -> str:
        return f"{_KEY_PREFIX}:dedupe:{dedupe_key}"
