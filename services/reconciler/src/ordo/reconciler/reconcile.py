"""The reconciliation job: ask both sides, compare, then record and announce the run.

The reconciler consumes no subject: a periodic job drives it. For each configured account it asks
execution for the venue's snapshot and the OMS for its positions (request/reply), compares them
with the pure domain, and stores the run together with its events in one unit of work, so a run is
announced if and only if it is recorded. A side that cannot be asked, or a comparison that fails,
makes a FAILED run, which is recorded and announced like any other: silence would look like a
clean account.
"""

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from structlog.contextvars import bound_contextvars

from ordo.contracts.enums import ReconciliationOutcome
from ordo.contracts.envelope import new_message_id
from ordo.contracts.execution import RequestVenueSnapshot, VenueSnapshot
from ordo.contracts.orders import PositionView
from ordo.contracts.queries import PositionsView, QueryPositions
from ordo.contracts.reconciliation import DiscrepancyFound, ReconciliationCompleted
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Outbox
from ordo.reconciler import store
from ordo.reconciler.config import ReconcileTarget
from ordo.reconciler.domain.compare import (
    Discrepancy,
    Tolerances,
    compare_positions,
    outcome,
    positions_compared,
)

PRODUCER = "reconciler"
T = TypeVar("T")
log = get_logger(__name__)
tracer = trace.get_tracer(__name__)

SnapshotRequest = Callable[[RequestVenueSnapshot], Awaitable[VenueSnapshot]]
PositionsRequest = Callable[[QueryPositions], Awaitable[PositionsView]]


class SideUnavailable(Exception):
    """The venue or the OMS could not be asked (or answered for something else): the run fails."""


