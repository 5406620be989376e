"""The risk audit, asked over NATS: decisions with their inputs, state and limit changes, limits.

Answers ``query.risk.decisions.v1``, ``query.risk.audit.v1`` and ``query.risk.limits.v1`` (the
operator's ``ordo risk ...`` commands), from the store that every replica shares.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.enums import TradingState
from ordo.contracts.orders import OrderProposed
from ordo.contracts.risk import (
    DenialReason,
    LimitChangeRecord,
    QueryRiskAudit,
    QueryRiskDecisions,
    QueryRiskLimits,
    RiskAuditView,
    RiskDecisionRecord,
    RiskDecisionsView,
    RiskLimitsView,
    TradingStateRecord,
)
from ordo.kit.store import Database
from ordo.risk import store
from ordo.risk.domain.limits import AccountLimits
from ordo.risk.governance import limits_as_json, load_overrides, with_overrides
from ordo.risk.store import DEFAULT_SCOPE

PRODUCER = "risk"


class RiskQueries:
    """The responders; each reads in a session of its own and changes nothing."""

    def __init__(self, db: Database, configured: AccountLimits) -> None:
        self._db = db
        self._configured = configured

    async def decisions(self, query: QueryRiskDecisions) -> RiskDecisionsView:
        async with self._db.session() as session:
            found = await session.execute(_decisions_matching(query))
            records = tuple(_decision_record(row) for row in found)
        return RiskDecisionsView.caused_by(query, producer=PRODUCER, decisions=records)

    async def audit(self, query: QueryRiskAudit) -> RiskAuditView:
        async with self._db.session() as session:
            states = await session.execute(_state_changes_matching(query))
            limits = await session.execute(_limit_changes_matching(query))
            return RiskAuditView.caused_by(
                query,
                producer=PRODUCER,
                state_changes=tuple(_state_record(row) for row in states),
                limit_changes=tuple(_limit_record(row) for row in limits),
            )

    async def limits(self, query: QueryRiskLimits) -> RiskLimitsView:
        scope = query.account or DEFAULT_SCOPE
        async with self._db.session() as session:
            overrides = await load_overrides(session, (DEFAULT_SCOPE, scope))
            state = None
            if query.account is not None:
                state = await _trading_state(session, query.account)
        in_force = with_overrides(self._configured, overrides)
        if query.account is None:
            effective, configured = in_force.default, self._configured.default
        else:
            effective = in_force.limits_for(query.account)
            configured = self._configured.limits_for(query.account)
        return RiskLimitsView.caused_by(
            query,
            producer=PRODUCER,
            account=query.account,
            effective=limits_as_json(effective),
            configured=limits_as_json(configured),
            overrides=overrides.get(scope, {}),
            trading_state=state,
        )


# -- decisions -----------------------------------------------------------------------------------


def _decisions_matching(query: QueryRiskDecisions) -> Select[Any]:
    table = store.decisions
    wanted = select(table)
    if query.order_id is not None:
        in_decision = select(store.decision_orders.c.decision_id).where(
            store.decision_orders.c.order_id == query.order_id
        )
        wanted = wanted.where(table.c.decision_id.in_(in_decision))
    for column, value in (
        (table.c.proposal_id, query.proposal_id),
        (table.c.signal_id, query.signal_id),
        (table.c.account, query.account),
    ):
        if value is not None:
            wanted = wanted.where(column == value)
    wanted = _within(wanted, table.c.decided_at, query.since, query.until)
    return wanted.order_by(table.c.decided_at.desc(), table.c.decision_id.desc()).limit(query.limit)


def _decision_record(row: Any) -> RiskDecisionRecord:
    proposal = OrderProposed.model_validate(row.proposal)
    return RiskDecisionRecord(
        decision_id=row.decision_id,
        proposal_id=row.proposal_id,
        signal_id=row.signal_id,
        correlation_id=row.correlation_id,
        account=row.account,
        approved=row.approved,
        reasons=tuple(DenialReason.model_validate(reason) for reason in row.reasons),
        trading_state=TradingState(row.trading_state),
        orders=proposal.orders,
        limits=row.limits,
        exposure=row.exposure,
        inputs=row.inputs or {},  # decisions made before the inputs were recorded have none
        decided_at=row.decided_at,
    )


# -- state and limit changes ---------------------------------------------------------------------


def _state_changes_matching(query: QueryRiskAudit) -> Select[Any]:
    table = store.state_changes
    wanted = select(table)
    if query.account is not None:
        wanted = wanted.where(table.c.account == query.account)
    wanted = _within(wanted, table.c.at, query.since, query.until)
    return wanted.order_by(table.c.at.desc(), table.c.id.desc()).limit(query.limit)


def _limit_changes_matching(query: QueryRiskAudit) -> Select[Any]:
    table = store.limit_changes
    wanted = select(table)
    if query.account is not None:
        # The default's changes apply to the account too.
        wanted = wanted.where(or_(table.c.scope == query.account, table.c.scope == DEFAULT_SCOPE))
    wanted = _within(wanted, table.c.at, query.since, query.until)
    return wanted.order_by(table.c.at.desc(), table.c.id.desc()).limit(query.limit)


def _state_record(row: Any) -> TradingStateRecord:
    return TradingStateRecord(
        account=row.account,
        from_state=TradingState(row.from_state),
        to_state=TradingState(row.to_state),
        outcome=row.outcome,
        reason=row.reason,
        actor=row.actor,
        command_id=row.command_id,
        at=row.at,
    )


def _limit_record(row: Any) -> LimitChangeRecord:
    return LimitChangeRecord(
        account=None if row.scope == DEFAULT_SCOPE else row.scope,
        outcome=row.outcome,
        reason=row.reason,
        actor=row.actor,
        command_id=row.command_id,
        before=row.before,
        after=row.after,
        error=row.error,
        at=row.at,
    )


async def _trading_state(session: AsyncSession, account: str) -> TradingState:
    table = store.trading_states
    state = await session.scalar(select(table.c.state).where(table.c.account == account))
    # An account the gate has not seen yet starts ACTIVE (store.lock_account).
    return TradingState.ACTIVE if state is None else TradingState(state)


def _within(
    query: Select[Any], column: Any, since: datetime | None, until: datetime | None
) -> Select[Any]:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


# -- housekeeping --------------------------------------------------------------------------------


async def prune(session: AsyncSession, older_than: datetime) -> int:
    """Forget the order index of old decisions, old limit changes and old offsets."""
    removed = 0
    for table, column in (
        (store.decision_orders, store.decision_orders.c.decided_at),
        (store.limit_changes, store.limit_changes.c.at),
        (store.offsets, store.offsets.c.created_at),
    ):
        result: Any = await session.execute(delete(table).where(column < older_than))
        removed += result.rowcount
    return removed
