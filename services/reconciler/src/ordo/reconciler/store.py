"""The reconciler's store: the history of runs and the discrepancies each one found.

Both tables are written once and never updated (a run is recorded when it is over), so there is
no concurrent update to guard against. The history is bounded: old runs are pruned.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.reconciliation import ReconciliationCompleted
from ordo.kit.store import ExactDecimal, UtcDateTime, messaging_tables, new_metadata
from ordo.reconciler.domain.compare import Discrepancy

metadata = new_metadata()
messaging = messaging_tables(metadata)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("positions_compared", Integer, nullable=False),
    Column("discrepancy_count", Integer, nullable=False),
    Column("error", Text, nullable=True, doc="Why a FAILED run could not compare"),
)
Index("ix_runs_target_started", runs.c.account, runs.c.venue, runs.c.started_at)
Index("ix_runs_started_at", runs.c.started_at)

discrepancies = Table(
    "discrepancies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.run_id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("symbol", String(64), nullable=True),
    Column("venue_value", ExactDecimal, nullable=True),
    Column("oms_value", ExactDecimal, nullable=True),
    Column("detail", Text, nullable=False),
    Column("found_at", UtcDateTime, nullable=False),
)


async def record_run(
    session: AsyncSession, run: ReconciliationCompleted, found: Sequence[Discrepancy]
) -> None:
    """Keep a finished run and the discrepancies it found (found when the run finished)."""
    await session.execute(
        runs.insert().values(
            run_id=run.run_id,
            account=run.account,
            venue=run.venue,
            started_at=run.started_at,
            finished_at=run.finished_at,
            outcome=run.outcome.value,
            positions_compared=run.positions_compared,
            discrepancy_count=run.discrepancies,
            error=run.error,
        )
    )
    if found:
        await session.execute(
            discrepancies.insert(),
            [
                {
                    "run_id": run.run_id,
                    "kind": d.kind.value,
                    "severity": d.severity.value,
                    "symbol": d.symbol,
                    "venue_value": d.venue_value,
                    "oms_value": d.oms_value,
                    "detail": d.detail,
                    "found_at": run.finished_at,
                }
                for d in found
            ],
        )


async def prune_runs(session: AsyncSession, started_before: datetime) -> int:
    """Forget the runs started before ``started_before`` and their discrepancies; how many runs."""
    old_runs = select(runs.c.run_id).where(runs.c.started_at < started_before)
    await session.execute(delete(discrepancies).where(discrepancies.c.run_id.in_(old_runs)))
    pruned = await session.execute(delete(runs).where(runs.c.started_at < started_before))
    return int(getattr(pruned, "rowcount", 0) or 0)
