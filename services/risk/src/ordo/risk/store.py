"""The risk service's store: trading states, the exposure it decides on, and its audit logs.

The handlers are stateless: every decision rebuilds the account's exposure from the
``positions`` projection and the open-order ``reservations`` here, so replicas agree and a restart
loses nothing. Everything that reads or changes an account's exposure first takes the account's
lock (:func:`lock_account`), so two decisions on one account never both count the same room.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    CursorResult,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.enums import TradingState
from ordo.contracts.orders import OrderProposed, OrderSpec, PositionView
from ordo.contracts.risk import DenialReason
from ordo.kit.store import (
    ConcurrentUpdate,
    ExactDecimal,
    UtcDateTime,
    dialect_of,
    insert_with_conflicts,
    messaging_tables,
    new_metadata,
)
from ordo.risk.domain.checks import DailyActivity, OrderCounts
from ordo.risk.domain.exposure import Exposure, Instrument
from ordo.risk.domain.limits import RiskLimits
from ordo.risk.domain.pricing import valuation_price
from ordo.risk.domain.quotes import Quote
from ordo.risk.domain.reservations import ReservationFills

metadata = new_metadata()
messaging = messaging_tables(metadata)


trading_states = Table(
    "trading_states",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("account", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("quantity", ExactDecimal, nullable=False, doc="Signed: short < 0"),
    Column("average_entry", ExactDecimal, nullable=True),
    Column("realised_pnl", ExactDecimal, nullable=False),
    Column("fees", ExactDecimal, nullable=False),
    Column("version", Integer, nullable=False, doc="The OMS's PositionView version"),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account", "venue", "strategy", "symbol"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", ExactDecimal, nullable=False, doc="As approved"),
    Column("remaining", ExactDecimal, nullable=False, doc="What still counts (ReservationFills)"),
    Column("filled_reported", ExactDecimal, nullable=False, doc="Per the order updates"),
    Column("filled_in_positions", ExactDecimal, nullable=False, doc="Per the position changes"),
    Column("ended", Boolean, nullable=False, doc="The order reached a terminal status"),
    Column("reduce_only", Boolean, nullable=False),
    Column("price", ExactDecimal, nullable=True, doc="The price the order is valued at"),
    Column("spec", JSON, nullable=False, doc="The approved OrderSpec (JSON mode)"),
    Column("order_version", Integer, nullable=False, doc="Last OrderView version applied; 0: none"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False, doc="Of this row (optimistic updates)"),
)
Index(
    "ix_reservations_position",
    reservations.c.account,
    reservations.c.strategy,
    reservations.c.venue,
    reservations.c.symbol,
)

decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(64), primary_key=True, doc="The published decision's message id"),
    Column("proposal_id", String(64), nullable=False, unique=True),
    Column("signal_id", String(64), nullable=False, index=True),
    Column("correlation_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("approved", Boolean, nullable=False),
    Column("reasons", JSON, nullable=False, doc="DenialReasons (JSON mode); empty when approved"),
    Column("trading_state", String(16), nullable=False),
    Column("limits", JSON, nullable=False, doc="The RiskLimits applied (JSON mode)"),
    Column("proposal", JSON, nullable=False, doc="The OrderProposed (JSON mode)"),
    Column("exposure", JSON, nullable=False, doc="Positions and reservations decided on"),
    Column("decided_at", UtcDateTime, nullable=False),
    Column(
        "inputs",
        JSON,
        nullable=True,
        doc="The rest decided on: quotes, equity, the day, the order rate (evaluation.py)",
    ),
)
Index("ix_decisions_account_decided_at", decisions.c.account, decisions.c.decided_at)


class StateChangeOutcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # the account was already in the requested state
    REFUSED = "refused"  # an incomplete request (no reason or actor)


state_changes = Table(
    "state_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("command_id", String(64), nullable=True, doc="The message that asked for it"),
    Column("at", UtcDateTime, nullable=False),
)
Index("ix_state_changes_account_at", state_changes.c.account, state_changes.c.at)

# The decision each order was in: the audit is asked by order id (`ordo risk decisions --order`).
decision_orders = Table(
    "decision_orders",
    metadata,
    Column("order_id", String(64), nullable=False),
    Column("decision_id", String(64), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False, index=True, doc="For pruning"),
    PrimaryKeyConstraint("order_id", "decision_id"),
)

DEFAULT_SCOPE = "*"
"""The ``limit_overrides`` scope of the default limits (no account name can be ``*``)."""

# Limits set at run time (ops.risk.set_limits.v1) over the configured ones: see governance.py.
limit_overrides = Table(
    "limit_overrides",
    metadata,
    Column("scope", String(64), primary_key=True, doc="An account, or * for the default"),
    Column("limits", JSON, nullable=False, doc="The limits set at run time (JSON mode)"),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

limit_changes = Table(
    "limit_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("command_id", String(64), nullable=True, doc="The message that asked for it"),
    Column("before", JSON, nullable=False, doc="The run-time overrides before"),
    Column("after", JSON, nullable=False, doc="The run-time overrides after"),
    Column("error", Text, nullable=True, doc="Why a refused request was refused"),
    Column("at", UtcDateTime, nullable=False),
)
Index("ix_limit_changes_scope_at", limit_changes.c.scope, limit_changes.c.at)

# Loser/winner offsets proposed (offset.py): one per loser position version, whichever replica
# saw it first.
offsets = Table(
    "offsets",
    metadata,
    Column("plan_id", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("loser", JSON, nullable=False, doc="The losing position and its close"),
    Column("winners", JSON, nullable=False, doc="The winners' partial closes"),
    Column("loss", ExactDecimal, nullable=False, doc="The loss the closes realise"),
    Column("covered", ExactDecimal, nullable=False, doc="The profit the winners' closes realise"),
    Column("created_at", UtcDateTime, nullable=False),
)
Index("ix_offsets_account_created_at", offsets.c.account, offsets.c.created_at)


# -- the account lock and its trading state ----------------------------------------------------


@dataclass(frozen=True)
class AccountState:
    account: str
    state: TradingState
    reason: str
    actor: str
    version: int


INITIAL_REASON = "initial state"
INITIAL_ACTOR = "risk"


async def lock_account(session: AsyncSession, account: str, now: datetime) -> AccountState:
    """Serialise everything done to ``account`` until the transaction ends; return its state.

    The row is inserted first (ACTIVE) when missing: ``ON CONFLICT DO NOTHING`` lets two
    transactions race to create it and both go on. The insert also comes first on purpose:
    on SQLite it is the statement that takes the database's single write lock, so everything read
    afterwards in this transaction is read under it (a SELECT first would read outside of any
    transaction). On PostgreSQL the row is then locked with ``SELECT ... FOR UPDATE`` (which
    SQLite does not know; its write lock already serialises).
    """
    await session.execute(
        insert_with_conflicts(session, trading_states)
        .values(
            account=account,
            state=TradingState.ACTIVE.value,
            reason=INITIAL_REASON,
            actor=INITIAL_ACTOR,
            updated_at=now,
            version=1,
        )
        .on_conflict_do_nothing(index_elements=[trading_states.c.account])
    )
    query = select(trading_states).where(trading_states.c.account == account)
    if dialect_of(session) == "postgresql":
        query = query.with_for_update()
    row = (await session.execute(query)).one()
    return AccountState(
        account=row.account,
        state=TradingState(row.state),
        reason=row.reason,
        actor=row.actor,
        version=row.version,
    )


async def save_trading_state(
    session: AsyncSession,
    loaded: AccountState,
    state: TradingState,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> None:
    result = await session.execute(
        update(trading_states)
        .where(
            trading_states.c.account == loaded.account,
            trading_states.c.version == loaded.version,
        )
        .values(
            state=state.value,
            reason=reason,
            actor=actor,
            updated_at=now,
            version=loaded.version + 1,
        )
    )
    if _rowcount(result) != 1:
        raise ConcurrentUpdate(f"trading state of {loaded.account} changed since it was loaded")


async def record_state_change(
    session: AsyncSession,
    *,
    account: str,
    from_state: TradingState,
    to_state: TradingState,
    outcome: StateChangeOutcome,
    reason: str,
    actor: str,
    command_id: str | None,
    now: datetime,
) -> None:
    await session.execute(
        insert(state_changes).values(
            account=account,
            from_state=from_state.value,
            to_state=to_state.value,
            outcome=outcome.value,
            reason=reason,
            actor=actor,
            command_id=command_id,
            at=now,
        )
    )


# -- exposure ------------------------------------------------------------------------------------


async def load_exposure(session: AsyncSession, account: str) -> Exposure:
    """The account's positions and open-order reservations, as the checks see them."""
    exposure = Exposure(account)
    for row in await session.execute(select(positions).where(positions.c.account == account)):
        exposure.apply_position(_position_view(row))
    found = await session.execute(
        select(reservations)
        .where(reservations.c.account == account)
        .order_by(reservations.c.created_at, reservations.c.order_id)
    )
    for row in found:
        exposure.reserve(OrderSpec.model_validate(row.spec), remaining=row.remaining)
    return exposure


