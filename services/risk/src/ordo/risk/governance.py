"""Governing the risk gate at run time: limits changed by operators, automatic halts.

Limits: the config file's ``risk.limits`` are the base; an operator's ``SetRiskLimits`` stores
some limits of one account (or of the default) over them, in ``limit_overrides``. Every decision
reads the overrides of its account and of the default from the store, inside its own transaction
(:func:`limits_in_force`): a change is in force on every replica from the next decision on, with
no cache to invalidate and no restart.

Halts: a critical reconciliation mismatch halts the account (:meth:`GovernanceHandlers.
discrepancy_found`); like every automatic switch it only ever tightens the state, and its
``TradingStateChanged`` is the alert (the notifier tells people about every state change).
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

from ordo.contracts.enums import Severity, TradingState
from ordo.contracts.envelope import Message
from ordo.contracts.reconciliation import DiscrepancyFound
from ordo.contracts.risk import LimitValue, SetRiskLimits, TradingStateChanged
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Transaction
from ordo.kit.store import ConcurrentUpdate, dialect_of, insert_with_conflicts
from ordo.risk import store
from ordo.risk.domain.limits import AccountLimits, RiskLimits
from ordo.risk.domain.state import StateChange, tighten
from ordo.risk.store import DEFAULT_SCOPE, AccountState, StateChangeOutcome

PRODUCER = "risk"
AUTOMATIC_ACTOR = "risk"
MAX_REASON = 1000

log = get_logger(__name__)

Clock = Callable[[], datetime]
Overrides = dict[str, LimitValue]


# -- the limits in force -------------------------------------------------------------------------


async def limits_in_force(
    session: AsyncSession, configured: AccountLimits, account: str
) -> AccountLimits:
    """The configured limits with the run-time overrides of the default and of ``account`` on top.

    The evaluation path calls this once per decision, after locking the account, and asks the
    result for ``limits_for(account)`` as it would ask the configured limits.
    """
    overrides = await load_overrides(session, (DEFAULT_SCOPE, account))
    return with_overrides(configured, overrides)


def with_overrides(configured: AccountLimits, overrides: Mapping[str, Overrides]) -> AccountLimits:
    """``configured`` with each scope's stored limits on top (more specific wins: an account's
    configured limit beats a run-time default, its run-time limit beats both)."""
    if not overrides:
        return configured
    default = configured.default
    if DEFAULT_SCOPE in overrides:
        default = default.overridden_by(RiskLimits.model_validate(overrides[DEFAULT_SCOPE]))
    accounts = dict(configured.accounts)
    for scope, values in overrides.items():
        if scope != DEFAULT_SCOPE:
            accounts[scope] = _account_override(configured.accounts.get(scope), values)
    return configured.model_copy(update={"default": default, "accounts": accounts})


def _account_override(configured: RiskLimits | None, values: Overrides) -> RiskLimits:
    run_time = RiskLimits.model_validate(values)
    return run_time if configured is None else configured.overridden_by(run_time)


async def load_overrides(
    session: AsyncSession, scopes: Iterable[str] | None = None
) -> dict[str, Overrides]:
    """Scope → its run-time limits (JSON), for ``scopes`` or for every scope."""
    query = select(store.limit_overrides.c.scope, store.limit_overrides.c.limits)
    if scopes is not None:
        query = query.where(store.limit_overrides.c.scope.in_(list(scopes)))
    return {row.scope: dict(row.limits) for row in await session.execute(query)}


def limits_as_json(limits: RiskLimits, *, only_set: bool = False) -> Overrides:
    fields = limits.model_fields_set if only_set else None
    dumped: Overrides = limits.model_dump(mode="json", include=fields)
    return dumped


async def check_stored_limits(session: AsyncSession, configured: AccountLimits) -> list[str]:
    """What is wrong with the stored limits on top of ``configured`` (empty: nothing).

    Both were valid together when set; a new config file, or a limit renamed in the code, may
    make them invalid since. Every decision of an account whose limits do not validate fails (and
    is dead-lettered with an alert) rather than trade under limits nobody chose.
    """
    problems = []
    for scope, values in (await load_overrides(session)).items():
        try:
            _require_complete(with_overrides(configured, {scope: values}))
        except (LimitsRefused, ValidationError) as error:
            problems.append(f"{'the default' if scope == DEFAULT_SCOPE else scope}: {error}")
    return problems


# -- the handlers --------------------------------------------------------------------------------


class LimitsRefused(ValueError):
    """A limits change that cannot be made; the message says which limit and why."""


class GovernanceHandlers:
    """Consumers of ``ops.risk.set_limits.v1`` and ``recon.discrepancy.v1``."""

    def __init__(self, configured: AccountLimits, *, clock: Clock = utc_now) -> None:
        self._configured = configured
        self._clock = clock

    async def set_risk_limits(self, command: SetRiskLimits, tx: Transaction) -> None:
        """Store the operator's limits over the configured ones; audit it, applied or refused.

        Bad input is audited and logged, not raised: it would fail the same way on every retry.
        """
        scope = command.account or DEFAULT_SCOPE
        with bound_contextvars(scope=scope, operator=command.operator):
            now = self._clock()
            before = await _lock_overrides(tx.session, scope, now)
            try:
                after = await self._validated(tx.session, scope, before, command)
            except LimitsRefused as refusal:
                log.warning("risk limits change refused", error=str(refusal))
                await _audit(tx.session, command, scope, "refused", before, before, now, refusal)
                return
            outcome = "unchanged" if after == before else "applied"
            if outcome == "applied":
                await _save_overrides(tx.session, scope, after, command, now)
                await self._restart_equity_peaks(tx.session, scope, before)
            await _audit(tx.session, command, scope, outcome, before, after, now)
            log.warning("risk limits changed", outcome=outcome, before=before, after=after)

    async def _validated(
        self, session: AsyncSession, scope: str, before: Overrides, command: SetRiskLimits
    ) -> Overrides:
        if not command.changes and not command.reset:
            raise LimitsRefused("the request names no limit to change or reset")
        both = sorted(set(command.changes) & set(command.reset))
        if both:
            raise LimitsRefused(f"a limit is either changed or reset, not both: {', '.join(both)}")
        wanted = {**before, **command.changes}
        for name in command.reset:
            wanted.pop(name, None)
        try:
            limits = RiskLimits.model_validate(wanted)
        except ValidationError as error:
            raise LimitsRefused(_problems(error)) from None
        after = limits_as_json(limits, only_set=True)
        others = await load_overrides(session)
        others[scope] = after
        try:
            in_force = with_overrides(self._configured, others)
        except ValidationError as error:  # another scope's stored limits no longer validate
            raise LimitsRefused(_problems(error)) from None
        _require_complete(in_force)
        return after

    async def _restart_equity_peaks(
        self, session: AsyncSession, scope: str, before: Overrides
    ) -> None:
        """Forget the equity peak of every account whose starting capital the change moved.

        The peak was measured on the old capital: after a withdrawal the account would be in a
        drawdown nobody lost (and halt on the next quote), after a deposit the peak would lag. The
        next valuation starts it again at the higher of the equity and the new capital.
        """
        now_in_force = await load_overrides(session)
        was_in_force = {**now_in_force, scope: before}
        old = with_overrides(self._configured, was_in_force)
        new = with_overrides(self._configured, now_in_force)
        accounts = await store.accounts_with_equity_peaks(session)
        moved = [
            account
            for account in accounts
            if old.limits_for(account).starting_capital != new.limits_for(account).starting_capital
        ]
        if moved:
            await store.forget_equity_peaks(session, moved)
            log.warning("equity peaks restarted: the starting capital changed", accounts=moved)

    async def discrepancy_found(self, found: DiscrepancyFound, tx: Transaction) -> None:
        """A critical reconciliation mismatch halts the account until an operator resumes it."""
        if found.severity is not Severity.CRITICAL:
            return
        with bound_contextvars(account=found.account, run_id=found.run_id):
            now = self._clock()
            current = await store.lock_account(tx.session, found.account, now)
            reason = _discrepancy_reason(found)
            change = tighten(current.state, TradingState.HALTED, reason, AUTOMATIC_ACTOR)
            await switch_state(tx, current, change, found, reason=reason, now=now)


async def switch_state(
    tx: Transaction,
    current: AccountState,
    change: StateChange | None,
    cause: Message,
    *,
    reason: str,
    now: datetime,
) -> None:
    """Apply an automatic switch (or audit that it changed nothing) and announce it."""
    await store.record_state_change(
        tx.session,
        account=current.account,
        from_state=current.state,
        to_state=TradingState.HALTED if change is None else change.state,
        outcome=StateChangeOutcome.UNCHANGED if change is None else StateChangeOutcome.APPLIED,
        reason=reason,
        actor=AUTOMATIC_ACTOR,
        command_id=cause.message_id,
        now=now,
    )
    if change is None:
        log.info("account already halted", state=current.state.value, reason=reason)
        return
    await apply_state_change(tx, current, change, cause, now)
    log.warning("trading state switched automatically", state=change.state.value, reason=reason)


async def apply_state_change(
    tx: Transaction, current: AccountState, change: StateChange, cause: Message, now: datetime
) -> None:
    """Save the account's new state and announce it on ``risk.state.v1`` (the notifier alerts)."""
    await store.save_trading_state(
        tx.session, current, change.state, reason=change.reason, actor=change.actor, now=now
    )
    tx.publish(
        TradingStateChanged.caused_by(
            cause,
            producer=PRODUCER,
            account=current.account,
            state=change.state,
            previous=change.previous,
            reason=change.reason,
            actor=change.actor,
        )
    )


