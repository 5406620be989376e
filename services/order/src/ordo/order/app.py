"""Wiring of the OMS: its consumers, its query responders, and its store."""

from ordo.contracts.execution import ExecutionReport
from ordo.contracts.groups import QueryGroups, QueryQueue
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import RebalancePortfolio
from ordo.contracts.queries import QueryOrders, QueryPositions, QueryRebalances, QuerySignals
from ordo.contracts.risk import OrderApproved, OrderDenied, TradingStateChanged
from ordo.contracts.signals import SignalAccepted
from ordo.contracts.subjects import Subject
from ordo.kit.service import ServiceKit
from ordo.order import store
from ordo.order.config import OrderSettings
from ordo.order.group_handlers import GroupQueries
from ordo.order.handlers import OrderManagement, OrderQueries
from ordo.order.market_handlers import (
    MarketWatch,
    OrderExpiry,
    OrderPlacement,
    RebalanceSettings,
    Rebalancing,
)
from ordo.order.metrics import OrdersByStatus

# Per subject, handled at once: each waits for its account's turn, and the turns overlap the
# publishes and acks of the one before.
CONCURRENT_MESSAGES = 8
# How often GTD/DAY orders past their expiry are looked for (and canceled).
EXPIRY_CHECK_SECONDS = 1.0


def build(settings: OrderSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or OrderSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    strategies = {name: strategy.plan for name, strategy in settings.strategies.items()}
    oms = OrderManagement(
        settings.market_rules(),
        strategies=strategies,
        max_open_groups=settings.pool.max_open_groups_of,
        capital=settings.capital,
    )
    queries = OrderQueries(kit.db)
    placement = OrderPlacement(settings.venue_capabilities(), oms.settle_order)
    oms.use_placement(placement)
    market_watch = MarketWatch(oms.settle_order_and_group)
    rebalancing = Rebalancing(
        settings.market_rules(),
        RebalanceSettings(
            settings.capital,
            settings.rebalance.min_trade_notional,
            settings.rebalance.max_mark_age_seconds,
        ),
        placement,
    )
    oms.follow_orders(rebalancing.on_order_settled)
    expiry = OrderExpiry(kit.outbox, kit.db, oms.settle_order_and_group)
    kit.every("order-expiry", EXPIRY_CHECK_SECONDS, expiry.run)
    group_queries = GroupQueries(kit.db, strategies, settings.pool.max_open_groups_of)

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

    # A market's quotes take turns (its held orders and its mark); markets run side by side.
    kit.consume(
        Subject.MARKET_QUOTE,
        MarketQuote,
        market_watch.on_market_quote,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: (message.venue, message.symbol),
    )
    kit.consume(
        Subject.ORDER_REBALANCE,
        RebalancePortfolio,
        rebalancing.on_rebalance,
        serialize_by=lambda message: message.account,
    )

    # The OMS refuses new exposure early while an account is halted or reducing (the risk
    # gate denies it too), which keeps its groups and queue consistent.
    kit.consume(
        Subject.RISK_STATE,
        TradingStateChanged,
        oms.groups.on_trading_state,
        serialize_by=lambda message: message.account,
    )
    kit.reply(Subject.QUERY_GROUPS, QueryGroups, group_queries.groups)
    kit.reply(Subject.QUERY_QUEUE, QueryQueue, group_queries.queue)
    kit.reply(Subject.QUERY_ORDERS, QueryOrders, queries.orders)
    kit.reply(Subject.QUERY_POSITIONS, QueryPositions, queries.positions)
    kit.reply(Subject.QUERY_SIGNALS, QuerySignals, queries.signals)
    kit.reply(Subject.QUERY_REBALANCES, QueryRebalances, queries.rebalances)
    kit.metrics.measure_on_scrape("orders-by-status", OrdersByStatus(kit.db, kit.registry).measure)
    return kit
