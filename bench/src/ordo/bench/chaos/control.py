"""The embedded stack's processes, started, killed and restarted from inside an event loop."""

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ordo.cli.stack import Stack
from ordo.contracts.subjects import Service

T = TypeVar("T")
# A restart competes for two cores with the load and the other services: it may take a while.
READY_TIMEOUT = 180.0


class StackControl:
    """Start, SIGKILL and restart the stack's services and its NATS server, without blocking.

    The kernel stops a child when the thread that spawned it ends (``PR_SET_PDEATHSIG``), so every
    process is spawned by one thread that lives exactly as long as the stack; waiting for a
    service to be ready spawns nothing and runs in asyncio's own pool.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaos-spawner")

    @property
    def services(self) -> tuple[Service, ...]:
        return tuple(self.stack.processes)

    async def start(self) -> None:
        await self._spawn(functools.partial(self.stack.start, ready_timeout=READY_TIMEOUT))

    async def stop(self) -> None:
        try:
            await self._spawn(self.stack.stop)
        finally:
            self._spawner.shutdown(wait=True)

    async def kill_and_restart(self, service: Service) -> float:
        """SIGKILL ``service``, start it again; the seconds until it was ready again."""
        began = time.monotonic()
        await self._spawn(self._kill_and_start, service)
        await self._wait_ready(service)
        return time.monotonic() - began

    async def restart_nats(self) -> float:
        """Stop the NATS server (SIGTERM) and start it again on its port and store directory;
        the seconds until every service was ready again."""
        await self.wait_all_ready()
        began = time.monotonic()
        await self._spawn(self._restart_nats)
        await self.wait_all_ready()
        return time.monotonic() - began

    async def wait_all_ready(self) -> None:
        await asyncio.gather(*(self._wait_ready(service) for service in self.services))

    async def _wait_ready(self, service: Service) -> None:
        await asyncio.to_thread(self.stack.wait_ready, service, timeout=READY_TIMEOUT)

    def _kill_and_start(self, service: Service) -> None:
        self.stack.kill(service)
        self.stack.start_service(service, wait=False)

    def _restart_nats(self) -> None:
        self.stack.nats.stop()
        self.stack.nats.start()

    async def _spawn(self, work: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._spawner, work, *args)
