"""What the system itself says, gathered as the admin user once the load has stopped.

* The OMS: its orders (``query.orders.v1``), positions (``query.positions.v1``) and what it made
  of every signal it consumed (``query.signals.v1``: planned, or why it made no order).
* The venue: its snapshot (``exec.snapshot.v1``), and the execution reports in the EXEC stream.
* The streams: the accepted signals, the reconciler's runs and discrepancies, the dead letters.
* The spans the execution service exported: the venue calls that failed, and why.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from pydantic import ValidationError

from ordo.bench.chaos.plan import ACCOUNT, NON_TERMINAL
from ordo.bench.chaos.streams import StoredMessage, originals, read_subject
from ordo.cli.spans import read_span_files
from ordo.contracts.enums import BreakerState, ReconciliationOutcome, SignalOutcome
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.execution import (
    ExecutionReport,
    RequestVenueSnapshot,
    VenueSnapshot,
    VenueStatusChanged,
)
from ordo.contracts.orders import OrderView, PositionView
from ordo.contracts.queries import (
    OrdersView,
    PositionsView,
    QueryOrders,
    QueryPositions,
    QuerySignals,
    SignalsView,
)
from ordo.contracts.reconciliation import DiscrepancyFound, ReconciliationCompleted
from ordo.contracts.signals import SignalAccepted
from ordo.contracts.subjects import MESSAGE_SUBJECTS, REPLIES, Subject, subject_of
from ordo.execution.venues.paper import VENUE_NAME as PAPER_VENUE

R = TypeVar("R", bound=Message)
PRODUCER = "chaos"  # the envelope's producer of the run's requests
REQUEST_TIMEOUT = 5.0
POLL_INTERVAL = 0.5
QUERY_CONCURRENCY = 16
MAX_ORDERS_PER_SIGNAL = 1000  # the most one query answers
SIGNALS_PER_PAGE = 500  # a page of signal outcomes stays well under NATS's 1 MB payload
# How the paper venue marks the faults it injects, and the breaker its refusals.
INJECTED = "(injected)"
BREAKER_OPEN = "CircuitOpenError"


class Unanswered(Exception):
    """A request that got no answer before its deadline."""


class SystemView:
    """Ask the running system, as the admin user, what it knows."""

    def __init__(self, nc: NatsClient, var_dir: Path) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self._spans_dir = var_dir / "spans"

    # -- requests ------------------------------------------------------------------------------
    async def ask(self, request: Message, reply_type: type[R], *, deadline: float = 30.0) -> R:
        """The reply to ``request``, asked again until it comes (a responder may be restarting,
        or the venue may fail the call: both are injected)."""
        if REPLIES[type(request)] is not reply_type:
            raise TypeError(f"{type(request).__name__} is not answered by {reply_type.__name__}")
        give_up_at = time.monotonic() + deadline
        while True:
            try:
                reply = await self.nc.request(
                    str(subject_of(request)), request.to_json(), timeout=REQUEST_TIMEOUT
                )
                return reply_type.from_json(reply.data)
            except (NatsError, TimeoutError, ValueError) as error:
                if time.monotonic() > give_up_at:
                    raise Unanswered(f"{type(request).__name__}: {error!r}") from error
            await asyncio.sleep(POLL_INTERVAL)  # pacing the next try

    async def orders(self, **filters: Any) -> tuple[OrderView, ...]:
        query = QueryOrders(
            correlation_id=new_message_id(), producer=PRODUCER, account=ACCOUNT, **filters
        )
        return (await self.ask(query, OrdersView)).orders

    async def unfinished_orders(self) -> set[str]:
        """The ids of the account's orders that are not in a terminal status."""
        found = await asyncio.gather(
            *(self.orders(status=s, limit=MAX_ORDERS_PER_SIGNAL) for s in NON_TERMINAL)
        )
        return {order.order_id for orders in found for order in orders}

    async def orders_by_signal(self, signal_ids: set[str]) -> dict[str, tuple[OrderView, ...]]:
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def of(signal_id: str) -> tuple[str, tuple[OrderView, ...]]:
            async with gate:
                return signal_id, await self.orders(
                    signal_id=signal_id, limit=MAX_ORDERS_PER_SIGNAL
                )

        return dict(await asyncio.gather(*(of(signal_id) for signal_id in sorted(signal_ids))))

    async def positions(self) -> tuple[PositionView, ...]:
        query = QueryPositions(
            correlation_id=new_message_id(), producer=PRODUCER, account=ACCOUNT, include_flat=True
        )
        return (await self.ask(query, PositionsView)).positions

    async def venue_positions(self) -> dict[str, Decimal]:
        request = RequestVenueSnapshot(
            correlation_id=new_message_id(), producer=PRODUCER, account=ACCOUNT, venue=PAPER_VENUE
        )
        reply = await self.ask(request, VenueSnapshot)
        return {position.symbol: position.quantity for position in reply.positions}

    # -- the OMS's record of each signal ---------------------------------------------------------
    async def signal_outcomes(self) -> dict[str, SignalOutcome]:
        """signal id → what the OMS made of it, paged back from the newest until a short page."""
        found: dict[str, SignalOutcome] = {}
        cursor: str | None = None
        while True:
            query = QuerySignals(
                correlation_id=new_message_id(),
                producer=PRODUCER,
                limit=SIGNALS_PER_PAGE,
                after_signal_id=cursor,
            )
            page = (await self.ask(query, SignalsView)).signals
            found.update((signal.signal_id, signal.outcome) for signal in page)
            if len(page) < SIGNALS_PER_PAGE:
                return found
            cursor = page[-1].signal_id

    # -- streams -------------------------------------------------------------------------------
    async def accepted_signals(self) -> dict[str, SignalAccepted]:
        messages = await read_subject(self.js, Subject.SIGNAL_ACCEPTED)
        return {m.signal_id: m for m in originals(messages, SignalAccepted)}

    async def execution_reports(self) -> list[ExecutionReport]:
        return originals(await read_subject(self.js, Subject.EXEC_REPORT), ExecutionReport)

    async def venue_breaker_opens(self) -> int:
        changes = originals(await read_subject(self.js, Subject.EXEC_VENUE), VenueStatusChanged)
        return sum(1 for change in changes if change.breaker is BreakerState.OPEN)

    async def reconciliation_runs(self) -> list[ReconciliationCompleted]:
        runs = originals(await read_subject(self.js, Subject.RECON_RUN), ReconciliationCompleted)
        return [run for run in runs if run.account == ACCOUNT]

    async def discrepancies(self) -> list[DiscrepancyFound]:
        found = originals(await read_subject(self.js, Subject.RECON_DISCREPANCY), DiscrepancyFound)
        return [d for d in found if d.account == ACCOUNT]

    async def dead_letters(self) -> list["DeadLetter"]:
        return [DeadLetter.of(m) for m in await read_subject(self.js, Subject.DEAD_LETTERS)]

    # -- spans ---------------------------------------------------------------------------------
    def venue_faults(self) -> Counter[str]:
        """Venue calls that an injected fault failed, and calls the open breaker refused, by
        call and error, from the spans execution exported.

        A lower bound: a SIGKILLed process loses the spans it had not exported yet, and a read
        that failed and then succeeded on a retry is one span without error.
        """
        faults: Counter[str] = Counter()
        for span in read_span_files(self._spans_dir).spans:
            message = span.status_message or ""
            if not span.name.startswith("venue.") or not span.failed:
                continue
            if INJECTED in message or message.startswith(BREAKER_OPEN):
                faults[f"{span.name.removeprefix('venue.')}: {message.partition(':')[0]}"] += 1
        return faults


