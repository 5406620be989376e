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

# Per subject, handled at once: each waits for its account's turn, and the turns overlap the
# publishes and acks of the one before.
CONCURRENT_MESSAGES = 8


def build(settings: OrderSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or OrderSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    oms = OrderManagement(settings.market_rules())
    queries = OrderQueries(kit.db)

    # An account's signals, decisions and reports change the same positions and orders: in this
    # replica they take turns (replicas race, and the version checks settle it). Unserialised, a
    # busy position's plans kept losing the optimistic race to its fills until they were
    # dead-lettered.
    kit.consume(
        Subject.SIGNAL_ACCEPTED,
        SignalAccepted,
        oms.on_signal_accepted,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.signal.account,
    )
    kit.consume(
        Subject.RISK_APPROVED,
        OrderApproved,
        oms.on_order_approved,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.account,
    )
    kit.consume(
        Subject.RISK_DENIED,
        OrderDenied,
        oms.on_order_denied,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.account,
    )
    kit.consume(
        Subject.EXEC_REPORT,
        ExecutionReport,
        oms.on_execution_report,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.account,
    )

    kit.reply(Subject.QUERY_ORDERS, QueryOrders, queries.orders)
    kit.reply(Subject.QUERY_POSITIONS, QueryPositions, queries.positions)
    kit.metrics.measure_on_scrape("orders-by-status", OrdersByStatus(kit.db, kit.registry).measure)
    return kit
