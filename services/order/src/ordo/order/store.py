"""The OMS's store: orders, their applied fills and events, positions, and what became of signals.

Repositories load and save the domain objects on the unit of work's session. Saves are
optimistic: an update names the version it loaded (``WHERE ... AND version = :loaded``) and a
save that changes no row, or an insert that finds the row already there, raises
:class:`ConcurrentUpdate`. The kit then retries the whole message, which reloads fresh state.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
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
    and_,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from ordo.contracts.enums import Intent, OrderStatus, OrderType, Side, SignalOutcome, TimeInForce
from ordo.contracts.execution import Fill
from ordo.contracts.orders import OrderView, PositionView
from ordo.contracts.queries import SignalOutcomeView
from ordo.kit.store import (
    ConcurrentUpdate,
    ExactDecimal,
    UtcDateTime,
    messaging_tables,
    new_metadata,
)
from ordo.order.domain import Order, OrderChanged, Position

metadata = new_metadata()
messaging = messaging_tables(metadata)

ZERO = Decimal(0)


orders = Table(
    "orders",
    metadata,
    Column("order_id", String(36), primary_key=True, doc="The client order id"),
    Column("signal_id", String(64), nullable=False, index=True),
    Column("proposal_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(16), nullable=False),
    Column("time_in_force", String(8), nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("limit_price", ExactDecimal, nullable=True),
    Column("stop_price", ExactDecimal, nullable=True),
    Column("reduce_only", Boolean, nullable=False),
    Column("post_only", Boolean, nullable=False),
    Column("reference_price", ExactDecimal, nullable=True),
    Column("trailing_amount", ExactDecimal, nullable=True),
    Column("trailing_percent", ExactDecimal, nullable=True),
    Column("expire_at", UtcDateTime, nullable=True, doc="GTD, or DAY at the session close"),
    Column("emulated", Boolean, nullable=False, server_default=false(), doc="Held by the OMS"),
    Column("released_at", UtcDateTime, nullable=True, doc="When a held order's trigger fired"),
    Column("status", String(16), nullable=False),
    Column("filled_quantity", ExactDecimal, nullable=False),
    Column("average_fill_price", ExactDecimal, nullable=True),
    Column("fees", ExactDecimal, nullable=False),
    Column("venue_order_id", String(128), nullable=True),
    Column("reason", Text, nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_orders_account_created", orders.c.account, orders.c.created_at)
Index("ix_orders_created", orders.c.created_at)
# The GTD/DAY orders whose expiry has passed, which the OMS looks for every second.
Index("ix_orders_expire_at", orders.c.expire_at)
# The working orders of one position, which planning reads for every signal.
Index(
    "ix_orders_position_status",
    orders.c.account,
    orders.c.strategy,
    orders.c.venue,
    orders.c.symbol,
    orders.c.status,
)

# The fills applied to each order: the order's memory of which fill ids it has seen. The key is
# (order_id, fill_id), as in the domain: a fill id is unique per venue at best (the paper venue
# numbers its orders per account), so two orders may legitimately carry the same fill id.
order_fills = Table(
    "order_fills",
    metadata,
    Column("order_id", String(36), nullable=False),
    Column("fill_id", String(128), nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("fee", ExactDecimal, nullable=False),
    Column("fee_currency", String(16), nullable=False),
    Column("liquidity", String(8), nullable=False),
    Column("filled_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("order_id", "fill_id"),
)

# Append-only history: one row per version an order reached.
order_events = Table(
    "order_events",
    metadata,
    Column("order_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("detail", Text, nullable=True),
    PrimaryKeyConstraint("order_id", "version"),
)

positions = Table(
    "positions",
    metadata,
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("quantity", ExactDecimal, nullable=False, doc="Signed: short < 0"),
    Column("average_entry", ExactDecimal, nullable=True),
    Column("realised_pnl", ExactDecimal, nullable=False),
    Column("fees", ExactDecimal, nullable=False),
    Column("open_entry_fees", ExactDecimal, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account", "strategy", "venue", "symbol"),
)


# What became of every accepted signal. Its key makes planning a signal a once-only act, however
# the signal arrives; an unplannable signal leaves its reason here for the desk to query.
signal_outcomes = Table(
    "signal_outcomes",
    metadata,
    Column("signal_id", String(64), primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("proposal_id", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("intent", String(16), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

AnyRow = Row[*tuple[Any, ...]]

PositionKey = tuple[str, str, str, str]
"""(account, strategy, venue, symbol)"""


def _changed_rows(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


# --- orders -----------------------------------------------------------------------------------

_UNFINISHED = [status.value for status in OrderStatus if not status.is_terminal]


def _order_values(order: Order) -> dict[str, Any]:
    """The columns of ``order`` that a save writes (everything but the key)."""
    return {
        "signal_id": order.signal_id,
        "proposal_id": order.proposal_id,
        "account": order.account,
        "strategy": order.strategy,
        "venue": order.venue,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "time_in_force": order.time_in_force.value,
        "quantity": order.quantity,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "reduce_only": order.reduce_only,
        "post_only": order.post_only,
        "reference_price": order.reference_price,
        "trailing_amount": order.trailing_amount,
        "trailing_percent": order.trailing_percent,
        "expire_at": order.expire_at,
        "emulated": order.emulated,
        "released_at": order.released_at,
        "status": order.status.value,
        "filled_quantity": order.filled_quantity,
        "average_fill_price": order.average_fill_price,
        "fees": order.fees,
        "venue_order_id": order.venue_order_id,
        "reason": order.reason,
        "version": order.version,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def _order_from(row: AnyRow, fills: Sequence[AnyRow]) -> Order:
    return Order(
        order_id=row.order_id,
        signal_id=row.signal_id,
        proposal_id=row.proposal_id,
        account=row.account,
        strategy=row.strategy,
        venue=row.venue,
        symbol=row.symbol,
        side=Side(row.side),
        order_type=OrderType(row.order_type),
        time_in_force=TimeInForce(row.time_in_force),
        quantity=row.quantity,
        limit_price=row.limit_price,
        stop_price=row.stop_price,
        reduce_only=row.reduce_only,
        post_only=row.post_only,
        reference_price=row.reference_price,
        trailing_amount=row.trailing_amount,
        trailing_percent=row.trailing_percent,
        expire_at=row.expire_at,
        emulated=row.emulated,
        released_at=row.released_at,
        status=OrderStatus(row.status),
        filled_quantity=row.filled_quantity,
        average_fill_price=row.average_fill_price,
        fees=row.fees,
        venue_order_id=row.venue_order_id,
        reason=row.reason,
        fill_ids={fill.fill_id for fill in fills},
        fills_quantity=sum((fill.quantity for fill in fills), ZERO),
        fills_notional=sum((fill.quantity * fill.price for fill in fills), ZERO),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _order_view_from(row: AnyRow) -> OrderView:
    values = row._mapping
    return OrderView.model_validate({name: values[name] for name in OrderView.model_fields})


class OrderRepository:
    """Orders of one unit of work; it remembers the version of every order it loaded."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._loaded_versions: dict[str, int] = {}

    async def get(self, order_id: str) -> Order | None:
        row = (
            await self._session.execute(select(orders).where(orders.c.order_id == order_id))
        ).one_or_none()
        if row is None:
            return None
        fills = (
            await self._session.execute(
                select(order_fills.c.fill_id, order_fills.c.quantity, order_fills.c.price).where(
                    order_fills.c.order_id == order_id
                )
            )
        ).all()
        order = _order_from(row, fills)
        self._loaded_versions[order_id] = order.version
        return order

    async def working_orders_of(
        self, account: str, strategy: str, venue: str, symbol: str, *, reducing: bool = False
    ) -> list[Order]:
        """The orders of one position that are not finished (and so may still fill); with
        ``reducing``, only its reduce-only ones (the exits on their way)."""
        query = (
            select(orders.c.order_id)
            .where(
                orders.c.account == account,
                orders.c.strategy == strategy,
                orders.c.venue == venue,
                orders.c.symbol == symbol,
                orders.c.status.in_(_UNFINISHED),
            )
            .order_by(orders.c.created_at, orders.c.order_id)
        )
        if reducing:
            query = query.where(orders.c.reduce_only.is_(True))
        found = []
        for order_id in (await self._session.scalars(query)).all():
            order = await self.get(order_id)
            if order is not None:
                found.append(order)
        return found

    async def save(self, order: Order) -> None:
        """Insert a new order, or update a loaded one if nobody changed it in between."""
        loaded = self._loaded_versions.get(order.order_id)
        if loaded is None:
            await self._insert(order)
        elif order.version != loaded:
            await self._update(order, loaded)
        self._loaded_versions[order.order_id] = order.version

    async def _insert(self, order: Order) -> None:
        try:
            await self._session.execute(
                insert(orders).values(order_id=order.order_id, **_order_values(order))
            )
        except IntegrityError as exc:
            raise ConcurrentUpdate(f"order {order.order_id} already exists") from exc

    async def _update(self, order: Order, loaded_version: int) -> None:
        result = await self._session.execute(
            update(orders)
            .where(orders.c.order_id == order.order_id, orders.c.version == loaded_version)
            .values(**_order_values(order))
        )
        if _changed_rows(result) != 1:
            raise ConcurrentUpdate(
                f"order {order.order_id} changed since it was loaded at version {loaded_version}"
            )

    async def record_fill(self, order_id: str, fill: Fill) -> None:
        """Remember a fill as applied to the order; save the order first (its version guards)."""
        try:
            await self._session.execute(
                insert(order_fills).values(
                    order_id=order_id,
                    fill_id=fill.fill_id,
                    quantity=fill.quantity,
                    price=fill.price,
                    fee=fill.fee,
                    fee_currency=fill.fee_currency,
                    liquidity=fill.liquidity,
                    filled_at=fill.filled_at,
                )
            )
        except IntegrityError as exc:
            raise ConcurrentUpdate(
                f"fill {fill.fill_id} of order {order_id} was applied concurrently"
            ) from exc

    async def record_event(self, event: OrderChanged, at: datetime, detail: str | None) -> None:
        await self._session.execute(
            insert(order_events).values(
                order_id=event.order_id,
                version=event.version,
                status=event.status.value,
                at=at,
                detail=detail,
            )
        )


