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
        serialize_by=lambda message: message.signal.account,
    )
    kit.consume(
        Subject.RISK_APPROVED,
        OrderApproved,
        oms.on_order_approved,
        serialize_by=lambda message: message.account,
    )
    kit.consume(
        Subject.RISK_DENIED,
        OrderDenied,
        oms.on_order_denied,
        serialize_by=lambda message: message.account,
    )
    kit.consume(
        Subject.EXEC_REPORT,
        ExecutionReport,
        oms.on_execution_report,
        serialize_by=lambda message: message.account,
    )

    kit.reply(Subject.QUERY_ORDERS, QueryOrders, queries.orders)
    kit.reply(Subject.QUERY_POSITIONS, QueryPositions, queries.positions)
    return kit
