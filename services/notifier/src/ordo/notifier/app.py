"""Wiring of the notifier: subscriptions, channels, the dispatcher and its pruning."""

from datetime import timedelta

import httpx

from ordo.contracts.execution import ExecutionReport, VenueStatusChanged
from ordo.contracts.reconciliation import DiscrepancyFound
from ordo.contracts.risk import OrderDenied, TradingStateChanged
from ordo.contracts.subjects import Subject
from ordo.kit.service import ServiceKit
from ordo.notifier import domain, store
from ordo.notifier.channels import configured_channels
from ordo.notifier.config import NotifierSettings
from ordo.notifier.dispatcher import Dispatcher
from ordo.notifier.handlers import Notifications

PRUNE_INTERVAL_SECONDS = 3600.0


def build(settings: NotifierSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or NotifierSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    # Each channel sets its own timeout on its calls.
    client = httpx.AsyncClient()
    channels = configured_channels(settings, client)
    notifications = Notifications(tuple(channels), settings.routes)

    kit.consume_dead_letters(notifications.on_dead_letter)
    kit.consume(
        Subject.EXEC_REPORT, ExecutionReport, notifications.handler(domain.for_execution_report)
    )
    kit.consume(Subject.RISK_DENIED, OrderDenied, notifications.handler(domain.for_denial))
    kit.consume(
        Subject.RISK_STATE, TradingStateChanged, notifications.handler(domain.for_trading_state)
    )
    kit.consume(
        Subject.EXEC_VENUE, VenueStatusChanged, notifications.handler(domain.for_venue_status)
    )
    kit.consume(
        Subject.RECON_DISCREPANCY, DiscrepancyFound, notifications.handler(domain.for_discrepancy)
    )

    dispatcher = Dispatcher(
        kit.db,
        channels,
        kit.breakers,
        give_up_after=timedelta(hours=settings.give_up_after_hours),
        retention=timedelta(hours=settings.delivery_retention_hours),
    )
    kit.every("dispatcher", settings.dispatch_interval_seconds, dispatcher.dispatch_due)
    kit.every("prune-deliveries", PRUNE_INTERVAL_SECONDS, dispatcher.prune_history)
    kit.on_stop(client.aclose)
    return kit
