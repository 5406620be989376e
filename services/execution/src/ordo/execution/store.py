"""The execution service's store: what was sent to which venue, what was reported, paper books.

- ``submissions``: one row per client order id, written *before* the venue is called, so that a
  crash or a timeout after the call leaves a trace that makes the next attempt look the order up
  instead of creating it again. ``claimed_until`` is the lease of the attempt that is creating
  the order right now: another replica that gets the same approval (a redelivery) waits for it
  instead of creating the order a second time; a lease that ran out (its holder crashed) may be
  taken over.
- ``reported_fills``: each fill is reported once, whichever path (create, cancel, matching) saw it.
- ``cancel_requests``: cancels that arrived before their order was placed (the cancel and the
  approval travel on different streams): the order is then never sent, and the request removed.
- ``paper_books``: the paper venue's books per account, so that a restart keeps balances,
  positions and resting orders.
- ``venue_halts``: venue accounts whose credentials were refused: no new order goes to them until
  a probe finds the credentials working again. Every replica reads the same rows.

Updates are optimistic (``version``): a row changed by someone else since it was read raises
:class:`ConcurrentUpdate`, and the kit retries the message.
"""

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.enums import ExecutionStatus, Side
from ordo.contracts.orders import CancelOrder, OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.contracts.types import utc_now
from ordo.execution.venues.paper_state import PaperVenueState
from ordo.kit.store import (
    ConcurrentUpdate,
    Database,
    ExactDecimal,
    UtcDateTime,
    insert_with_conflicts,
    messaging_tables,
    new_metadata,
)

metadata = new_metadata()
messaging = messaging_tables(metadata)


class SubmissionStatus(StrEnum):
    """Where our attempt to place an order stands (not the order's status at the venue)."""

    PENDING = "pending"  # recorded before the venue call: whether the order exists is unknown
    SUBMITTED = "submitted"  # the venue holds the order
    REJECTED = "rejected"  # the venue refused it, or no venue serves it
    UNKNOWN = "unknown"  # the venue call timed out: look the order up before anything else
    # The venue said it holds the order (its client order id is taken), yet does not show it:
    # only ever looked up, never rejected.
    HELD = "held"
    WITHDRAWN = "withdrawn"  # canceled before it was sent: it never will be

    @property
    def is_settled(self) -> bool:
        """Settled attempts never call the venue again; the outbox already holds their reports."""
        return self in _SETTLED


_SETTLED = frozenset(
    {SubmissionStatus.SUBMITTED, SubmissionStatus.REJECTED, SubmissionStatus.WITHDRAWN}
)

