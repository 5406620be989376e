"""One lock per key, kept only while someone holds or waits for it.

A service's consumers run concurrently (one per subject). When two of them change the same
aggregate, say an OMS approval and a fill report of one account, optimistic concurrency keeps the
data right, but under load the loser retries again and again against a stream of winners. Taking
the key's lock first makes the handlers of one key in this replica take turns instead; replicas
still race, and the version checks still decide those races.
"""

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]  # bounded: only keys in use have a lock
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
