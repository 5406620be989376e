"""Wiring of the notifier: subscriptions, channels and the dispatcher."""

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


def build(settings: NotifierSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or NotifierSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    client = httpx.AsyncClient(timeout=10.0)
    channels = configured_channels(settings, client)
    notifications = Notifications(tuple(channels), settings.routes)

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
        kit.db, channels, kit.breakers, max_attempts=settings.max_delivery_attempts
    )
    kit.every("dispatcher", settings.dispatch_interval_seconds, dispatcher.dispatch_due)
    kit.on_stop(client.aclose)
    return kit
