"""Wiring of the reconciler: the periodic run over the configured accounts, and its pruning."""

from datetime import timedelta

from ordo.contracts.execution import RequestVenueSnapshot, VenueSnapshot
from ordo.contracts.queries import PositionsView, QueryPositions
from ordo.kit.service import ServiceKit
from ordo.reconciler import store
from ordo.reconciler.config import ReconcilerSettings
from ordo.reconciler.reconcile import Reconciler

PRUNE_INTERVAL_SECONDS = 3600.0


def build(settings: ReconcilerSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or ReconcilerSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    timeout = settings.request_timeout_seconds

    async def venue_snapshot(request: RequestVenueSnapshot) -> VenueSnapshot:
        return await kit.request(request, VenueSnapshot, timeout)

    async def oms_positions(query: QueryPositions) -> PositionsView:
        return await kit.request(query, PositionsView, timeout)

    reconciler = Reconciler(
        kit.outbox,
        settings.accounts,
        settings.tolerances,
        venue_snapshot=venue_snapshot,
        oms_positions=oms_positions,
        retention=timedelta(days=settings.retention_days),
    )
    kit.every("reconcile", settings.interval_seconds, reconciler.reconcile_all)
    kit.every("prune-runs", PRUNE_INTERVAL_SECONDS, reconciler.prune_history)
    return kit
