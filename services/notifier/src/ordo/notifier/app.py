"""Wiring of the notifier: subscriptions, channels, the dispatcher, the report and pruning."""

import logging
from datetime import timedelta

import httpx

from ordo.contracts.execution import ExecutionReport, VenueStatusChanged
from ordo.contracts.orders import PositionChanged
from ordo.contracts.reconciliation import DiscrepancyFound
from ordo.contracts.reports import QueryDailyReport
from ordo.contracts.risk import OrderDenied, TradingStateChanged
from ordo.contracts.subjects import Subject
from ordo.kit.service import ServiceKit
from ordo.notifier import store
from ordo.notifier.channels import configured_channels
from ordo.notifier.config import NotifierSettings
from ordo.notifier.dispatcher import Dispatcher
from ordo.notifier.domain import notifications as render
from ordo.notifier.handlers import Notifications, on_position_changed
from ordo.notifier.reports import Reports

PRUNE_INTERVAL_SECONDS = 3600.0
REPORT_CHECK_SECONDS = 30.0


def build(settings: NotifierSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or NotifierSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    # httpx logs every request's URL at INFO: the Telegram bot token is in it.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # Each channel sets its own timeout on its calls.
    client = httpx.AsyncClient()
    channels = configured_channels(settings, client)
    notifications = Notifications(
        {name: channel.attachments for name, channel in channels.items()},
        settings.routes,
        dedupe_window=timedelta(seconds=settings.dedupe_window_seconds),
    )

    kit.consume_dead_letters(notifications.on_dead_letter)
    kit.consume(
        Subject.EXEC_REPORT, ExecutionReport, notifications.handler(render.for_execution_report)
    )
    kit.consume(Subject.RISK_DENIED, OrderDenied, notifications.handler(render.for_denial))
    kit.consume(
        Subject.RISK_STATE, TradingStateChanged, notifications.handler(render.for_trading_state)
    )
    kit.consume(
        Subject.EXEC_VENUE, VenueStatusChanged, notifications.handler(render.for_venue_status)
    )
    kit.consume(
        Subject.RECON_DISCREPANCY, DiscrepancyFound, notifications.handler(render.for_discrepancy)
    )
    kit.consume(Subject.POSITION_CHANGED, PositionChanged, on_position_changed)

    dispatcher = Dispatcher(
        kit.db,
        channels,
        kit.breakers,
        rate_limits=settings.channels.rate_limits(),
        give_up_after=timedelta(hours=settings.give_up_after_hours),
        retention=timedelta(hours=settings.delivery_retention_hours),
        digest_max_lines=settings.digest_max_lines,
    )
    kit.on_start(dispatcher.give_up_unconfigured)
    kit.every("dispatcher", settings.dispatch_interval_seconds, dispatcher.dispatch_due)
    kit.every("prune-deliveries", PRUNE_INTERVAL_SECONDS, dispatcher.prune_history)

    reports = Reports(kit.db, settings.report, notifications)
    kit.reply(Subject.QUERY_REPORT, QueryDailyReport, reports.answer)
    if settings.report.scheduled:
        kit.every("daily-report", REPORT_CHECK_SECONDS, reports.send_when_due)
    kit.every("prune-position-changes", PRUNE_INTERVAL_SECONDS, reports.prune_history)
    kit.on_stop(client.aclose)
    return kit
