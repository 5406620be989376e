"""Venue health: breaker changes and halts, published on ``exec.venue.v1`` and shown to operators.

- Breaker changes come from the kit, once per change of the shared (Redis) state whichever
  replica made it, and are published as they happen.
- Refused credentials halt new orders to the venue account. The halt is a row in the store, so
  every replica honours it (each reads the rows again every ``refresh``) and it survives
  restarts. A probe tries the account again every so often; once the credentials work (an
  operator fixed them), the halt is lifted. Both are published, and the notifier alerts.
"""

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ordo.contracts.enums import BreakerState
from ordo.contracts.envelope import new_message_id
from ordo.contracts.execution import VenueStatusChanged
from ordo.execution import store
from ordo.execution.errors import AuthenticationFailed, VenueError
from ordo.execution.gateway import VenueGateway, parse_breaker_name
from ordo.kit.breaker import CircuitOpenError
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Outbox
from ordo.kit.store import Database

PRODUCER = "execution"
log = get_logger(__name__)

_BREAKER_REASONS = {
    BreakerState.OPEN: "the venue keeps failing: calls are refused until it recovers",
    BreakerState.HALF_OPEN: "trying the venue again after a pause",
    BreakerState.CLOSED: "the venue answers normally again",
}


@dataclass(frozen=True, slots=True)
class VenueStatus:
    """One venue account's health, as ``GET /venues`` and ``ordo status`` show it."""

    venue: str
    account: str
    breaker: BreakerState
    halted: str | None  # why new orders are halted, or None

    def as_json(self) -> dict[str, object]:
        return {
            "venue": self.venue,
            "account": self.account,
            "breaker": self.breaker.value,
            "halted": self.halted is not None,
            "reason": self.halted,
        }


class VenueHealth:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        gateway: VenueGateway,
        configured: Callable[[], Iterable[tuple[str, str]]],
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._gateway = gateway
        self._configured = configured
        # Every halted venue account, as this replica last read the store.
        self._halts: dict[tuple[str, str], str] = {}
        # Publishes of breaker changes in flight; kept so that they are not garbage collected.
        self._tasks: set[asyncio.Task[None]] = set()

    # -- halts ---------------------------------------------------------------------------------

    def halted(self, venue: str, account: str) -> str | None:
        """Why new orders to the venue account are halted, or None if they are not."""
        return self._halts.get((venue, account))

    async def refresh(self) -> None:
        """Read the halts again (another replica may have halted or resumed an account)."""
        async with self._db.session() as session:
            self._halts = await store.venue_halts_by_account(session)

    async def halt(self, venue: str, account: str, refused: AuthenticationFailed) -> None:
        """Halt new orders to the venue account: its credentials were refused."""
        reason = f"credentials refused: {refused.detail}"
        self._halts[(venue, account)] = reason
        async with self._outbox.transaction() as tx:
            if not await store.halt_venue(tx.session, venue, account, reason):
                return  # halted already, and announced then
            log.critical("venue halted: credentials refused", venue=venue, account=account)
            tx.publish(await self._status_changed(venue, account, reason=reason, halted=True))

    async def probe_halted(self) -> None:
        """Try each halted account once: where the credentials work again, lift the halt."""
        await self.refresh()
        for venue, account in list(self._halts):
            try:
                await self._gateway.probe(venue, account)
            except (VenueError, CircuitOpenError) as exc:
                log.info("halted venue still refuses", venue=venue, account=account, error=str(exc))
                continue
            await self._lift(venue, account)

    async def _lift(self, venue: str, account: str) -> None:
        self._halts.pop((venue, account), None)
        async with self._outbox.transaction() as tx:
            if not await store.lift_halt(tx.session, venue, account):
                return  # another replica lifted it first
            log.warning("venue resumed: its credentials work again", venue=venue, account=account)
            tx.publish(
                await self._status_changed(
                    venue, account, reason="credentials accepted again: trading resumes"
                )
            )

    # -- breaker changes -----------------------------------------------------------------------

    def on_breaker_change(self, name: str, state: BreakerState) -> None:
        """Breakers call listeners synchronously: the publish runs as a task of its own."""
        parsed = parse_breaker_name(name, self._gateway.venue_names())
        if parsed is None:
            return
        venue, account = parsed
        task = asyncio.get_running_loop().create_task(self._publish_breaker(venue, account, state))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_breaker(self, venue: str, account: str, state: BreakerState) -> None:
        try:
            async with self._outbox.transaction() as tx:
                tx.publish(
                    await self._status_changed(
                        venue,
                        account,
                        reason=_BREAKER_REASONS[state],
                        breaker=state,
                        halted=self.halted(venue, account) is not None,
                    )
                )
        except Exception:
            # If the row was committed, the outbox sweeper publishes it later.
            log.exception("publishing a venue status change failed", venue=venue, state=state)

    async def drain(self) -> None:
        """Wait for venue status publishes still in flight (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- what operators see --------------------------------------------------------------------

    async def statuses(self) -> list[VenueStatus]:
        """Every venue account this replica knows of: configured, used, or halted."""
        await self.refresh()
        known = set(self._configured()) | set(self._halts)
        known |= {(venue, account) for venue, account, _ in self._gateway.active()}
        return [
            VenueStatus(
                venue=venue,
                account=account,
                breaker=await self._gateway.breaker_state(venue, account),
                halted=self.halted(venue, account),
            )
            for venue, account in sorted(known)
        ]

    async def _status_changed(
        self,
        venue: str,
        account: str,
        *,
        reason: str,
        breaker: BreakerState | None = None,
        halted: bool = False,
    ) -> VenueStatusChanged:
        return VenueStatusChanged(
            correlation_id=new_message_id(),
            producer=PRODUCER,
            venue=venue,
            account=account,
            breaker=breaker or await self._gateway.breaker_state(venue, account),
            reason=reason,
            halted=halted,
        )
