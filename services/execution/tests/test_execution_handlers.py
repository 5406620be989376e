"""Execution handlers on FastStream's in-memory broker, a paper venue and an SQLite store.

The clock stands still unless a test moves it, so the paper venue's prices are known: at the
start every market stands at its start price (BTC/USDT 60000, SOL/USDT 150).
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from execution_support import (
    deliver,
    deliver_last_attempt,
    done,
    reports,
    statuses,
    submission,
    venue_changes,
)
from faststream.nats import TestNatsBroker
from sqlalchemy import select

from ordo.contracts.enums import BreakerState, ExecutionStatus, OrderType, Side
from ordo.contracts.envelope import new_message_id
from ordo.contracts.execution import (
    RequestVenueSnapshot,
    VenuePosition,
    VenueSnapshot,
)
from ordo.contracts.orders import CancelOrder, OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.contracts.subjects import Subject
from ordo.contracts.types import utc_now
from ordo.execution import store
from ordo.execution.app import ExecutionApp, assemble
from ordo.execution.config import ExecutionSettings, PaperSettings
from ordo.execution.errors import (
    AuthenticationFailed,
    BadVenueResponse,
    DuplicateOrder,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    UnexplainedRefusal,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)
from ordo.execution.handlers import OutcomeUnknown
from ordo.execution.store import SubmissionStatus
from ordo.execution.venues import PaperVenue, PaperVenueConfig, Venue, VenueOrder
from ordo.kit.breaker import CircuitOpenError
from ordo.kit.settings import BreakerSettings
from ordo.kit.testing import eventually

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
BTC, SOL = "BTC/USDT", "SOL/USDT"


class ManualClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


MakeService = Callable[..., Awaitable[ExecutionApp]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def make_service(tmp_path: Path, clock: ManualClock) -> AsyncIterator[MakeService]:
    """Builds execution services on one database (a second one is the first, restarted)."""
    built: list[ExecutionApp] = []

    async def make(
        *, create_lease_seconds: float = 20.0, breaker: BreakerSettings | None = None, **paper: Any
    ) -> ExecutionApp:
        settings = ExecutionSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'execution.db'}",
            create_lease_seconds=create_lease_seconds,
            breaker=breaker or BreakerSettings(),
            paper=PaperSettings(
                seed=7,
                starting_balance=Decimal(100_000),
                taker_fee_rate=Decimal("0.001"),
                maker_fee_rate=Decimal("0.0005"),
                **paper,
            ),
        )
        app = assemble(settings, telemetry=False, clock=clock)
        await app.kit.db.create_all(store.metadata)
        await app.kit.breakers.start()
        await app.execution.restore_paper_books()
        built.append(app)
        return app

    yield make
    for app in built:
        await app.execution.drain()
        await app.kit.db.close()


@pytest.fixture
async def execution(make_service: MakeService) -> ExecutionApp:
    return await make_service()


def order_spec(
    order_id: str = "ord-1",
    *,
    venue: str = "paper",
    symbol: str = BTC,
    side: Side = Side.BUY,
    quantity: str = "0.01",
    limit_price: str | None = None,
) -> OrderSpec:
    return OrderSpec(
        order_id=order_id,
        account="main",
        strategy="trend",
        venue=venue,
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT if limit_price else OrderType.MARKET,
        quantity=Decimal(quantity),
        limit_price=Decimal(limit_price) if limit_price else None,
    )


def approval(*specs: OrderSpec) -> OrderApproved:
    return OrderApproved(
        correlation_id="sig-1", producer="risk", proposal_id="prop-1", account="main", orders=specs
    )


def cancel(order_id: str = "ord-1", *, venue: str = "paper") -> CancelOrder:
    return CancelOrder(
        correlation_id="sig-2",
        producer="order",
        order_id=order_id,
        account="main",
        venue=venue,
        symbol=BTC,
        reason="exit signal",
    )


class ScriptedVenue:
    """A paper venue that misbehaves the way a real one can, as the test tells it to."""

    def __init__(self, clock: ManualClock) -> None:
        self._paper = PaperVenue(PaperVenueConfig(), clock, 7)
        self.creates = 0
        self.create_times_out = False
        self.not_shown: set[str] = set()  # orders it holds but does not show yet
        self.shown_after = 0  # the next lookups do not show an order it holds (lagging)
        self.lags: dict[str, int] = {}  # per order: the next lookups that do not show it
        self.cancel_error: VenueError | None = None
        self.refuses_creates: VenueError | None = None  # before acting on them
        self.create_answer: VenueError | None = None  # after placing the order
        self.answer_gate: asyncio.Event | None = None  # creates answer once it is set
        self.lookup_failures = 0  # the next lookups fail (the venue is unavailable)
        self.lookups = 0
        self.lookup_gate: asyncio.Event | None = None  # lookups wait for it, once set
        self.waiting = 0  # lookups waiting at the gate

    async def create_order(self, spec: OrderSpec) -> VenueOrder:
        self.creates += 1
        if self.refuses_creates is not None:
            raise self.refuses_creates
        order = await self._paper.create_order(spec)
        if self.answer_gate is not None:
            await self.answer_gate.wait()
        if self.create_times_out:
            raise VenueTimeout("no answer in time", venue="scripted")
        if self.create_answer is not None:
            raise self.create_answer
        return order

    async def fetch_order(self, order_id: str, symbol: str) -> VenueOrder:
        self.lookups += 1
        if self.lookup_gate is not None:
            self.waiting += 1
            await self.lookup_gate.wait()
        if self.lookup_failures:
            self.lookup_failures -= 1
            raise VenueUnavailable("lookups are down", venue="scripted")
        if self.shown_after or self.lags.get(order_id):
            self.shown_after = max(self.shown_after - 1, 0)
            self.lags[order_id] = max(self.lags.get(order_id, 0) - 1, 0)
            raise OrderNotFound(f"no order {order_id!r} (yet)", venue="scripted")
        if order_id in self.not_shown:
            raise OrderNotFound(f"no order {order_id!r}", venue="scripted")
        return await self._paper.fetch_order(order_id, symbol)

    async def cancel_order(self, order_id: str, symbol: str) -> VenueOrder:
        if self.cancel_error is not None:
            raise self.cancel_error
        return await self._paper.cancel_order(order_id, symbol)

    async def open_orders(self) -> list[VenueOrder]:
        return await self._paper.open_orders()


def scripted_venue(app: ExecutionApp, clock: ManualClock) -> ScriptedVenue:
    venue = ScriptedVenue(clock)
    app.venues.register("scripted", lambda account: cast(Venue, venue))
    return venue


def paper_venue(app: ExecutionApp) -> PaperVenue:
    venue = app.venues.get("paper", "main")
    assert isinstance(venue, PaperVenue)
    return venue


def orders_at_venue(app: ExecutionApp) -> int:
    return len(paper_venue(app).snapshot().orders)


async def test_an_approved_market_order_is_accepted_then_filled_with_its_fee(
    execution: ExecutionApp,
) -> None:
    approved = approval(order_spec(quantity="0.01"))

    await deliver(execution, approved)

    accepted, filled = await reports(execution)
    assert (accepted.status, accepted.venue_order_id) == (ExecutionStatus.ACCEPTED, "paper-1")
    assert filled.status is ExecutionStatus.FILLED
    assert (filled.cumulative_quantity, filled.average_price) == (Decimal("0.01"), Decimal(60000))
    assert filled.fill is not None
    assert (filled.fill.price, filled.fill.fee, filled.fill.fee_currency) == (
        Decimal(60000),
        Decimal("0.6"),  # 0.01 x 60000 x 0.001 taker
        "USDT",
    )
    assert {(r.correlation_id, r.causation_id, r.producer) for r in (accepted, filled)} == {
        ("sig-1", approved.message_id, "execution")
    }
    recorded = await submission(execution)
    assert recorded is not None
    assert (recorded.status, recorded.attempts) == (SubmissionStatus.SUBMITTED, 1)


async def test_an_approval_delivered_twice_places_the_order_once(execution: ExecutionApp) -> None:
    approved = approval(order_spec())
    # A redelivery that the inbox cannot catch: same orders, a different message id.
    again = approved.model_copy(update={"message_id": new_message_id()})

    await deliver(execution, approved, again)

    assert orders_at_venue(execution) == 1
    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]


async def test_a_timed_out_create_is_looked_up_never_created_twice(
    make_service: MakeService,
) -> None:
    execution = await make_service(
        timeout_probability=Decimal(1), fault_calls=frozenset({"create_order"})
    )

    await deliver(execution, approval(order_spec()))

    assert orders_at_venue(execution) == 1
    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    recorded = await submission(execution)
    assert recorded is not None
    assert (recorded.status, recorded.attempts) == (SubmissionStatus.SUBMITTED, 1)


async def test_a_timed_out_create_the_venue_does_not_show_yet_is_never_sent_again(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.create_times_out = True
    venue.not_shown.add("ord-1")  # the venue took the order but does not show it yet
    approved = approval(order_spec(venue="scripted"))

    await deliver(execution, approved)
    await deliver(execution, approved)  # the retry of the message looks it up again

    assert venue.creates == 1
    assert await reports(execution) == []
    recorded = await submission(execution)
    assert recorded is not None
    assert (recorded.status, recorded.attempts) == (SubmissionStatus.UNKNOWN, 1)

    venue.not_shown.clear()
    await deliver(execution, approved)

    assert venue.creates == 1
    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]


async def test_a_restart_while_the_venue_takes_an_order_looks_it_up_never_creates_it_again(
    make_service: MakeService, execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.answer_gate = asyncio.Event()  # the venue takes the order; its answer never comes
    approved = approval(order_spec(venue="scripted"))
    creating = asyncio.create_task(deliver(execution, approved))

    async def taken() -> bool:
        return venue.creates == 1

    await eventually(taken, timeout=10, what="the venue taking the order")
    creating.cancel()  # the process dies mid-create
    await asyncio.gather(creating, return_exceptions=True)
    # (A short lease of its own: the redelivery waits that long for the dead attempt's, which
    # does not end while the test's clock stands still.)
    restarted = await make_service(create_lease_seconds=0.2)
    restarted.venues.register("scripted", lambda account: cast(Venue, venue))

    await deliver(restarted, approved)  # redelivered while the dead attempt's lease holds
    assert await reports(restarted) == []
    clock.now += timedelta(seconds=21)  # the lease is over
    await deliver(restarted, approved)

    assert venue.creates == 1
    assert await statuses(restarted) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]


async def test_a_venue_that_never_answers_leaves_the_order_unknown_and_opens_the_breaker(
    make_service: MakeService,
) -> None:
    execution = await make_service(timeout_probability=Decimal(1))
    approved = approval(order_spec())

    await deliver(execution, approved)
    await deliver(execution, approved)  # the retry: it looks the order up, and fails again
    await execution.execution.drain()

    assert orders_at_venue(execution) == 1
    assert await reports(execution) == []
    recorded = await submission(execution)
    assert recorded is not None
    assert (recorded.status, recorded.attempts) == (SubmissionStatus.UNKNOWN, 1)
    (status,) = await venue_changes(execution)
    assert (status.venue, status.account, status.breaker) == ("paper", "main", BreakerState.OPEN)


@pytest.mark.parametrize(
    ("failure", "counts"),
    [
        (VenueTimeout("no answer in time"), True),
        (VenueUnavailable("503 Service Unavailable"), True),
        (RateLimited("429 Too Many Requests"), True),
        (BadVenueResponse("an answer without a price"), True),
        (InsufficientFunds("needs 600 USDT"), False),
        (InvalidOrder("quantity off the step size"), False),
        (OrderRejected("market closed"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, VenueError) else str(value),
)
async def test_failures_to_answer_open_the_breaker_and_refusals_do_not(
    make_service: MakeService, clock: ManualClock, failure: VenueError, counts: bool
) -> None:
    execution = await make_service(breaker=BreakerSettings(failure_threshold=3))
    venue = scripted_venue(execution, clock)
    venue.refuses_creates = failure

    for n in range(3):
        with pytest.raises(type(failure)):
            await execution.gateway.create_order(order_spec(f"ord-{n}", venue="scripted"))

    expected = BreakerState.OPEN if counts else BreakerState.CLOSED
    assert await execution.gateway.breaker_state("scripted", "main") is expected


async def test_an_order_the_open_breaker_keeps_from_the_venue_is_rejected_at_once(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.refuses_creates = VenueUnavailable("down for maintenance", venue="scripted")
    failing = [approval(order_spec(f"ord-{n}", venue="scripted")) for n in range(5)]
    await deliver(execution, *failing)  # five failures open the breaker
    assert await reports(execution) == []

    held_back = approval(order_spec("ord-held", venue="scripted"))
    await deliver(execution, held_back)

    # Not retried for seconds and sent late at another price: refused now, with the reason.
    (rejected,) = await reports(execution)
    assert (rejected.order_id, rejected.status) == ("ord-held", ExecutionStatus.REJECTED)
    assert rejected.reason is not None and "circuit breaker" in rejected.reason
    assert venue.creates == 5
    finished = await done(execution)
    assert held_back.message_id in finished
    assert not finished & {a.message_id for a in failing}  # those are retried later


async def test_an_order_the_venue_turned_away_every_time_is_given_up_and_reported(
    make_service: MakeService, clock: ManualClock
) -> None:
    execution = await make_service(
        failure_probability=Decimal(1), fault_calls=frozenset({"create_order"})
    )
    approved = approval(order_spec())
    await deliver(execution, approved)  # turned away before the venue acted; retried later
    await execution.execution.follow_orders()
    assert await reports(execution) == []  # not yet: its approval is still being retried

    clock.now = utc_now() + timedelta(minutes=10)
    await execution.execution.follow_orders()

    (rejected,) = await reports(execution)
    assert rejected.status is ExecutionStatus.REJECTED
    assert rejected.reason == (
        "never placed: the venue did not take it (paper: create_order failed (injected))"
    )
    assert (rejected.correlation_id, rejected.causation_id) == ("sig-1", approved.message_id)
    await deliver(execution, approved)  # a late retry of the approval changes nothing
    assert orders_at_venue(execution) == 0
    assert len(await reports(execution)) == 1


async def test_a_create_the_venue_says_it_holds_already_is_looked_up_not_rejected(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.create_answer = DuplicateOrder("order already exists", venue="scripted")

    await deliver(execution, approval(order_spec(venue="scripted")))

    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    assert venue.creates == 1


async def test_an_unexplained_error_after_the_venue_took_the_order_is_not_a_rejection(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.create_answer = UnexplainedRefusal('binance {"code":-9999}', venue="scripted")

    await deliver(execution, approval(order_spec(venue="scripted")))

    # An error code ccxt does not know is most likely a refusal, not provably one: looked up.
    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    assert venue.creates == 1


async def test_an_unexplained_refusal_of_an_order_the_venue_does_not_hold_is_rejected_at_once(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.refuses_creates = UnexplainedRefusal('binance {"code":-9999}', venue="scripted")

    await deliver(execution, approval(order_spec(venue="scripted")))

    (rejected,) = await reports(execution)
    assert rejected.status is ExecutionStatus.REJECTED
    assert rejected.reason == 'scripted: binance {"code":-9999}'
    assert (venue.creates, venue.lookups) == (1, 1)


async def test_an_order_below_the_minimum_notional_is_reported_rejected(
    execution: ExecutionApp,
) -> None:
    approved = approval(order_spec(symbol=SOL, quantity="0.01"))  # 0.01 x 150 = 1.5 < 5

    await deliver(execution, approved)

    (rejected,) = await reports(execution)
    assert rejected.status is ExecutionStatus.REJECTED
    assert rejected.reason is not None and "below the minimum notional 5" in rejected.reason
    assert rejected.cumulative_quantity == 0
    recorded = await submission(execution)
    assert recorded is not None and recorded.status is SubmissionStatus.REJECTED
    # The handler finished normally: the message is in the inbox, not waiting for a retry.
    assert approved.message_id in await done(execution)


async def test_canceling_a_resting_limit_order_reports_it_canceled(
    execution: ExecutionApp,
) -> None:
    await deliver(execution, approval(order_spec(limit_price="50000")))
    await deliver(execution, cancel())

    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.CANCELED]
    canceled = (await reports(execution))[-1]
    assert canceled.causation_id is not None and canceled.correlation_id == "sig-2"
    assert await paper_venue(execution).open_orders() == []


async def test_a_cancel_refused_for_our_credentials_is_dead_lettered_not_dropped(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    await deliver(execution, approval(order_spec(venue="scripted", limit_price="50000")))
    venue.cancel_error = AuthenticationFailed(venue="scripted")
    canceling = cancel(venue="scripted")

    await deliver(execution, canceling)

    # Not done and forgotten: it waits in the dead-letter stream, to be replayed once fixed.
    assert canceling.message_id not in await done(execution)
    assert await statuses(execution) == [ExecutionStatus.ACCEPTED]
    assert len(await venue.open_orders()) == 1


async def test_a_cancel_that_overtakes_its_approval_keeps_the_order_from_the_venue(
    execution: ExecutionApp,
) -> None:
    await deliver(execution, cancel())
    await deliver(execution, approval(order_spec()))

    (canceled,) = await reports(execution)
    assert canceled.status is ExecutionStatus.CANCELED
    assert canceled.reason == "canceled before it was placed: exit signal"
    assert orders_at_venue(execution) == 0
    async with execution.kit.db.session() as session:
        assert await session.scalar(select(store.cancel_requests.c.order_id)) is None


async def test_a_resting_order_filled_by_the_price_is_reported_by_the_match_job(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = paper_venue(execution)
    dip_at, dip = first_price_below(venue, BTC, Decimal(60000))
    approved = approval(order_spec(limit_price=str(dip)))
    await deliver(execution, approved)
    assert await statuses(execution) == [ExecutionStatus.ACCEPTED]

    clock.now = dip_at
    await execution.execution.follow_orders()
    await execution.execution.follow_orders()  # a second round finds nothing new

    _, filled = await reports(execution)
    assert filled.status is ExecutionStatus.FILLED
    assert filled.fill is not None
    assert (filled.fill.price, filled.fill.liquidity) == (dip, "maker")
    assert filled.fill.fee == Decimal("0.01") * dip * Decimal("0.0005")
    # The venue's own news continues the flow of the approval that placed the order.
    assert (filled.correlation_id, filled.causation_id) == ("sig-1", approved.message_id)


async def test_a_restart_keeps_the_paper_books_and_their_resting_orders(
    make_service: MakeService, clock: ManualClock
) -> None:
    first = await make_service()
    dip_at, dip = first_price_below(paper_venue(first), BTC, Decimal(60000))
    await deliver(first, approval(order_spec("ord-1", quantity="0.02")))
    await deliver(first, approval(order_spec("ord-2", limit_price=str(dip))))

    restarted = await make_service()
    clock.now = dip_at
    await restarted.execution.follow_orders()

    positions = await paper_venue(restarted).positions()
    assert positions == [VenuePosition(symbol=BTC, quantity=Decimal("0.03"))]
    fills = [r for r in await reports(restarted) if r.fill is not None]
    assert [r.order_id for r in fills] == ["ord-1", "ord-2"]


async def test_the_snapshot_responder_returns_the_venue_positions(
    execution: ExecutionApp,
) -> None:
    await deliver(
        execution,
        approval(order_spec("ord-1", quantity="0.01"), order_spec("ord-2", limit_price="50000")),
    )
    request = RequestVenueSnapshot(
        correlation_id="recon-1", producer="reconciler", account="main", venue="paper"
    )

    async with TestNatsBroker(execution.kit.broker) as broker:
        response = await broker.request(request.to_json(), str(Subject.EXEC_SNAPSHOT))
    snapshot = VenueSnapshot.from_json(response.body)

    assert snapshot.causation_id == request.message_id
    assert snapshot.positions == (VenuePosition(symbol=BTC, quantity=Decimal("0.01")),)
    assert [(o.order_id, o.venue_order_id) for o in snapshot.open_orders] == [("ord-2", "paper-2")]
    balances = {balance.currency: balance for balance in snapshot.balances}
    assert balances["USDT"].total == Decimal(100_000) - Decimal(600) - Decimal("0.6")
    assert balances["USDT"].free == balances["USDT"].total - Decimal(500) * Decimal("1.0005")
    (fill,) = snapshot.recent_fills
    assert (fill.order_id, fill.venue_order_id, fill.fill.fill_id) == (
        "ord-1",
        "paper-1",
        "paper-1-1",
    )


def first_price_below(venue: PaperVenue, symbol: str, price: Decimal) -> tuple[datetime, Decimal]:
    """The first second (within an hour) at which the random walk is below ``price``."""
    for second in range(1, 3600):
        at = START + timedelta(seconds=second)
        if (current := venue.price(symbol, at)) < price:
            return at, current
    raise AssertionError(f"{symbol} never went below {price} within an hour")


# -- the approval's last delivery attempt: the order is settled, never left to a dead letter ------


async def test_an_order_the_venue_turns_away_on_every_attempt_is_rejected_at_the_last(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.refuses_creates = VenueUnavailable("down for maintenance", venue="scripted")
    approved = approval(order_spec(venue="scripted"))
    await deliver(execution, approved)  # retried later
    assert await reports(execution) == []

    await deliver_last_attempt(execution, approved)

    (rejected,) = await reports(execution)
    assert (rejected.order_id, rejected.status) == ("ord-1", ExecutionStatus.REJECTED)
    assert rejected.reason == (
        "never placed: the venue does not hold the order after 2 attempt(s) to place it "
        "(scripted: down for maintenance)"
    )
    assert (rejected.correlation_id, rejected.causation_id) == ("sig-1", approved.message_id)
    assert approved.message_id in await done(execution)  # settled, not dead-lettered
    # Never created afterwards: neither a late redelivery nor the follow-up touches it again.
    venue.refuses_creates = None
    await deliver(execution, approved.model_copy(update={"message_id": new_message_id()}))
    clock.now = utc_now() + timedelta(minutes=10)
    await execution.execution.follow_orders()
    assert venue.creates == 2
    assert len(await reports(execution)) == 1


async def test_an_order_the_venue_holds_is_reported_as_the_venue_says_at_the_last_attempt(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.create_times_out = True
    venue.not_shown.add("ord-1")  # taken, but not shown while the earlier attempts look
    approved = approval(order_spec(venue="scripted"))
    await deliver(execution, approved)
    await deliver(execution, approved)
    assert await reports(execution) == []

    venue.not_shown.clear()
    await deliver_last_attempt(execution, approved)

    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    assert venue.creates == 1
    assert len(await venue.open_orders()) == 0 and len(venue._paper.snapshot().orders) == 1


async def test_an_unknown_outcome_the_venue_does_not_hold_is_rejected_at_the_last_attempt(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    # The create timed out before the venue took it: whether it did is unknown to us.
    venue.refuses_creates = VenueTimeout("no answer in time", venue="scripted")
    approved = approval(order_spec(venue="scripted"))
    await deliver(execution, approved)
    recorded = await submission(execution)
    assert recorded is not None and recorded.status is SubmissionStatus.UNKNOWN

    await deliver_last_attempt(execution, approved)

    (rejected,) = await reports(execution)
    assert rejected.status is ExecutionStatus.REJECTED
    assert rejected.reason is not None
    assert rejected.reason.startswith("never placed: the venue does not hold the order")
    assert venue.creates == 1  # looked up, never created a second time
    assert approved.message_id in await done(execution)


async def test_a_create_timing_out_on_the_last_attempt_is_looked_up_until_the_venue_shows_it(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.create_times_out = True  # the venue took it; its answer did not come
    venue.shown_after = 2  # and right after the timeout it does not show the order yet
    approved = approval(order_spec(venue="scripted"))

    await deliver_last_attempt(execution, approved)

    # "Not found" just after a create that may have placed the order is no proof it did not:
    # never REJECTED while the venue may hold it.
    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    assert venue.creates == 1
    assert venue.lookups == 3


async def test_each_order_of_a_last_attempt_is_looked_up_as_long_as_the_first_was(
    make_service: MakeService, clock: ManualClock
) -> None:
    execution = await make_service(create_lease_seconds=4)
    venue = scripted_venue(execution, clock)
    venue.create_times_out = True
    # The venue shows each order late; the first one's lookups take most of a lease.
    venue.lags = {"ord-1": 5, "ord-2": 4}
    approved = approval(
        order_spec("ord-1", venue="scripted"), order_spec("ord-2", venue="scripted")
    )

    await deliver_last_attempt(execution, approved)

    # The second is not cut short by the time the first took: both are reported, not rejected.
    assert [(r.order_id, r.status) for r in await reports(execution)] == [
        ("ord-1", ExecutionStatus.ACCEPTED),
        ("ord-1", ExecutionStatus.FILLED),
        ("ord-2", ExecutionStatus.ACCEPTED),
        ("ord-2", ExecutionStatus.FILLED),
    ]


async def test_an_order_the_venue_says_it_holds_is_never_rejected_even_at_the_last_attempt(
    make_service: MakeService, clock: ManualClock
) -> None:
    execution = await make_service(create_lease_seconds=1)
    venue = scripted_venue(execution, clock)
    venue.create_answer = DuplicateOrder("order already exists", venue="scripted")
    venue.not_shown.add("ord-1")  # and its lookups cannot find it

    approved = approval(order_spec(venue="scripted"))

    # It holds the order: "not found" contradicts it, and proves nothing. Left to the dead
    # letter and to the follow-up, which reports the order once a lookup finds it.
    with pytest.raises(OutcomeUnknown):
        await deliver_last_attempt(execution, approved)
    with pytest.raises(OutcomeUnknown):
        await deliver_last_attempt(execution, approved)  # replayed from the dead letters

    assert await reports(execution) == []
    recorded = await submission(execution)
    assert recorded is not None and recorded.status is SubmissionStatus.HELD
    assert venue.creates == 1
    venue.not_shown.clear()
    await execution.execution.follow_orders()
    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]


async def test_the_last_attempt_waits_out_an_open_breaker_to_look_the_order_up(
    make_service: MakeService, clock: ManualClock
) -> None:
    execution = await make_service(
        create_lease_seconds=10, breaker=BreakerSettings(failure_threshold=3, recovery_seconds=0.2)
    )
    venue = scripted_venue(execution, clock)
    venue.refuses_creates = VenueUnavailable("down for maintenance", venue="scripted")
    approved = approval(order_spec(venue="scripted"))
    await deliver(execution, approved)
    # The last create fails too, then the lookups: enough failures to open the breaker.
    venue.lookup_failures = 3

    await deliver_last_attempt(execution, approved)

    (rejected,) = await reports(execution)
    assert rejected.status is ExecutionStatus.REJECTED
    assert venue.lookups > 3  # tried again once the breaker let a call through
    await execution.execution.drain()
    assert BreakerState.OPEN in [change.breaker for change in await venue_changes(execution)]


async def test_an_order_that_cannot_be_looked_up_at_the_last_attempt_is_never_rejected(
    make_service: MakeService, clock: ManualClock
) -> None:
    execution = await make_service(create_lease_seconds=0.5)
    venue = scripted_venue(execution, clock)
    venue.refuses_creates = VenueUnavailable("down for maintenance", venue="scripted")
    approved = approval(order_spec(venue="scripted"))
    await deliver(execution, approved)
    venue.lookup_failures = 1_000  # the venue may hold it: no one can tell

    # To the dead letter; the follow-up gives it up once the venue says it does not hold it.
    with pytest.raises((VenueUnavailable, CircuitOpenError)):
        await deliver_last_attempt(execution, approved)

    assert await reports(execution) == []
    recorded = await submission(execution)
    assert recorded is not None
    assert (recorded.status, recorded.claimed_until) == (SubmissionStatus.PENDING, None)


# -- the follow-up job and the approval acting on one order at once -------------------------------


async def both_at_the_venue_at_once(execution: ExecutionApp, venue: ScriptedVenue) -> None:
    """The approval's redelivery and a follow-up round, each looking the order up when the other
    does, then going on together: each decides on what it read before the other wrote."""
    venue.lookup_gate = asyncio.Event()
    racing = asyncio.gather(
        deliver(execution, approval(order_spec(venue="scripted"))),
        execution.execution.follow_orders(),
    )

    async def both_waiting() -> bool:
        return venue.waiting >= 2

    await eventually(both_waiting, timeout=10, what="both looking the order up")
    venue.lookup_gate.set()
    await racing
    venue.lookup_gate = None


async def test_the_follow_up_and_an_approval_looking_at_one_order_report_it_once(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.create_times_out = True
    venue.not_shown.add("ord-1")
    await deliver(execution, approval(order_spec(venue="scripted")))  # outcome unknown
    venue.not_shown.clear()

    await both_at_the_venue_at_once(execution, venue)
    await execution.execution.follow_orders()  # and once more, after the race

    assert await statuses(execution) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    assert venue.creates == 1
    recorded = await submission(execution)
    assert recorded is not None and recorded.status is SubmissionStatus.SUBMITTED


async def test_the_follow_up_never_gives_up_an_order_an_approval_is_creating(
    execution: ExecutionApp, clock: ManualClock
) -> None:
    venue = scripted_venue(execution, clock)
    venue.refuses_creates = VenueUnavailable("down for maintenance", venue="scripted")
    await deliver(execution, approval(order_spec(venue="scripted")))  # never placed, so far
    venue.refuses_creates = None
    clock.now = utc_now() + timedelta(minutes=10)  # long enough for the follow-up to give up

    await both_at_the_venue_at_once(execution, venue)
    await execution.execution.follow_orders()

    # One of them won: the order was given up and never created, or created and never given up.
    placed = [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    outcome = await statuses(execution)
    assert outcome in ([ExecutionStatus.REJECTED], placed)
    orders = len(venue._paper.snapshot().orders)
    assert orders == (1 if outcome == placed else 0)
    assert venue.creates == 1 + orders  # the first attempt was turned away