def _position_view(row: Row[Any]) -> PositionView:
    return PositionView(
        account=row.account,
        strategy=row.strategy,
        venue=row.venue,
        symbol=row.symbol,
        quantity=row.quantity,
        average_entry=row.average_entry,
        realised_pnl=row.realised_pnl,
        fees=row.fees,
        version=row.version,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True)
class ProjectedPosition:
    version: int
    quantity: Decimal
    realised_pnl: Decimal = Decimal(0)


async def held_position(session: AsyncSession, view: PositionView) -> ProjectedPosition | None:
    row = (
        await session.execute(
            select(positions.c.version, positions.c.quantity, positions.c.realised_pnl).where(
                *_position_key(view)
            )
        )
    ).one_or_none()
    return None if row is None else ProjectedPosition(row.version, row.quantity, row.realised_pnl)


async def save_position(
    session: AsyncSession, view: PositionView, held: ProjectedPosition | None
) -> None:
    """Insert or move the projection to ``view``, which the caller found newer than ``held``."""
    values = {
        "quantity": view.quantity,
        "average_entry": view.average_entry,
        "realised_pnl": view.realised_pnl,
        "fees": view.fees,
        "version": view.version,
        "updated_at": view.updated_at,
    }
    if held is None:
        key = {
            "account": view.account,
            "venue": view.venue,
            "strategy": view.strategy,
            "symbol": view.symbol,
        }
        await session.execute(insert(positions).values(**key, **values))
        return
    result = await session.execute(
        update(positions)
        .where(*_position_key(view), positions.c.version == held.version)
        .values(**values)
    )
    if _rowcount(result) != 1:
        raise ConcurrentUpdate(f"position {view.strategy} {view.symbol} changed since it was read")


