"""At start-up, before the first proposal: the OMS's positions, for what the projection lacks.

The positions projection is built from ``position.changed.v1``, which the durable consumer replays
from the stream. What the stream no longer holds is missing: a position last changed before the
stream's retention when this risk store was new, or every position when the store was restored or
replaced while the consumer had already acknowledged their changes. So the service asks the OMS
for its view (``query.positions.v1``) and takes every position newer than the projection's.

If the OMS does not answer in time, the service starts anyway with what the stream gave it, and
says so: nothing can be traded without the OMS, which proposes every order. It keeps asking
(:meth:`PositionSync.until_synced`, every ``RETRY_INTERVAL_SECONDS``) until the OMS answers: the
OMS's first proposals once it is back would otherwise be judged without the positions it holds.
"""

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from ordo.contracts.queries import PositionsView, QueryPositions
from ordo.kit.logs import get_logger
from ordo.kit.service import ServiceKit
from ordo.risk.handlers import PRODUCER, RiskHandlers

log = get_logger(__name__)

RETRY_WAIT_SECONDS = 0.5
# One attempt; a missing OMS fails at once (no responders), a busy one may take this long.
REQUEST_TIMEOUT_SECONDS = 2.0
# Without its answer at start-up, the OMS is asked again this often, for this long each time.
RETRY_INTERVAL_SECONDS = 5.0
RETRY_DEADLINE_SECONDS = 2.0


class PositionSync:
    """The start-up sync, retried in the background until the OMS has answered once."""

    def __init__(self, kit: ServiceKit, handlers: RiskHandlers, deadline_seconds: float) -> None:
        self._kit = kit
        self._handlers = handlers
        self._deadline_seconds = deadline_seconds
        self.synced = False
        self.attempts = 0

    async def at_start(self) -> None:
        await self._attempt(self._deadline_seconds)

    async def until_synced(self) -> None:
        """The periodic job: nothing once synced."""
        if not self.synced:
            await self._attempt(min(RETRY_DEADLINE_SECONDS, self._deadline_seconds))

    async def _attempt(self, deadline_seconds: float) -> None:
        self.attempts += 1
        taken = await sync_positions(self._kit, self._handlers, deadline_seconds)
        self.synced = taken is not None


async def sync_positions(
    kit: ServiceKit, handlers: RiskHandlers, deadline_seconds: float
) -> int | None:
    """Take the OMS's positions that are newer than the projection; returns how many, or None
    when the OMS did not answer."""
    query = QueryPositions(correlation_id="risk-start-up", producer=PRODUCER, include_flat=True)
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(deadline_seconds),
            wait=wait_fixed(RETRY_WAIT_SECONDS),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        ):
            with attempt:
                timeout = min(REQUEST_TIMEOUT_SECONDS, deadline_seconds)
                view = await kit.request(query, PositionsView, timeout=timeout)
    except Exception as error:  # whatever failed, the service starts (see above)
        log.error(
            "positions not synced from the OMS: the projection holds what the stream replayed",
            error=repr(error),
        )
        return None
    taken = 0
    for position in view.positions:
        async with kit.outbox.transaction() as tx:
            taken += await handlers.position_synced(position, view, tx)
    log.info("positions synced from the OMS", received=len(view.positions), taken=taken)
    return taken
