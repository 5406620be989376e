"""Supervised background tasks: a task that dies is logged and restarted; shutdown cancels all.

Background work that fails silently is one of the defects this project never repeats.
"""

import asyncio
from collections.abc import Awaitable, Callable

from ordo.kit.logs import get_logger

log = get_logger(__name__)


class Supervisor:
    def __init__(self, *, max_backoff_seconds: float = 30.0) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._max_backoff = max_backoff_seconds
        self.restarts: dict[str, int] = {}

    def start(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        if name in self._tasks:
            raise ValueError(f"a background task named {name!r} is already running")
        self._tasks[name] = asyncio.create_task(self._keep_running(name, work), name=name)

    def every(self, name: str, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        """Run ``work`` every ``seconds``, forever, supervised."""

        async def loop() -> None:
            while True:
                await work()
                await asyncio.sleep(seconds)

        self.start(name, loop)

    @property
    def healthy(self) -> bool:
        return all(not task.done() for task in self._tasks.values())

    async def _keep_running(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        backoff = 0.1
        while True:
            try:
                await work()
                log.warning("background task returned; restarting", task=name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task failed; restarting", task=name, backoff=backoff)
            self.restarts[name] = self.restarts.get(name, 0) + 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