async def find_orders(
    session: AsyncSession,
    *,
    account: str | None = None,
    order_id: str | None = None,
    signal_id: str | None = None,
    status: OrderStatus | None = None,
    limit: int = 100,
    strategy: str | None = None,
    symbol: str | None = None,
    open_only: bool = False,
) -> list[OrderView]:
    """Views of the orders that match every given filter, newest first."""
    query = select(orders)
    if account is not None:
        query = query.where(orders.c.account == account)
    if strategy is not None:
        query = query.where(orders.c.strategy == strategy)
    if symbol is not None:
        query = query.where(orders.c.symbol == symbol)
    if open_only:
        query = query.where(orders.c.status.in_(_UNFINISHED))
    if order_id is not None:
        query = query.where(orders.c.order_id == order_id)
    if signal_id is not None:
        query = query.where(orders.c.signal_id == signal_id)
    if status is not None:
        query = query.where(orders.c.status == status.value)
    query = query.order_by(orders.c.created_at.desc(), orders.c.order_id.desc()).limit(limit)
    return [_order_view_from(row) for row in (await session.execute(query)).all()]


async def count_orders_by_status(session: AsyncSession) -> dict[OrderStatus, int]:
    """How many orders the store holds in each status (statuses no order is in are left out)."""
    query = select(orders.c.status, func.count()).group_by(orders.c.status)
    return {OrderStatus(status): count for status, count in (await session.execute(query)).all()}


