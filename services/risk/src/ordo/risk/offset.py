"""The loser/winner offset engine: every ``risk.offset.interval_seconds``, per account.

It values the account's position groups at their trusted marks, asks
:func:`ordo.risk.domain.offset.plan_offset` for a plan, and proposes the closes as signals
(``SubmitSignal`` with source ``strategy``) through the signal service and the OMS, like any other
order: never to execution directly, and every close still passes the risk gate.

Nothing is proposed twice: a plan is recorded in ``offsets`` under the account's lock, keyed by the
loser's position and version, and the signals' idempotency keys derive from the plan. Every group a
recorded plan closes (loser or winner) is left out of later plans until its position version
moves: until then its close is still on its way to the gate, and a second plan would count the
same quantity again (closing a winner twice, past what it holds). A group with orders working (an
open reservation) is left out too: its quantity is about to change.

Marks are the last trusted quotes, and a quote is only trusted within the account's
``quote_max_age_seconds``: an account without one gets no offset (a stopped feed would otherwise
keep showing a loss, or a profit, long gone).
"""

import hashlib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

from ordo.contracts.enums import Intent, SignalSource, SizeUnit, TradingState
from ordo.contracts.envelope import new_message_id
from ordo.contracts.signals import SignalRequest, Size, SubmitSignal
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Outbox, Transaction
from ordo.kit.store import Database
from ordo.risk import store
from ordo.risk.domain.exposure import Exposure
from ordo.risk.domain.limits import AccountLimits, RiskLimits
from ordo.risk.domain.offset import Close, Group, GroupKey, OffsetPlan, OffsetSettings, plan_offset
from ordo.risk.domain.quotes import trusted_mark
from ordo.risk.governance import limits_in_force

PRODUCER = "risk"

log = get_logger(__name__)

Clock = Callable[[], datetime]


class OffsetEngine:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        configured: AccountLimits,
        settings: OffsetSettings,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._configured = configured
        self._settings = settings
        self._clock = clock

    async def run(self) -> None:
        """One pass over every account with an open position."""
        for account in await self._accounts_holding():
            with bound_contextvars(account=account):
                try:
                    await self.check(account)
                except Exception:
                    # One account's trouble must not stop the offset of the accounts after it.
                    log.exception("loser/winner offset check failed")

    async def check(self, account: str) -> OffsetPlan | None:
        """Propose the account's offset, if it has one that was not proposed before."""
        async with self._outbox.transaction() as tx:
            now = self._clock()
            state = await store.lock_account(tx.session, account, now)
            if state.state is TradingState.HALTED:
                return None  # nothing but cancels: the closes would only be refused
            in_force = await limits_in_force(tx.session, self._configured, account)
            limits = in_force.limits_for(account)
            if limits.quote_max_age_seconds is None:
                log.error("no offset: the account's limits set no quote_max_age_seconds")
                return None
            exposure = await store.load_exposure(tx.session, account)
            planned = await _planned_groups(tx.session, account)
            groups = await _groups(tx.session, exposure, limits, planned, now)
            plan = plan_offset(groups, self._settings)
            if plan is None:
                return None
            plan_id = _plan_id(account, plan.loser.group)
            await _record(tx.session, plan_id, account, plan, now)
            _propose(tx, plan_id, account, plan)
        log.warning(
            "loser/winner offset proposed",
            plan_id=plan_id,
            loser=plan.loser.group.key.strategy,
            symbol=plan.loser.group.key.symbol,
            loss=str(plan.loss),
            covered=str(plan.covered),
            winners=len(plan.winners),
        )
        return plan

    async def _accounts_holding(self) -> list[str]:
        async with self._db.session() as session:
            found = await session.execute(
                select(store.positions.c.account, store.positions.c.quantity)
            )
            # Amounts are text on SQLite: "is it zero" is asked of the Decimal, not in SQL.
            return sorted({account for account, quantity in found if quantity != 0})


