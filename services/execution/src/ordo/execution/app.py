"""Wiring of the execution service: venues, subscriptions, responders, jobs, the venue endpoint."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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
from ordo.execution.health import VenueHealth
from ordo.execution.quotes import QuotePublisher
from ordo.execution.venues import VenueRegistry, paper_venue_factory
from ordo.execution.venues.base import FollowedVenue
from ordo.execution.venues.credentials import read_credentials
from ordo.execution.venues.paper import VENUE_NAME as PAPER_VENUE
from ordo.execution.venues.paper import PaperPrices
from ordo.kit.service import ServiceKit

# Another replica's halt (or resume) reaches this one within this time.
HALTS_REFRESH_SECONDS = 5.0
# A create is cut off at this share of its lease, so that it never outlives the lease.
_CREATE_DEADLINE_SHARE = 0.75


@dataclass(frozen=True)
class ExecutionApp:
    """The wired service, with the parts tests look into."""

    kit: ServiceKit
    venues: VenueRegistry
    gateway: VenueGateway
    health: VenueHealth
    execution: Execution
    quotes: QuotePublisher


def build(settings: ExecutionSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    return assemble(settings, telemetry=telemetry).kit


def assemble(
    settings: ExecutionSettings | None = None,
    *,
    telemetry: bool = True,
    clock: Clock = utc_now,
    environ: Mapping[str, str] | None = None,
) -> ExecutionApp:
    """The service, wired; ``environ`` holds the venue credentials (default: the process's)."""
    settings = settings or ExecutionSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    books = PaperBooks(kit.db)
    paper_config = settings.paper.venue_config()
    paper_prices = PaperPrices(paper_config, settings.paper.seed, clock, books.saved_origins)
    venues = VenueRegistry()
    venues.register(
        PAPER_VENUE,
        paper_venue_factory(
            paper_config, clock, settings.paper.seed, books.saved_state, prices=paper_prices
        ),
    )
    _register_ccxt_venues(venues, settings, environ)
    gateway = VenueGateway(
        venues,
        kit.breakers,
        create_deadline_seconds=settings.create_lease_seconds * _CREATE_DEADLINE_SHARE,
    )
    configured = [(entry.venue, entry.account) for entry in settings.venue_accounts]
    health = VenueHealth(kit.db, kit.outbox, gateway, configured=lambda: configured)
    execution = Execution(
        gateway,
        kit.outbox,
        books,
        health,
        kit.db,
        clock,
        create_lease=timedelta(seconds=settings.create_lease_seconds),
        snapshot_fills=timedelta(hours=settings.snapshot_fills_hours),
        give_up_pending=timedelta(seconds=settings.give_up_pending_seconds),
    )

    quotes = QuotePublisher(
        gateway,
        paper_prices,
        lambda: [(entry.venue, entry.account, entry.symbols) for entry in settings.venue_accounts],
        kit.messaging.publish,
        clock,
    )

    kit.consume(Subject.RISK_APPROVED, OrderApproved, execution.on_approved)
    kit.consume(Subject.ORDER_CANCEL, CancelOrder, execution.on_cancel)
    kit.reply(Subject.EXEC_SNAPSHOT, RequestVenueSnapshot, execution.snapshot)
    kit.every("follow-orders", settings.match_interval_seconds, execution.follow_orders)
    kit.every("market-quotes", settings.quote_interval_seconds, quotes.publish_quotes)
    kit.every("venue-halts", HALTS_REFRESH_SECONDS, health.refresh)
    kit.every("halt-probe", settings.halt_probe_seconds, health.probe_halted)
    kit.breakers.on_change(health.on_breaker_change)
    kit.on_start(execution.restore_paper_books)

    async def open_venues() -> None:
        """Open every configured venue account, and follow its orders where it pushes them."""
        for venue, account in configured:
            adapter = gateway.adapter(venue, account)
            if isinstance(adapter, FollowedVenue) and adapter.follows_orders:
                kit.supervisor.start(
                    f"follow:{venue}:{account}",
                    lambda venue=venue, account=account: execution.follow_pushes(venue, account),
                )

    kit.on_start(open_venues)
    kit.on_stop(execution.drain)
    kit.on_stop(gateway.close)

    @kit.http_app.get("/venues", summary="Each venue account's breaker and halt")
    async def venue_statuses() -> list[dict[str, Any]]:
        return [status.as_json() for status in await health.statuses()]

    return ExecutionApp(
        kit=kit,
        venues=venues,
        gateway=gateway,
        health=health,
        execution=execution,
        quotes=quotes,
    )


def _register_ccxt_venues(
    venues: VenueRegistry, settings: ExecutionSettings, environ: Mapping[str, str] | None
) -> None:
    by_venue = settings.ccxt_venues()
    if not by_venue:
        return
    # Imported only when configured: loading ccxt (every exchange it knows) takes seconds.
    from ordo.execution.venues.ccxt_venue import ccxt_venue_factory

    # Read once at start-up: a missing or unreadable secret stops the service with a clear
    # message instead of failing the first order.
    secrets = {
        (entry.venue, entry.account): read_credentials(entry.credentials_name, environ)
        for entry in settings.venue_accounts
    }
    for venue, accounts in by_venue.items():
        venues.register(
            venue,
            ccxt_venue_factory(
                venue, accounts, lambda entry: secrets[(entry.venue, entry.account)]
            ),
        )
