"""Wiring of the OMS: its consumers, its query responders, and its store."""

from ordo.contracts.execution import ExecutionReport
from ordo.contracts.queries import QueryOrders, QueryPositions
from ordo.contracts.risk import OrderApproved, OrderDenied
from ordo.contracts.signals import SignalAccepted
from ordo.contracts.subjects import Subject
from ordo.kit.service import ServiceKit
from ordo.order import store
from ordo.order.config import OrderSettings
from ordo.order.handlers import OrderManagement, OrderQueries
from ordo.order.metrics import OrdersByStatus


def build(settings: OrderSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or OrderSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    oms = OrderManagement(settings.market_rules())
    queries = OrderQueries(kit.db)

    kit.consume(Subject.SIGNAL_ACCEPTED, SignalAccepted, oms.on_signal_accepted)
    kit.consume(Subject.RISK_APPROVED, OrderApproved, oms.on_order_approved)
    kit.consume(Subject.RISK_DENIED, OrderDenied, oms.on_order_denied)
    kit.consume(Subject.EXEC_REPORT, ExecutionReport, oms.on_execution_report)

    kit.reply(Subject.QUERY_ORDERS, QueryOrders, queries.orders)
    kit.reply(Subject.QUERY_POSITIONS, QueryPositions, queries.positions)
    kit.metrics.measure_on_scrape("orders-by-status", OrdersByStatus(kit.db, kit.registry).measure)
    return kit