_MODEL_OF_SUBJECT: dict[str, type[Message]] = {
    str(subject): model for model, subject in MESSAGE_SUBJECTS.items()
}


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as the kit writes it (``dlq.<service>.<subject>``, headers say why), and the
    orders and signal it concerns when its body is a message."""

    service: str
    original_subject: str
    error: str
    attempts: int
    body: bytes
    order_ids: frozenset[str] = frozenset()
    signal_id: str | None = None

    @classmethod
    def of(cls, stored: StoredMessage) -> "DeadLetter":
        parts = stored.subject.split(".", 2)
        original = stored.headers.get("Ordo-Original-Subject", parts[-1])
        message = _decode(original, stored.data)
        return cls(
            service=parts[1] if len(parts) == 3 else "?",
            original_subject=original,
            error=stored.headers.get("Ordo-Error", "?"),
            attempts=int(stored.headers.get("Ordo-Attempts", "0") or 0),
            body=stored.data,
            order_ids=_order_ids(message) if message is not None else frozenset(),
            # Every message of a signal's flow carries the signal id as its correlation id.
            signal_id=message.correlation_id if message is not None else None,
        )


def _decode(subject: str, body: bytes) -> Message | None:
    model = _MODEL_OF_SUBJECT.get(subject)
    if model is None:
        return None
    try:
        return model.from_json(body)
    except ValidationError:
        return None


def _order_ids(message: Message) -> frozenset[str]:
    """The orders a message is about, whatever its type calls them."""
    ids = set(getattr(message, "order_ids", ()) or ())
    order_id = getattr(message, "order_id", None)
    if isinstance(order_id, str):
        ids.add(order_id)
    ids.update(spec.order_id for spec in getattr(message, "orders", ()) or ())
    order = getattr(message, "order", None)
    if order is not None:
        ids.add(order.order_id)
    return frozenset(ids)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = POLL_INTERVAL
) -> tuple[bool, float]:
    """Poll ``check`` until it holds or ``timeout`` passes: (whether it held, seconds taken)."""
    began = time.monotonic()
    while True:
        if await check():
            return True, time.monotonic() - began
        if time.monotonic() - began > timeout:
            return False, time.monotonic() - began
        await asyncio.sleep(interval)


@dataclass
class Evidence:
    """Everything the invariants are computed from."""

    sent_ids: set[str]  # the signal ids the intake answered with
    announced: dict[str, SignalAccepted]  # signal.accepted.v1, by signal id
    outcomes: dict[str, SignalOutcome]  # what the OMS made of each signal, by signal id
    orders: dict[str, tuple[OrderView, ...]]  # by signal id
    positions: tuple[PositionView, ...]
    venue_positions: dict[str, Decimal] | None  # None: the venue could not be asked
    reports: list[ExecutionReport]
    settled_at: datetime
    runs_after: list[ReconciliationCompleted]  # runs that started after the system settled
    discrepancies_after: list[DiscrepancyFound]  # found by those runs
    dead_letters: list[DeadLetter]
    poison_bodies: dict[bytes, frozenset[str]]  # injected (perhaps), and who must dead-letter it
    stored_poisons: set[bytes] = field(default_factory=set)  # injected for sure

    @property
    def accepted_ids(self) -> set[str]:
        """Every signal the system accepted: answered to the sender, or announced."""
        return self.sent_ids | set(self.announced)


async def gather_evidence(
    view: SystemView,
    *,
    sent_ids: set[str],
    settled_at: datetime,
    poison_bodies: dict[bytes, frozenset[str]],
    stored_poisons: set[bytes],
) -> Evidence:
    announced = await view.accepted_signals()
    accepted = sent_ids | set(announced)
    try:
        venue: dict[str, Decimal] | None = await view.venue_positions()
    except Unanswered:
        venue = None
    runs = [
        run
        for run in await view.reconciliation_runs()
        if run.started_at > settled_at and run.outcome is not ReconciliationOutcome.FAILED
    ]
    run_ids = {run.run_id for run in runs}
    return Evidence(
        sent_ids=sent_ids,
        announced=announced,
        outcomes=await view.signal_outcomes(),
        orders=await view.orders_by_signal(accepted),
        positions=await view.positions(),
        venue_positions=venue,
        reports=await view.execution_reports(),
        settled_at=settled_at,
        runs_after=runs,
        discrepancies_after=[d for d in await view.discrepancies() if d.run_id in run_ids],
        dead_letters=await view.dead_letters(),
        poison_bodies=poison_bodies,
        stored_poisons=stored_poisons,
    )
