"""Wiring of the risk gate: its consumers and the audit pruner, on the kit."""

from datetime import timedelta

from redis.asyncio import Redis

from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import OrderProposed, OrderUpdated, PositionChanged
from ordo.contracts.reconciliation import DiscrepancyFound
from ordo.contracts.risk import (
    QueryRiskAudit,
    QueryRiskDecisions,
    QueryRiskLimits,
    SetRiskLimits,
    SetTradingState,
)
from ordo.contracts.subjects import Subject
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.service import ServiceKit
from ordo.risk import audit, store
from ordo.risk.config import RiskSettings
from ordo.risk.governance import GovernanceHandlers, check_stored_limits
from ordo.risk.handlers import RiskHandlers
from ordo.risk.metrics import RiskMetrics
from ordo.risk.offset import OffsetEngine
from ordo.risk.rate import OrderRate, RedisOrderRate, StoreOrderRate
from ordo.risk.startup import RETRY_INTERVAL_SECONDS, PositionSync

log = get_logger(__name__)

AUDIT_PRUNE_INTERVAL_SECONDS = 3600.0


# Per subject, handled at once: each waits for its account's turn, and the turns overlap the
# publishes and acks of the one before.
CONCURRENT_MESSAGES = 8

# Redis only counts the order rate; a slow Redis must not hold up decisions (the store takes over).
REDIS_TIMEOUT_SECONDS = 0.5


def build(settings: RiskSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or RiskSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    handlers = RiskHandlers(
        settings.limits,
        metrics=RiskMetrics(kit.registry),
        order_rate=_order_rate(kit, settings),
    )

    # Everything about one account changes its exposure: in this replica the handlers take
    # turns per account (replicas still race, and the account's version row settles it).
    kit.consume(
        Subject.ORDER_PROPOSED,
        OrderProposed,
        handlers.order_proposed,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.account,
    )
    kit.consume(
        Subject.ORDER_UPDATED,
        OrderUpdated,
        handlers.order_updated,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.order.account,
    )
    kit.consume(
        Subject.POSITION_CHANGED,
        PositionChanged,
        handlers.position_changed,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.position.account,
    )
    kit.consume(
        Subject.OPS_SET_TRADING_STATE,
        SetTradingState,
        handlers.set_trading_state,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.account,
    )
    # Every second per symbol: per instrument in turn, so that the newest quote wins cheaply.
    kit.consume(
        Subject.MARKET_QUOTE,
        MarketQuote,
        handlers.market_quote,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: f"{message.venue}|{message.symbol}",
    )
    _govern(kit, settings)

    async def announce_limits() -> None:
        log.info("risk limits loaded", limits=settings.limits.model_dump(mode="json"))
        async with kit.db.session() as session:
            for problem in await check_stored_limits(session, settings.limits):
                log.error("limits set at run time no longer fit the configuration", problem=problem)

    async def prune_audit() -> None:
        older_than = utc_now() - timedelta(days=settings.audit_retention_days)
        async with kit.db.session() as session:
            pruned = await store.prune_audit(session, older_than)
            pruned += await audit.prune(session, older_than)
            await session.commit()
        if pruned:
            log.info("old audit rows pruned", count=pruned, older_than=older_than.isoformat())

    position_sync = PositionSync(kit, handlers, settings.position_sync_seconds)
    kit.on_start(announce_limits)
    kit.on_start(position_sync.at_start)
    kit.every("position-sync", RETRY_INTERVAL_SECONDS, position_sync.until_synced)
    kit.every("audit-pruner", AUDIT_PRUNE_INTERVAL_SECONDS, prune_audit)
    return kit


def _govern(kit: ServiceKit, settings: RiskSettings) -> None:
    """Run-time limits, automatic halts on critical mismatches, the audit's queries, and the
    loser/winner offset when it is enabled."""
    governance = GovernanceHandlers(settings.limits)
    kit.consume(Subject.OPS_SET_RISK_LIMITS, SetRiskLimits, governance.set_risk_limits)
    kit.consume(
        Subject.RECON_DISCREPANCY,
        DiscrepancyFound,
        governance.discrepancy_found,
        max_workers=CONCURRENT_MESSAGES,
        serialize_by=lambda message: message.account,
    )
    queries = audit.RiskQueries(kit.db, settings.limits)
    kit.reply(Subject.QUERY_RISK_DECISIONS, QueryRiskDecisions, queries.decisions)
    kit.reply(Subject.QUERY_RISK_AUDIT, QueryRiskAudit, queries.audit)
    kit.reply(Subject.QUERY_RISK_LIMITS, QueryRiskLimits, queries.limits)
    if settings.offset.enabled:
        offsets = OffsetEngine(kit.db, kit.outbox, settings.limits, settings.offset)
        kit.every("loser-winner-offset", settings.offset.interval_seconds, offsets.run)


def _order_rate(kit: ServiceKit, settings: RiskSettings) -> OrderRate:
    """The order-rate window: in Redis, shared by every replica, or in the risk store."""
    if not settings.redis_url:
        log.warning("order rate counted in the risk store: no Redis is configured")
        return StoreOrderRate()
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    kit.on_stop(redis.aclose)
    return RedisOrderRate(redis)