async def order_events_of(session: AsyncSession, order_id: str) -> list[dict[str, Any]]:
    """The history of one order, oldest first."""
    query = (
        select(order_events)
        .where(order_events.c.order_id == order_id)
        .order_by(order_events.c.version)
    )
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


# --- positions --------------------------------------------------------------------------------


def _position_key(position: Position) -> PositionKey:
    return (position.account, position.strategy, position.venue, position.symbol)


def _position_values(position: Position) -> dict[str, Any]:
    return {
        "quantity": position.quantity,
        "average_entry": position.average_entry,
        "realised_pnl": position.realised_pnl,
        "fees": position.fees,
        "open_entry_fees": position.open_entry_fees,
        "version": position.version,
        "updated_at": position.updated_at,
    }


def _position_from(row: AnyRow) -> Position:
    return Position(
        account=row.account,
        strategy=row.strategy,
        venue=row.venue,
        symbol=row.symbol,
        quantity=row.quantity,
        average_entry=row.average_entry,
        realised_pnl=row.realised_pnl,
        fees=row.fees,
        open_entry_fees=row.open_entry_fees,
        version=row.version,
        updated_at=row.updated_at,
    )


class PositionRepository:
    """Positions of one unit of work; it remembers the version of every position it loaded."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._loaded_versions: dict[PositionKey, int] = {}

    async def get(self, account: str, strategy: str, venue: str, symbol: str) -> Position | None:
        row = (
            await self._session.execute(
                select(positions).where(
                    positions.c.account == account,
                    positions.c.strategy == strategy,
                    positions.c.venue == venue,
                    positions.c.symbol == symbol,
                )
            )
        ).one_or_none()
        if row is None:
            return None
        position = _position_from(row)
        self._loaded_versions[_position_key(position)] = position.version
        return position

    async def save(self, position: Position) -> None:
        """Insert a position seen for the first time, or update a loaded one optimistically."""
        key = _position_key(position)
        loaded = self._loaded_versions.get(key)
        if loaded is None:
            await self._insert(position)
        elif position.version != loaded:
            await self._update(position, loaded)
        self._loaded_versions[key] = position.version

    async def claim(self, position: Position) -> None:
        """Stake a decision on the loaded ``position`` (an exit sized to it and its working
        orders): of two units of work that decide on, or change, the same version of it, one
        raises :class:`ConcurrentUpdate` and runs again on what the other did."""
        position.version += 1
        await self.save(position)

    async def _insert(self, position: Position) -> None:
        account, strategy, venue, symbol = _position_key(position)
        try:
            await self._session.execute(
                insert(positions).values(
                    account=account,
                    strategy=strategy,
                    venue=venue,
                    symbol=symbol,
                    **_position_values(position),
                )
            )
        except IntegrityError as exc:
            raise ConcurrentUpdate(
                f"position {'/'.join(_position_key(position))} was opened concurrently"
            ) from exc

    async def _update(self, position: Position, loaded_version: int) -> None:
        account, strategy, venue, symbol = _position_key(position)
        result = await self._session.execute(
            update(positions)
            .where(
                positions.c.account == account,
                positions.c.strategy == strategy,
                positions.c.venue == venue,
                positions.c.symbol == symbol,
                positions.c.version == loaded_version,
            )
            .values(**_position_values(position))
        )
        if _changed_rows(result) != 1:
            raise ConcurrentUpdate(
                f"position {'/'.join(_position_key(position))} changed since it was loaded at "
                f"version {loaded_version}"
            )


async def find_positions(
    session: AsyncSession,
    *,
    account: str | None = None,
    venue: str | None = None,
    include_flat: bool = False,
    strategy: str | None = None,
) -> list[PositionView]:
    query = select(positions)
    if account is not None:
        query = query.where(positions.c.account == account)
    if strategy is not None:
        query = query.where(positions.c.strategy == strategy)
    if venue is not None:
        query = query.where(positions.c.venue == venue)
    query = query.order_by(
        positions.c.account, positions.c.strategy, positions.c.venue, positions.c.symbol
    )
    found = [_position_from(row) for row in (await session.execute(query)).all()]
    # Flatness is decided on the Decimal: SQLite keeps "0" and "0.0000" as different texts.
    return [position.to_view() for position in found if include_flat or not position.is_flat]


# --- signals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalRecord:
    """What became of one accepted signal."""

    signal_id: str
    outcome: SignalOutcome
    account: str
    strategy: str
    venue: str
    symbol: str
    intent: Intent
    recorded_at: datetime
    proposal_id: str | None = None
    reason: str | None = None


class SignalOutcomeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, signal_id: str) -> SignalRecord | None:
        row = (
            await self._session.execute(
                select(signal_outcomes).where(signal_outcomes.c.signal_id == signal_id)
            )
        ).one_or_none()
        if row is None:
            return None
        values = dict(row._mapping)
        outcome, intent = SignalOutcome(values.pop("outcome")), Intent(values.pop("intent"))
        return SignalRecord(**values, outcome=outcome, intent=intent)

    async def add(self, record: SignalRecord) -> None:
        """Record the outcome; a second outcome for the same signal is a concurrent attempt."""
        values = {**asdict(record), "outcome": record.outcome.value, "intent": record.intent.value}
        try:
            await self._session.execute(insert(signal_outcomes).values(**values))
        except IntegrityError as exc:
            raise ConcurrentUpdate(
                f"signal {record.signal_id} was planned concurrently elsewhere"
            ) from exc

    async def dequeued(
        self,
        signal_id: str,
        outcome: SignalOutcome,
        reason: str | None,
        proposal_id: str | None = None,
    ) -> None:
        """A queued signal's outcome once its group left the queue (the group's own version
        check makes this a once-only act)."""
        await self._session.execute(
            update(signal_outcomes)
            .where(signal_outcomes.c.signal_id == signal_id)
            .values(outcome=outcome.value, reason=reason, proposal_id=proposal_id)
        )


class Repositories:
    """Every repository of one unit of work, on its session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.orders = OrderRepository(session)
        self.positions = PositionRepository(session)
        self.signals = SignalOutcomeRepository(session)


