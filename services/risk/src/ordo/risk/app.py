"""Wiring of the risk gate: its consumers and the audit pruner, on the kit."""

from datetime import timedelta

from ordo.contracts.orders import OrderProposed, OrderUpdated, PositionChanged
from ordo.contracts.risk import SetTradingState
from ordo.contracts.subjects import Subject
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.service import ServiceKit
from ordo.risk import store
from ordo.risk.config import RiskSettings
from ordo.risk.handlers import RiskHandlers
from ordo.risk.metrics import RiskMetrics

log = get_logger(__name__)

AUDIT_PRUNE_INTERVAL_SECONDS = 3600.0


# Per subject, handled at once: each waits for its account's turn, and the turns overlap the
# publishes and acks of the one before.
CONCURRENT_MESSAGES = 8


def build(settings: RiskSettings | None = None, *, telemetry: bool = True) -> ServiceKit:
    settings = settings or RiskSettings()
    kit = ServiceKit(settings, metadata=store.metadata, tables=store.messaging, telemetry=telemetry)
    handlers = RiskHandlers(settings.limits, metrics=RiskMetrics(kit.registry))

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

    async def announce_limits() -> None:
        log.info("risk limits loaded", limits=settings.limits.model_dump(mode="json"))

    async def prune_audit() -> None:
        older_than = utc_now() - timedelta(days=settings.audit_retention_days)
        async with kit.db.session() as session:
            pruned = await store.prune_audit(session, older_than)
            await session.commit()
        if pruned:
            log.info("old audit rows pruned", count=pruned, older_than=older_than.isoformat())

    kit.on_start(announce_limits)
    kit.every("audit-pruner", AUDIT_PRUNE_INTERVAL_SECONDS, prune_audit)
    return kit