def _position_key(view: PositionView) -> tuple[Any, ...]:
    return (
        positions.c.account == view.account,
        positions.c.venue == view.venue,
        positions.c.strategy == view.strategy,
        positions.c.symbol == view.symbol,
    )


# -- reservations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredReservation:
    order_id: str
    account: str
    strategy: str
    venue: str
    symbol: str
    fills: ReservationFills
    order_version: int
    version: int

    def is_for(self, view: PositionView) -> bool:
        """True when this is an order of that position (account, strategy, venue, symbol)."""
        mine = (self.account, self.strategy, self.venue, self.symbol)
        return mine == (view.account, view.strategy, view.venue, view.symbol)


async def reserve(session: AsyncSession, orders: Sequence[OrderSpec], now: datetime) -> None:
    """Count approved orders until they have filled (and the positions show it) or ended."""
    rows = [
        {
            "order_id": spec.order_id,
            "account": spec.account,
            "venue": spec.venue,
            "strategy": spec.strategy,
            "symbol": spec.symbol,
            "side": spec.side.value,
            "quantity": spec.quantity,
            "remaining": spec.quantity,
            "filled_reported": Decimal(0),
            "filled_in_positions": Decimal(0),
            "ended": False,
            "reduce_only": spec.reduce_only,
            "price": valuation_price(spec),
            "spec": spec.model_dump(mode="json"),
            "order_version": 0,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for spec in orders
    ]
    await session.execute(insert(reservations), rows)


async def find_reservation(session: AsyncSession, order_id: str) -> StoredReservation | None:
    row = (
        await session.execute(select(reservations).where(reservations.c.order_id == order_id))
    ).one_or_none()
    return None if row is None else _stored(row)


async def reservations_of_position(
    session: AsyncSession, view: PositionView
) -> list[StoredReservation]:
    found = await session.execute(
        select(reservations).where(
            reservations.c.account == view.account,
            reservations.c.strategy == view.strategy,
            reservations.c.venue == view.venue,
            reservations.c.symbol == view.symbol,
        )
    )
    return [_stored(row) for row in found]


def _stored(row: Row[Any]) -> StoredReservation:
    return StoredReservation(
        order_id=row.order_id,
        account=row.account,
        strategy=row.strategy,
        venue=row.venue,
        symbol=row.symbol,
        fills=ReservationFills(
            quantity=row.quantity,
            filled_reported=row.filled_reported,
            filled_in_positions=row.filled_in_positions,
            ended=row.ended,
        ),
        order_version=row.order_version,
        version=row.version,
    )


async def save_reservation(
    session: AsyncSession,
    loaded: StoredReservation,
    fills: ReservationFills,
    now: datetime,
    *,
    order_version: int | None = None,
) -> None:
    """Store what the reports said; a settled reservation is deleted (it counts nothing)."""
    guard = (
        reservations.c.order_id == loaded.order_id,
        reservations.c.version == loaded.version,
    )
    if fills.settled:
        result = await session.execute(delete(reservations).where(*guard))
    else:
        result = await session.execute(
            update(reservations)
            .where(*guard)
            .values(
                remaining=fills.counted,
                filled_reported=fills.filled_reported,
                filled_in_positions=fills.filled_in_positions,
                ended=fills.ended,
                order_version=loaded.order_version if order_version is None else order_version,
                updated_at=now,
                version=loaded.version + 1,
            )
        )
    if _rowcount(result) != 1:
        raise ConcurrentUpdate(f"reservation of order {loaded.order_id} changed since it was read")


# -- decisions -----------------------------------------------------------------------------------


async def decision_exists(session: AsyncSession, proposal_id: str) -> bool:
    found = await session.scalar(
        select(decisions.c.decision_id).where(decisions.c.proposal_id == proposal_id)
    )
    return found is not None


@dataclass(frozen=True)
class DecisionRecord:
    decision_id: str
    proposal: OrderProposed
    reasons: tuple[DenialReason, ...]
    trading_state: TradingState
    limits: RiskLimits
    exposure: Exposure
    decided_at: datetime
    inputs: dict[str, Any] | None = None


async def record_decision(session: AsyncSession, record: DecisionRecord) -> None:
    """The audit row of a decision: its verdict, and every input it was made from."""
    proposal = record.proposal
    await session.execute(
        insert(decisions).values(
            decision_id=record.decision_id,
            proposal_id=proposal.proposal_id,
            signal_id=proposal.signal_id,
            correlation_id=proposal.correlation_id,
            account=proposal.account,
            approved=not record.reasons,
            reasons=[reason.model_dump(mode="json") for reason in record.reasons],
            trading_state=record.trading_state.value,
            limits=record.limits.model_dump(mode="json"),
            proposal=proposal.model_dump(mode="json", by_alias=True),
            exposure=exposure_snapshot(record.exposure),
            decided_at=record.decided_at,
            inputs=record.inputs,
        )
    )
    await session.execute(
        insert(decision_orders),
        [
            {
                "order_id": spec.order_id,
                "decision_id": record.decision_id,
                "decided_at": record.decided_at,
            }
            for spec in proposal.orders
        ],
    )


def exposure_snapshot(exposure: Exposure) -> dict[str, Any]:
    """The exposure as JSON: Decimals as strings, so the audit keeps them exact.

    Flat positions are left out: they count towards no limit, and since the projection keeps every
    position the account ever held, each decision row would otherwise grow with that history.
    """
    return {
        "account": exposure.account,
        "positions": [
            {
                "strategy": key.strategy,
                "venue": key.venue,
                "symbol": key.symbol,
                "quantity": _text(held.quantity),
                "average_entry": _text(held.average_entry),
                "version": held.version,
            }
            for key, held in sorted(exposure.positions().items())
            if held.quantity != 0
        ],
        "reservations": [
            {
                "order_id": reservation.order.order_id,
                "strategy": reservation.order.strategy,
                "venue": reservation.order.venue,
                "symbol": reservation.order.symbol,
                "side": reservation.order.side.value,
                "reduce_only": reservation.order.reduce_only,
                "remaining": _text(reservation.remaining),
                "price": _text(valuation_price(reservation.order)),
            }
            for reservation in exposure.reservations()
        ],
    }


async def prune_audit(session: AsyncSession, older_than: datetime) -> int:
    """Forget decisions and state changes made before ``older_than``; returns how many rows.

    Account by account, so that the deletes use the (account, time) indexes.
    """
    accounts = (await session.execute(select(trading_states.c.account))).scalars().all()
    removed = 0
    for account in accounts:
        removed += _rowcount(
            await session.execute(
                delete(decisions).where(
                    decisions.c.account == account, decisions.c.decided_at < older_than
                )
            )
        )
        removed += _rowcount(
            await session.execute(
                delete(state_changes).where(
                    state_changes.c.account == account, state_changes.c.at < older_than
                )
            )
        )
    return removed


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


# == what the pre-trade checks read besides the exposure ==========================================
# Quotes, the day's activity, the equity peak and the order-rate window: kept here, not in memory,
# so that every replica and a restarted one decide the same.

quotes = Table(
    "quotes",
    metadata,
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("bid", ExactDecimal, nullable=True),
    Column("ask", ExactDecimal, nullable=True),
    Column("last", ExactDecimal, nullable=False),
    Column("quoted_at", UtcDateTime, nullable=False, doc="The newest quote wins"),
    PrimaryKeyConstraint("venue", "symbol"),
)

daily_activity = Table(
    "daily_activity",
    metadata,
    Column("account", String(64), nullable=False),
    Column("day", String(10), nullable=False, doc="The UTC day, YYYY-MM-DD"),
    Column("traded_notional", ExactDecimal, nullable=False, doc="Notional approved that day"),
    Column("realised_pnl", ExactDecimal, nullable=False, doc="Realised P&L that day (after fees)"),
    PrimaryKeyConstraint("account", "day"),
)

equity_peaks = Table(
    "equity_peaks",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("peak", ExactDecimal, nullable=False, doc="The highest equity seen"),
    Column("at", UtcDateTime, nullable=False),
)

# The limit breaches that halted an account automatically, one row per account and cause while
# it lasts (evaluation.py): a breach halts once, so an operator who then lets the account reduce is
# not overruled on the next quote; a breach that ends and comes back halts again.
breaches = Table(
    "breaches",
    metadata,
    Column("account", String(64), nullable=False),
    Column("cause", String(32), nullable=False),
    Column("episode", String(32), nullable=False, doc="The UTC day of a daily limit, else ''"),
    Column("since", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account", "cause"),
)

# Every quote asks which accounts hold its instrument (their equity moved).
Index("ix_positions_instrument", positions.c.venue, positions.c.symbol)

order_rate = Table(
    "order_rate",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False, doc="When it was approved"),
)
Index("ix_order_rate_account_at", order_rate.c.account, order_rate.c.at)


async def save_quote(session: AsyncSession, quote: Quote) -> bool:
    """Keep ``quote`` unless a newer one is held; whether it was kept."""
    values = {
        "bid": quote.bid,
        "ask": quote.ask,
        "last": quote.last,
        "quoted_at": quote.quoted_at,
    }
    statement = (
        insert_with_conflicts(session, quotes)
        .values(venue=quote.venue, symbol=quote.symbol, **values)
        .on_conflict_do_update(
            index_elements=[quotes.c.venue, quotes.c.symbol],
            set_=values,
            where=quotes.c.quoted_at < quote.quoted_at,
        )
    )
    return _rowcount(await session.execute(statement)) == 1


async def load_quotes(
    session: AsyncSession, instruments: Iterable[Instrument]
) -> dict[Instrument, Quote]:
    wanted = set(instruments)
    if not wanted:
        return {}
    venues = {instrument.venue for instrument in wanted}
    symbols = {instrument.symbol for instrument in wanted}
    found = await session.execute(
        select(quotes).where(quotes.c.venue.in_(venues), quotes.c.symbol.in_(symbols))
    )
    held = (
        Quote(row.venue, row.symbol, row.bid, row.ask, row.last, row.quoted_at) for row in found
    )
    return {quote.instrument: quote for quote in held if quote.instrument in wanted}


async def accounts_holding(session: AsyncSession, venue: str, symbol: str) -> list[str]:
    """The accounts with an open position in the instrument (their equity moves with it)."""
    found = await session.execute(
        select(positions.c.account, positions.c.quantity).where(
            positions.c.venue == venue, positions.c.symbol == symbol
        )
    )
    # Amounts are text on SQLite: "is it zero" is asked of the Decimal, not in SQL.
    return sorted({account for account, quantity in found.all() if quantity != 0})


async def load_daily_activity(session: AsyncSession, account: str, day: date) -> DailyActivity:
    row = (
        await session.execute(
            select(daily_activity).where(
                daily_activity.c.account == account, daily_activity.c.day == day.isoformat()
            )
        )
    ).one_or_none()
    if row is None:
        return DailyActivity()
    return DailyActivity(traded_notional=row.traded_notional, realised_pnl=row.realised_pnl)


async def add_daily_activity(
    session: AsyncSession,
    account: str,
    day: date,
    *,
    traded_notional: Decimal = Decimal(0),
    realised_pnl: Decimal = Decimal(0),
) -> DailyActivity:
    """Add to the account's counters of ``day`` (under the account's lock); returns the sums."""
    held = await load_daily_activity(session, account, day)
    summed = DailyActivity(
        traded_notional=held.traded_notional + traded_notional,
        realised_pnl=held.realised_pnl + realised_pnl,
    )
    key = {"account": account, "day": day.isoformat()}
    values = {"traded_notional": summed.traded_notional, "realised_pnl": summed.realised_pnl}
    await session.execute(
        insert_with_conflicts(session, daily_activity)
        .values(**key, **values)
        .on_conflict_do_update(
            index_elements=[daily_activity.c.account, daily_activity.c.day], set_=values
        )
    )
    return summed


async def load_equity_peak(session: AsyncSession, account: str) -> Decimal | None:
    found: Decimal | None = await session.scalar(
        select(equity_peaks.c.peak).where(equity_peaks.c.account == account)
    )
    return found


async def raise_equity_peak(
    session: AsyncSession, account: str, equity: Decimal, now: datetime
) -> Decimal:
    """Make ``equity`` the peak if it is higher; returns the peak.

    Compare-and-set on the value read, without the account's lock: quotes move every account's
    equity and must not queue behind decisions. (Amounts are text on SQLite, so the comparison
    is made here, not in SQL.)
    """
    while True:
        peak = await load_equity_peak(session, account)
        if peak is None:
            inserted = await session.execute(
                insert_with_conflicts(session, equity_peaks)
                .values(account=account, peak=equity, at=now)
                .on_conflict_do_nothing(index_elements=[equity_peaks.c.account])
            )
            if _rowcount(inserted) == 1:
                return equity
            continue
        if peak >= equity:
            return peak
        raised = await session.execute(
            update(equity_peaks)
            .where(equity_peaks.c.account == account, equity_peaks.c.peak == peak)
            .values(peak=equity, at=now)
        )
        if _rowcount(raised) == 1:
            return equity


async def accounts_with_equity_peaks(session: AsyncSession) -> list[str]:
    return list((await session.execute(select(equity_peaks.c.account))).scalars())


async def forget_equity_peaks(session: AsyncSession, accounts: Sequence[str]) -> None:
    """The next valuation of each account starts its peak again (its capital changed)."""
    await session.execute(delete(equity_peaks).where(equity_peaks.c.account.in_(list(accounts))))


async def count_recent_orders(session: AsyncSession, account: str, since: datetime) -> OrderCounts:
    """Orders of the account approved after ``since``, in all and by strategy."""
    found = await session.execute(
        select(order_rate.c.strategy, func.count())
        .where(order_rate.c.account == account, order_rate.c.at > since)
        .group_by(order_rate.c.strategy)
    )
    by_strategy = {strategy: count for strategy, count in found.all()}
    return OrderCounts(account=sum(by_strategy.values()), by_strategy=by_strategy)


async def record_recent_orders(
    session: AsyncSession, orders: Sequence[OrderSpec], now: datetime
) -> None:
    rows = [
        {"order_id": o.order_id, "account": o.account, "strategy": o.strategy, "at": now}
        for o in orders
    ]
    await session.execute(insert(order_rate), rows)


async def prune_recent_orders(session: AsyncSession, account: str, older_than: datetime) -> None:
    await session.execute(
        delete(order_rate).where(order_rate.c.account == account, order_rate.c.at <= older_than)
    )


async def start_breach(
    session: AsyncSession, account: str, cause: str, episode: str, now: datetime
) -> bool:
    """Record that ``account`` breaches ``cause`` in ``episode`` (under the account's lock);
    whether this breach is new (not recorded for this episode already)."""
    held = await session.scalar(
        select(breaches.c.episode).where(breaches.c.account == account, breaches.c.cause == cause)
    )
    if held == episode:
        return False
    values = {"episode": episode, "since": now}
    await session.execute(
        insert_with_conflicts(session, breaches)
        .values(account=account, cause=cause, **values)
        .on_conflict_do_update(index_elements=[breaches.c.account, breaches.c.cause], set_=values)
    )
    return True


async def end_breach(session: AsyncSession, account: str, cause: str) -> None:
    """The breach is over: the next one halts again. Reads first, as this runs on every quote."""
    held = await session.scalar(
        select(breaches.c.episode).where(breaches.c.account == account, breaches.c.cause == cause)
    )
    if held is not None:
        await session.execute(
            delete(breaches).where(breaches.c.account == account, breaches.c.cause == cause)
        )