# === position groups, the execution pool and trading states (issue #4) ========================
# Kept in their own block: the tables, the repositories and the read side of `ordo groups` and
# `ordo queue`. The repositories live in ordo.order.group_store, which imports these tables.

position_groups = Table(
    "position_groups",
    metadata,
    Column("group_id", String(36), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("signal_id", String(64), nullable=False),
    Column("pyramids", Integer, nullable=False),
    Column("stop_price", ExactDecimal, nullable=True, doc="The entry signal's own stop (bracket)"),
    Column("reason", Text, nullable=True),
    Column("queued_signal", Text, nullable=True, doc="A waiting group's entry signal (JSON)"),
    # account/strategy/venue/symbol while the group is open, NULL once closed: one open group
    # per key, enforced by the database against two replicas opening it at once.
    Column("open_key", String(300), nullable=True, unique=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("enqueued_at", UtcDateTime, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
)
Index("ix_position_groups_account_status", position_groups.c.account, position_groups.c.status)

# Which group each of its orders belongs to, and what the order does for it.
group_orders = Table(
    "group_orders",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("group_id", String(36), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("parent_order_id", String(36), nullable=True),
)

# One row per account: its version is claimed by every change to who holds a slot (two
# replicas cannot both give the last slot away), and it remembers the last group that closed.
account_pools = Table(
    "account_pools",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("last_closed_symbol", String(64), nullable=True),
    Column("last_closed_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False),
)

# Each account's trading state as the risk service last announced it (risk.state.v1).
trading_states = Table(
    "trading_states",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False, doc="When risk switched it"),
)


# === order types, marks and rebalancing (issue #4) ============================================
# Kept in their own block: the tables behind emulated orders, marks and rebalances. Their
# repositories live in ordo.order.market_store, which imports these tables.

# The newest quote per venue + symbol: the mark of unrealised P&L and of rebalances.
marks = Table(
    "marks",
    metadata,
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("price", ExactDecimal, nullable=False, doc="The quote's last price"),
    Column("quoted_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("venue", "symbol"),
)

# One row per order the OMS holds for a venue that lacks its type, until it is released.
order_watches = Table(
    "order_watches",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("placed_at", UtcDateTime, nullable=False),
    Column("best_price", ExactDecimal, nullable=True, doc="A trailing stop's best since placed"),
    Column("version", Integer, nullable=False),
)
Index("ix_order_watches_market", order_watches.c.venue, order_watches.c.symbol)

# Each rebalance command and how far it got: selling → buying → done (or refused, with why).
# Its orders carry the signal id "rebalance:<rebalance_id>".
rebalances = Table(
    "rebalances",
    metadata,
    Column("rebalance_id", String(36), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("targets", Text, nullable=False, doc="JSON: symbol → weight (Decimal text)"),
    Column("reserve", ExactDecimal, nullable=False),
    Column("phase", String(16), nullable=False),
    Column("detail", Text, nullable=True, doc="Why refused, or the trades skipped"),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)


async def find_signal_outcomes(
    session: AsyncSession,
    *,
    signal_id: str | None = None,
    account: str | None = None,
    outcome: SignalOutcome | None = None,
    limit: int = 100,
    after_signal_id: str | None = None,
) -> list[SignalOutcomeView]:
    """What became of accepted signals, newest first. A planned signal whose orders the risk gate
    denied, every one, reads as DENIED with the denial as its reason."""
    query = select(signal_outcomes)
    if signal_id is not None:
        query = query.where(signal_outcomes.c.signal_id == signal_id)
    if account is not None:
        query = query.where(signal_outcomes.c.account == account)
    if after_signal_id is not None:
        query = query.where(await _listed_after(session, after_signal_id))
    if outcome is not None:
        query = query.where(_has_outcome(outcome))
    query = query.order_by(
        signal_outcomes.c.recorded_at.desc(), signal_outcomes.c.signal_id.desc()
    ).limit(limit)
    rows = [dict(row._mapping) for row in (await session.execute(query)).all()]
    denials = await _denials_of(
        session, [row["signal_id"] for row in rows if row["outcome"] == SignalOutcome.PLANNED]
    )
    return [
        SignalOutcomeView.model_validate(
            row
            if (denial := denials.get(row["signal_id"])) is None
            else {**row, "outcome": SignalOutcome.DENIED, "reason": denial}
        )
        for row in rows
    ]


def _has_outcome(outcome: SignalOutcome) -> ColumnElement[bool]:
    """The signals that read as ``outcome``, in SQL, so that a filtered page is a full page.
    DENIED is never stored: it is a PLANNED signal whose every order the risk gate denied."""
    if outcome not in (SignalOutcome.PLANNED, SignalOutcome.DENIED):
        return signal_outcomes.c.outcome == outcome.value
    of_the_signal = orders.c.signal_id == signal_outcomes.c.signal_id
    denied = and_(
        exists().where(of_the_signal),
        ~exists().where(of_the_signal, orders.c.status != OrderStatus.DENIED.value),
    )
    planned = signal_outcomes.c.outcome == SignalOutcome.PLANNED.value
    return and_(planned, denied if outcome is SignalOutcome.DENIED else ~denied)


async def _listed_after(session: AsyncSession, signal_id: str) -> ColumnElement[bool]:
    """Outcomes listed after ``signal_id``'s (newest first; ties by signal id): a page cursor
    that neither skips nor repeats outcomes recorded at the same moment."""
    recorded_at = await session.scalar(
        select(signal_outcomes.c.recorded_at).where(signal_outcomes.c.signal_id == signal_id)
    )
    if recorded_at is None:
        return false()  # an unknown cursor: nothing comes after it
    return or_(
        signal_outcomes.c.recorded_at < recorded_at,
        and_(
            signal_outcomes.c.recorded_at == recorded_at,
            signal_outcomes.c.signal_id < signal_id,
        ),
    )


_IN_CHUNK = 500  # ids per IN (...) list: well inside every database's parameter limit


async def _denials_of(session: AsyncSession, signal_ids: Sequence[str]) -> dict[str, str]:
    """signal id → the denial of its orders, for the signals whose every order was DENIED."""
    statuses: dict[str, set[str]] = {}
    reasons: dict[str, str] = {}
    for start in range(0, len(signal_ids), _IN_CHUNK):
        chunk = signal_ids[start : start + _IN_CHUNK]
        query = select(orders.c.signal_id, orders.c.status, orders.c.reason).where(
            orders.c.signal_id.in_(chunk)
        )
        for row in (await session.execute(query)).all():
            statuses.setdefault(row.signal_id, set()).add(row.status)
            if row.status == OrderStatus.DENIED.value and row.reason:
                reasons.setdefault(row.signal_id, row.reason)
    denied = {OrderStatus.DENIED.value}
    return {
        signal: reasons.get(signal, "denied by the risk gate")
        for signal, found in statuses.items()
        if found == denied
    }


# Orders a venue holds (or is about to), which a GTD/DAY expiry cancels.
_AT_THE_VENUE = [
    status.value
    for status in (
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.TRIGGERED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_UPDATE,
    )
]


async def expired_orders(session: AsyncSession, now: datetime, limit: int = 100) -> list[str]:
    """The ids of orders at a venue, or held by the OMS, whose GTD/DAY expiry has passed, oldest
    expiry first. A held order expires on time even when no quote comes (a DAY order's session
    has closed: its quotes have stopped)."""
    held = and_(
        orders.c.status == OrderStatus.INITIALIZED.value,
        orders.c.emulated.is_(True),
        orders.c.released_at.is_(None),
    )
    query = (
        select(orders.c.order_id)
        .where(orders.c.expire_at <= now, or_(orders.c.status.in_(_AT_THE_VENUE), held))
        .order_by(orders.c.expire_at, orders.c.order_id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())