async def _groups(
    session: AsyncSession,
    exposure: Exposure,
    limits: RiskLimits,
    planned: set[tuple[GroupKey, int]],
    now: datetime,
) -> list[Group]:
    """The open positions at rest (no order working on them, no close planned at their version)
    that have a trusted mark."""
    working = {reservation.key for reservation in exposure.reservations()}
    at_rest = [
        (key, position.quantity, position.average_entry, position.version)
        for key, position in exposure.positions().items()
        if position.quantity != 0
        and position.average_entry is not None
        and key not in working
        and (GroupKey(key.strategy, key.venue, key.symbol), position.version) not in planned
    ]
    quotes = await store.load_quotes(session, {key.instrument for key, *_ in at_rest})
    groups = []
    for key, quantity, entry, version in at_rest:
        mark = trusted_mark(key.instrument, quotes.get(key.instrument), limits, now)
        if not isinstance(mark, Decimal):
            log.info("no trusted mark; left out of the offset", reason=mark.message)
            continue
        group_key = GroupKey(key.strategy, key.venue, key.symbol)
        groups.append(Group(group_key, quantity, entry, mark, version))
    return groups


def _plan_id(account: str, loser: Group) -> str:
    """The same loser at the same position version is one plan, whoever finds it."""
    key = loser.key
    text = f"{account}|{key.strategy}|{key.venue}|{key.symbol}|{loser.version}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


async def _planned_groups(session: AsyncSession, account: str) -> set[tuple[GroupKey, int]]:
    """Every group the account's recorded plans close, at the position version they saw."""
    found = await session.execute(
        select(store.offsets.c.loser, store.offsets.c.winners).where(
            store.offsets.c.account == account
        )
    )
    return {
        (GroupKey(close["strategy"], close["venue"], close["symbol"]), close["version"])
        for loser, winners in found
        for close in (loser, *winners)
    }


async def _record(
    session: AsyncSession, plan_id: str, account: str, plan: OffsetPlan, now: datetime
) -> None:
    await session.execute(
        insert(store.offsets).values(
            plan_id=plan_id,
            account=account,
            loser=_close_json(plan.loser),
            winners=[_close_json(close) for close in plan.winners],
            loss=plan.loss,
            covered=plan.covered,
            created_at=now,
        )
    )


def _close_json(close: Close) -> dict[str, object]:
    group = close.group
    return {
        "strategy": group.key.strategy,
        "venue": group.key.venue,
        "symbol": group.key.symbol,
        "held": format(group.quantity, "f"),
        "average_entry": format(group.average_entry, "f"),
        "mark": format(group.mark, "f"),
        "version": group.version,
        "close": format(close.quantity, "f"),
        "realised": format(close.realised, "f"),
    }


def _propose(tx: Transaction, plan_id: str, account: str, plan: OffsetPlan) -> None:
    # One flow per plan: the loser's close and the winners' share its correlation id.
    correlation_id = new_message_id()
    for leg, close in enumerate(plan.closes):
        tx.publish(
            SubmitSignal(
                correlation_id=correlation_id,
                producer=PRODUCER,
                idempotency_key=f"risk-offset:{plan_id}:{leg}",
                source=SignalSource.STRATEGY,
                signal=_closing_signal(account, close, plan_id),
            )
        )


def _closing_signal(account: str, close: Close, plan_id: str) -> SignalRequest:
    group = close.group
    return SignalRequest(
        account=account,
        strategy=group.key.strategy,
        venue=group.key.venue,
        symbol=group.key.symbol,
        intent=_intent(close),
        size=Size(unit=SizeUnit.QUANTITY, value=close.quantity),
        reference_price=group.mark,
        comment=f"loser/winner offset {plan_id}: {'close' if close.whole else 'reduce'} "
        f"{close.quantity} at {group.mark}, realising {close.realised:.2f}",
    )


def _intent(close: Close) -> Intent:
    if not close.whole:
        return Intent.REDUCE
    return Intent.EXIT_LONG if close.group.quantity > 0 else Intent.EXIT_SHORT