def _discrepancy_reason(found: DiscrepancyFound) -> str:
    where = f"{found.symbol} at {found.venue}" if found.symbol else found.venue
    reason = (
        f"critical reconciliation mismatch ({found.kind.value}) in {where}: {found.detail} "
        f"[run {found.run_id}]"
    )
    return reason[:MAX_REASON]


# -- the store -----------------------------------------------------------------------------------


async def _lock_overrides(session: AsyncSession, scope: str, now: datetime) -> Overrides:
    """Take the scope's row for this transaction (created empty when missing); its limits.

    The same pattern as :func:`store.lock_account`: two replicas changing one scope at once take
    turns, so neither change is lost.
    """
    table = store.limit_overrides
    await session.execute(
        insert_with_conflicts(session, table)
        .values(
            scope=scope,
            limits={},
            reason="nothing set at run time",
            actor=AUTOMATIC_ACTOR,
            updated_at=now,
            version=0,
        )
        .on_conflict_do_nothing(index_elements=[table.c.scope])
    )
    query = select(table.c.limits).where(table.c.scope == scope)
    if dialect_of(session) == "postgresql":
        query = query.with_for_update()
    return dict((await session.execute(query)).scalar_one())


async def _save_overrides(
    session: AsyncSession, scope: str, limits: Overrides, command: SetRiskLimits, now: datetime
) -> None:
    table = store.limit_overrides
    result: Any = await session.execute(
        update(table)
        .where(table.c.scope == scope)
        .values(
            limits=limits,
            reason=command.reason,
            actor=command.operator,
            updated_at=now,
            version=table.c.version + 1,
        )
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(f"the limit overrides of {scope} disappeared while locked")


async def _audit(
    session: AsyncSession,
    command: SetRiskLimits,
    scope: str,
    outcome: str,
    before: Overrides,
    after: Overrides,
    now: datetime,
    refusal: LimitsRefused | None = None,
) -> None:
    await session.execute(
        insert(store.limit_changes).values(
            scope=scope,
            outcome=outcome,
            reason=command.reason,
            actor=command.operator,
            command_id=command.message_id,
            before=before,
            after=after,
            error=None if refusal is None else str(refusal),
            at=now,
        )
    )


def _require_complete(limits: AccountLimits) -> None:
    """Refuse a combination the config file would have been refused for (start-up's checks)."""
    try:
        AccountLimits.model_validate(limits.model_dump(exclude_unset=True))
    except ValidationError as error:
        raise LimitsRefused(_problems(error)) from None


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'limits'}: {item['msg']}"
        for item in error.errors()
    )