submissions = Table(
    "submissions",
    metadata,
    Column("order_id", String(36), primary_key=True, doc="The client order id"),
    Column("proposal_id", String(64), nullable=False),
    Column("correlation_id", String(64), nullable=False, doc="The flow later reports continue"),
    Column("approved_message_id", String(64), nullable=False, doc="Causes later reports"),
    Column("account", String(64), nullable=False),
    Column("venue", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("status", String(16), nullable=False),
    Column("venue_order_id", String(128), nullable=True),
    Column("venue_status", String(32), nullable=True, doc="The status last reported"),
    Column("attempts", Integer, nullable=False, doc="Calls to create the order"),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("claimed_until", UtcDateTime, nullable=True, doc="The lease of a create in progress"),
)
Index(
    "ix_submissions_venue_account_status",
    submissions.c.venue,
    submissions.c.account,
    submissions.c.status,
)

reported_fills = Table(
    "reported_fills",
    metadata,
    # Keyed with the order: a venue's fill ids need only be unique within an order for this.
    Column("order_id", String(36), primary_key=True),
    Column("fill_id", String(128), primary_key=True),
    Column("reported_at", UtcDateTime, nullable=False),
)

cancel_requests = Table(
    "cancel_requests",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
)

paper_books = Table(
    "paper_books",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("state", Text, nullable=False, doc="PaperVenueState as JSON"),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)


venue_halts = Table(
    "venue_halts",
    metadata,
    Column("venue", String(64), primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("halted_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Submission:
    order_id: str
    proposal_id: str
    correlation_id: str
    approved_message_id: str
    account: str
    venue: str
    symbol: str
    side: Side
    quantity: Decimal
    status: SubmissionStatus
    venue_order_id: str | None
    venue_status: ExecutionStatus | None
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    claimed_until: datetime | None = None

    def claimed_at(self, now: datetime) -> bool:
        """Whether an attempt holds the lease to create this order at ``now``."""
        return self.claimed_until is not None and self.claimed_until > now

    @classmethod
    def from_mapping(cls, values: Mapping[Any, Any]) -> "Submission":
        venue_status = values["venue_status"]
        return cls(
            **{
                **values,
                "side": Side(values["side"]),
                "status": SubmissionStatus(values["status"]),
                "venue_status": None if venue_status is None else ExecutionStatus(venue_status),
            }
        )

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        for name in ("side", "status", "venue_status"):
            row[name] = None if row[name] is None else str(row[name])
        return row


# -- submissions ------------------------------------------------------------------------------


async def get_submission(session: AsyncSession, order_id: str) -> Submission | None:
    row = (
        await session.execute(select(submissions).where(submissions.c.order_id == order_id))
    ).first()
    return None if row is None else Submission.from_mapping(row._mapping)


async def insert_submission(
    session: AsyncSession,
    approved: OrderApproved,
    spec: OrderSpec,
    status: SubmissionStatus,
    *,
    attempts: int,
    claimed_until: datetime | None = None,
) -> Submission:
    """Record an attempt; another replica recording the same order first raises."""
    now = utc_now()
    submission = Submission(
        order_id=spec.order_id,
        proposal_id=approved.proposal_id,
        correlation_id=approved.correlation_id,
        approved_message_id=approved.message_id,
        account=spec.account,
        venue=spec.venue,
        symbol=spec.symbol,
        side=spec.side,
        quantity=spec.quantity,
        status=status,
        venue_order_id=None,
        venue_status=None,
        attempts=attempts,
        last_error=None,
        created_at=now,
        updated_at=now,
        version=1,
        claimed_until=claimed_until,
    )
    try:
        await session.execute(insert(submissions).values(submission.as_row()))
    except IntegrityError as exc:
        raise ConcurrentUpdate(f"order {spec.order_id} was recorded concurrently") from exc
    return submission


async def update_submission(
    session: AsyncSession, submission: Submission, **changes: Any
) -> Submission:
    """Change the row if nobody changed it since ``submission`` was read; return the new row."""
    changed = replace(submission, **changes, updated_at=utc_now(), version=submission.version + 1)
    row = changed.as_row()
    result = await session.execute(
        update(submissions)
        .where(
            submissions.c.order_id == submission.order_id,
            submissions.c.version == submission.version,
        )
        .values({name: row[name] for name in (*changes, "updated_at", "version")})
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConcurrentUpdate(
            f"submission {submission.order_id} changed since version {submission.version}"
        )
    return changed


async def unsettled_or_open(session: AsyncSession, venue: str, account: str) -> list[Submission]:
    """Orders whose venue status may still change: open ones, and attempts of unknown outcome."""
    open_statuses = [
        ExecutionStatus.ACCEPTED,
        ExecutionStatus.TRIGGERED,
        ExecutionStatus.PARTIALLY_FILLED,
    ]
    query = (
        select(submissions)
        .where(
            submissions.c.venue == venue,
            submissions.c.account == account,
            (
                (submissions.c.status == SubmissionStatus.SUBMITTED)
                & submissions.c.venue_status.in_(open_statuses)
            )
            | submissions.c.status.in_(
                [SubmissionStatus.PENDING, SubmissionStatus.UNKNOWN, SubmissionStatus.HELD]
            ),
        )
        .order_by(submissions.c.created_at)
    )
    return [Submission.from_mapping(row._mapping) for row in (await session.execute(query)).all()]


async def client_order_ids(
    session: AsyncSession, venue: str, account: str, venue_order_ids: Iterable[str]
) -> dict[str, str]:
    """Venue order id → our client order id, for the orders of the account we placed."""
    wanted = sorted(set(venue_order_ids))
    if not wanted:
        return {}
    query = select(submissions.c.venue_order_id, submissions.c.order_id).where(
        submissions.c.venue == venue,
        submissions.c.account == account,
        submissions.c.venue_order_id.in_(wanted),
    )
    return {row.venue_order_id: row.order_id for row in (await session.execute(query)).all()}


async def claim_of(db: Database, order_id: str) -> datetime | None:
    """The lease on the order's creation, read in a session of its own (fresh data)."""
    async with db.session() as session:
        query = select(submissions.c.claimed_until).where(submissions.c.order_id == order_id)
        return await session.scalar(query)


# -- reported fills ---------------------------------------------------------------------------


async def reported_fill_ids(session: AsyncSession, order_id: str) -> set[str]:
    query = select(reported_fills.c.fill_id).where(reported_fills.c.order_id == order_id)
    return set((await session.scalars(query)).all())


async def record_reported_fills(
    session: AsyncSession, order_id: str, fill_ids: Iterable[str]
) -> None:
    now = utc_now()
    rows = [{"order_id": order_id, "fill_id": fill_id, "reported_at": now} for fill_id in fill_ids]
    if not rows:
        return
    try:
        await session.execute(insert(reported_fills), rows)
    except IntegrityError as exc:
        raise ConcurrentUpdate(f"fills of order {order_id} were reported concurrently") from exc


# -- cancels that overtook their order --------------------------------------------------------


async def add_cancel_request(session: AsyncSession, cancel: CancelOrder) -> None:
    """Remember a cancel for an order not placed yet; a repeat changes nothing."""
    values = {"order_id": cancel.order_id, "reason": cancel.reason, "requested_at": utc_now()}
    insert = insert_with_conflicts(session, cancel_requests)
    await session.execute(insert.values(values).on_conflict_do_nothing())


async def cancel_reason(session: AsyncSession, order_id: str) -> str | None:
    """Why the order was canceled before it was placed, or None if it was not."""
    query = select(cancel_requests.c.reason).where(cancel_requests.c.order_id == order_id)
    return await session.scalar(query)


async def remove_cancel_request(session: AsyncSession, order_id: str) -> None:
    """Forget a cancel request once its order is withdrawn (the submission remembers it)."""
    await session.execute(delete(cancel_requests).where(cancel_requests.c.order_id == order_id))


# -- halted venue accounts --------------------------------------------------------------------


async def halt_venue(session: AsyncSession, venue: str, account: str, reason: str) -> bool:
    """Halt new orders to the venue account; False if it was halted already."""
    values = {"venue": venue, "account": account, "reason": reason, "halted_at": utc_now()}
    insert = insert_with_conflicts(session, venue_halts)
    result = await session.execute(insert.values(values).on_conflict_do_nothing())
    return getattr(result, "rowcount", 0) == 1


async def lift_halt(session: AsyncSession, venue: str, account: str) -> bool:
    """Let orders go to the venue account again; False if it was not halted."""
    result = await session.execute(
        delete(venue_halts).where(venue_halts.c.venue == venue, venue_halts.c.account == account)
    )
    return getattr(result, "rowcount", 0) == 1


async def venue_halts_by_account(session: AsyncSession) -> dict[tuple[str, str], str]:
    """Every halted venue account, with why it was halted."""
    rows = (await session.execute(select(venue_halts))).all()
    return {(row.venue, row.account): row.reason for row in rows}


# -- paper books ------------------------------------------------------------------------------


async def load_paper_books(session: AsyncSession) -> dict[str, PaperVenueState]:
    rows = (await session.execute(select(paper_books.c.account, paper_books.c.state))).all()
    return {row.account: PaperVenueState.from_dict(json.loads(row.state)) for row in rows}


async def save_paper_book(
    session: AsyncSession, account: str, take_snapshot: Callable[[], PaperVenueState]
) -> None:
    """Store the account's books, taken *after* the row's version is read.

    The books only grow newer, so a snapshot taken after reading the version holds everything
    any earlier writer stored; a writer that commits between our read and our update makes the
    update miss (ConcurrentUpdate), so an older snapshot never overwrites a newer one.
    """
    version = await session.scalar(
        select(paper_books.c.version).where(paper_books.c.account == account)
    )
    values = {"state": json.dumps(take_snapshot().to_dict()), "updated_at": utc_now()}
    if version is None:
        try:
            await session.execute(insert(paper_books).values(account=account, version=1, **values))
        except IntegrityError as exc:
            raise ConcurrentUpdate(f"paper books of {account} were created concurrently") from exc
        return
    result = await session.execute(
        update(paper_books)
        .where(paper_books.c.account == account, paper_books.c.version == version)
        .values(version=version + 1, **values)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConcurrentUpdate(f"paper books of {account} changed since version {version}")