class Reconciler:
    def __init__(
        self,
        outbox: Outbox,
        targets: Sequence[ReconcileTarget],
        tolerances: Tolerances,
        *,
        venue_snapshot: SnapshotRequest,
        oms_positions: PositionsRequest,
        retention: timedelta = timedelta(days=30),
        clock: Callable[[], datetime] = utc_now,
        new_run_id: Callable[[], str] = new_message_id,
    ) -> None:
        self._outbox = outbox
        self._targets = tuple(targets)
        self._tolerances = tolerances
        self._venue_snapshot = venue_snapshot
        self._oms_positions = oms_positions
        self._retention = retention
        self._clock = clock
        self._new_run_id = new_run_id

    async def reconcile_all(self) -> list[ReconciliationCompleted]:
        """The periodic job: each target on its own, so that one failing never stops the others."""
        completed = []
        for target in self._targets:
            try:
                completed.append(await self.reconcile(target))
            except Exception:
                # The run could not even be recorded (the store is down, say). The other targets
                # still run, and the next round tries this one again.
                log.exception(
                    "reconciliation run not recorded; the next round tries again",
                    account=target.account,
                    venue=target.venue,
                )
        return completed

    async def reconcile(self, target: ReconcileTarget) -> ReconciliationCompleted:
        """One run for one account: compare, record, announce. A side that fails is a FAILED run."""
        run_id = self._new_run_id()
        started_at = self._clock()
        attributes = {
            "ordo.run_id": run_id,
            "ordo.account": target.account,
            "ordo.venue": target.venue,
        }
        with (
            tracer.start_as_current_span("reconcile.run", attributes=attributes) as span,
            bound_contextvars(run_id=run_id, account=target.account, venue=target.venue),
        ):
            found: list[Discrepancy] = []
            try:
                snapshot, oms = await self._ask_both_sides(target, run_id)
                found = compare_positions(snapshot, oms, self._tolerances)
                compared = positions_compared(snapshot, oms)
            except Exception as failure:
                error = _failure_reason(failure)
                span.record_exception(failure)
                span.set_status(Status(StatusCode.ERROR, error))
                run = self._run(target, run_id, started_at, error=error)
            else:
                run = self._run(target, run_id, started_at, found=found, compared=compared)
            span.set_attribute("ordo.outcome", run.outcome.value)
            await self._record(run, found)
            _log_run(run)
        return run

    async def prune_history(self) -> int:
        """Keep the history bounded: forget runs older than the retention. Returns how many."""
        async with self._outbox.transaction() as tx:
            pruned = await store.prune_runs(tx.session, self._clock() - self._retention)
        if pruned:
            log.info("old reconciliation runs pruned", runs=pruned)
        return pruned

    async def _ask_both_sides(
        self, target: ReconcileTarget, run_id: str
    ) -> tuple[VenueSnapshot, tuple[PositionView, ...]]:
        snapshot = await _ask(
            "the venue snapshot (execution)",
            self._venue_snapshot(
                RequestVenueSnapshot(
                    correlation_id=run_id,
                    producer=PRODUCER,
                    account=target.account,
                    venue=target.venue,
                )
            ),
        )
        if (snapshot.account, snapshot.venue) != (target.account, target.venue):
            # Comparing another account's holdings would report (and later halt on) nonsense.
            raise SideUnavailable(
                f"execution answered for {snapshot.account}/{snapshot.venue}, "
                f"not {target.account}/{target.venue}"
            )
        view = await _ask(
            "the OMS positions",
            self._oms_positions(
                QueryPositions(
                    correlation_id=run_id,
                    producer=PRODUCER,
                    account=target.account,
                    venue=target.venue,
                    include_flat=True,
                )
            ),
        )
        return snapshot, view.positions

    def _run(
        self,
        target: ReconcileTarget,
        run_id: str,
        started_at: datetime,
        *,
        found: Sequence[Discrepancy] = (),
        compared: int = 0,
        error: str | None = None,
    ) -> ReconciliationCompleted:
        return ReconciliationCompleted(
            correlation_id=run_id,
            producer=PRODUCER,
            run_id=run_id,
            account=target.account,
            venue=target.venue,
            started_at=started_at,
            finished_at=self._clock(),
            outcome=ReconciliationOutcome.FAILED if error is not None else outcome(found),
            positions_compared=compared,
            discrepancies=len(found),
            error=error,
        )

    async def _record(self, run: ReconciliationCompleted, found: Sequence[Discrepancy]) -> None:
        async with self._outbox.transaction() as tx:
            await store.record_run(tx.session, run, found)
            # The discrepancies go first: whoever reads the run's completion from the stream has
            # already been given everything it found.
            for discrepancy in found:
                tx.publish(_discrepancy_found(run, discrepancy))
            tx.publish(run)


async def _ask(what: str, request: Awaitable[T]) -> T:
    # Whatever the failure (a timeout, an open breaker, NATS, Redis behind the breaker, a reply
    # that does not decode), this side cannot be compared.
    try:
        return await request
    except Exception as exc:
        raise SideUnavailable(f"asking for {what} failed: {_describe(exc)}") from exc


def _failure_reason(failure: Exception) -> str:
    if isinstance(failure, SideUnavailable):
        return str(failure)
    # Not a side: the comparison itself. A bug, but the run must still say it did not compare.
    log.exception("reconciliation could not compare the positions")
    return f"comparing the positions failed: {_describe(failure)}"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _discrepancy_found(run: ReconciliationCompleted, found: Discrepancy) -> DiscrepancyFound:
    return DiscrepancyFound(
        correlation_id=run.correlation_id,
        producer=PRODUCER,
        run_id=run.run_id,
        account=run.account,
        venue=run.venue,
        kind=found.kind,
        severity=found.severity,
        symbol=found.symbol,
        venue_value=found.venue_value,
        oms_value=found.oms_value,
        detail=found.detail,
    )


def _log_run(run: ReconciliationCompleted) -> None:
    if run.outcome is ReconciliationOutcome.CLEAN:
        log.info("reconciled: clean", positions_compared=run.positions_compared)
    elif run.outcome is ReconciliationOutcome.DISCREPANCIES:
        log.warning(
            "reconciled: discrepancies found",
            positions_compared=run.positions_compared,
            discrepancies=run.discrepancies,
        )
    else:
        log.warning("reconciliation failed", error=run.error)
