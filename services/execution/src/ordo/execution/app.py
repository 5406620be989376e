"""Wiring of the execution service: venues, subscriptions, the snapshot responder, matching."""

from dataclasses import dataclass

from ordo.contracts.execution import RequestVenueSnapshot
from ordo.contracts.orders import CancelOrder
from ordo.contracts.risk import OrderApproved
from ordo.contracts.subjects import Subject
from ordo.contracts.types import utc_now
from ordo.execution import store
from ordo.execution.books import PaperBooks
from ordo.execution.config import ExecutionSettings
from ordo.execution.gateway import VenueGateway
from ordo.execution.handlers import Clock, Execution
from ordo.execution.venues import VenueRegistry, paper_venue_factory
from ordo.execution.venues.paper import VENUE_NAME as PAPER_VENUE
from ordo.kit.service import ServiceKit


@dataclass(frozen=True)
class ExecutionApp:
    """The wired service, with the parts tests look into."""

    kit: ServiceKit
    venues: VenueRegistry
    execution: Execution


def build(settings: ExecutionSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    return assemble(settings, telemetry=telemetry).kit


def assemble(
    settings: ExecutionSettings | None = None, *, telemetry: bool = True, clock: Clock = utc_now
) -> ExecutionApp:
    settings = settings or ExecutionSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    books = PaperBooks(kit.db)
    venues = VenueRegistry()
    venues.register(
        PAPER_VENUE,
        paper_venue_factory(
            settings.paper.venue_config(), clock, settings.paper.seed, books.saved_state
        ),
    )
    execution = Execution(VenueGateway(venues, kit.breakers), kit.outbox, books, clock)

    kit.consume(Subject.RISK_APPROVED, OrderApproved, execution.on_approved)
    kit.consume(Subject.ORDER_CANCEL, CancelOrder, execution.on_cancel)
    kit.reply(Subject.EXEC_SNAPSHOT, RequestVenueSnapshot, execution.snapshot)
    kit.every("match", settings.match_interval_seconds, execution.match)
    kit.breakers.on_change(execution.on_breaker_change)
    kit.on_start(execution.restore_paper_books)
    kit.on_stop(execution.drain)
    return ExecutionApp(kit=kit, venues=venues, execution=execution)
