"""An order as the OMS holds it: created from a spec, moved by risk decisions and venue reports.

The order is a plain mutable object with a ``version`` and an ``events`` list that the handler
drains (the Cosmic Python pattern). Every status change goes through :mod:`.fsm`.

Venue reports are applied idempotently and in any arrival order:

- a fill is applied once per ``fill_id``, whatever the report around it says, because a fill is
  money that moved at the venue and the position must see it;
- the filled quantity only grows: it is the largest cumulative quantity any report carried (or
  the sum of the fills, if that is larger);
- the status a report implies is adopted only when the FSM has the edge and the report is not
  stale; a report that changes none of these changes nothing, not even the version.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ordo.contracts.enums import ExecutionStatus, OrderStatus, OrderType, Side, TimeInForce
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.orders import OrderSpec, OrderView
from ordo.order.domain import emulation
from ordo.order.domain.errors import InvalidTransition, ReportMismatch
from ordo.order.domain.events import OrderChanged, OrderEvent, OrderFilled
from ordo.order.domain.fsm import can_transition, transition

ZERO = Decimal(0)

# Reports that end the order whatever its filled quantity (short of a complete fill).
_ENDINGS: Mapping[ExecutionStatus, OrderStatus] = {
    ExecutionStatus.CANCELED: OrderStatus.CANCELED,
    ExecutionStatus.EXPIRED: OrderStatus.EXPIRED,
    ExecutionStatus.REJECTED: OrderStatus.REJECTED,
}

# Statuses of an order the venue holds and may still fill.
_WORKING = frozenset({OrderStatus.ACCEPTED, OrderStatus.TRIGGERED, OrderStatus.PARTIALLY_FILLED})

# The fields of a report that must agree with the order it is applied to.
_IDENTITY_FIELDS = ("account", "venue", "symbol", "side")


@dataclass(frozen=True)
class AppliedReport:
    """What applying one execution report did to an order."""

    order_id: str
    previous_status: OrderStatus
    status: OrderStatus
    changed: bool
    new_fill: Fill | None = None
    """A fill the order had not seen: apply it to the position (exactly once)."""
    filled_quantity_advanced: bool = False
    ignored_status: OrderStatus | None = None
    """The status the report implied but that was refused as stale or impossible; for logs."""

    @property
    def status_changed(self) -> bool:
        return self.status is not self.previous_status


@dataclass
class Order:
    order_id: str  # the client order id
    signal_id: str
    proposal_id: str
    account: str
    strategy: str
    venue: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    created_at: datetime
    updated_at: datetime
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    reduce_only: bool = False
    post_only: bool = False
    reference_price: Decimal | None = None
    trailing_amount: Decimal | None = None
    trailing_percent: Decimal | None = None
    expire_at: datetime | None = None
    # Held by the OMS until the quotes trigger it (the venue lacks its type); see .emulation.
    emulated: bool = False
    # When the trigger fired: from then on the order is with the risk gate and its venue, no
    # longer held, although it stays INITIALIZED until the risk gate decides.
    released_at: datetime | None = None
    status: OrderStatus = OrderStatus.INITIALIZED
    filled_quantity: Decimal = ZERO
    average_fill_price: Decimal | None = None
    fees: Decimal = ZERO
    venue_order_id: str | None = None
    reason: str | None = None
    fill_ids: set[str] = field(default_factory=set)
    # Sums over the applied fills, for the average price. They may trail ``filled_quantity``
    # while a report's cumulative quantity is ahead of the fills that make it up.
    fills_quantity: Decimal = ZERO
    fills_notional: Decimal = ZERO
    version: int = 1
    events: list[OrderEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def new(
        cls,
        spec: OrderSpec,
        signal_id: str,
        proposal_id: str,
        now: datetime,
        *,
        emulated: bool = False,
    ) -> "Order":
        order = cls(
            order_id=spec.order_id,
            signal_id=signal_id,
            proposal_id=proposal_id,
            account=spec.account,
            strategy=spec.strategy,
            venue=spec.venue,
            symbol=spec.symbol,
            side=spec.side,
            order_type=spec.order_type,
            time_in_force=spec.time_in_force,
            quantity=spec.quantity,
            limit_price=spec.limit_price,
            stop_price=spec.stop_price,
            reduce_only=spec.reduce_only,
            post_only=spec.post_only,
            reference_price=spec.reference_price,
            trailing_amount=spec.trailing_amount,
            trailing_percent=spec.trailing_percent,
            expire_at=spec.expire_at,
            emulated=emulated,
            reason="held by the OMS until the quotes trigger it" if emulated else None,
            created_at=now,
            updated_at=now,
        )
        order.events.append(OrderChanged(order.order_id, order.version, order.status))
        return order

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal

    @property
    def remaining_quantity(self) -> Decimal:
        return max(self.quantity - self.filled_quantity, ZERO)

    # --- decisions the OMS takes ----------------------------------------------------------

    def submit(self, now: datetime) -> bool:
        """The risk gate approved the order; False when that is no news.

        A redelivered approval, or one that venue reports overtook (see the FSM), changes
        nothing. An approval for a denied order means the risk gate contradicted itself.
        """
        if self.status is OrderStatus.DENIED:
            raise InvalidTransition(self.status, OrderStatus.SUBMITTED)
        if self.status is not OrderStatus.INITIALIZED:
            return False
        self._move_to(OrderStatus.SUBMITTED, now)
        return True

    def deny(self, reason: str, now: datetime) -> bool:
        """The risk gate denied the order; False for a redelivered denial."""
        if self.status is OrderStatus.DENIED:
            return False
        self._move_to(OrderStatus.DENIED, now, reason)
        return True

    def release(self, trigger_price: Decimal, proposal_id: str, now: datetime) -> OrderSpec:
        """A held order's trigger fired: the order the venue gets, to be proposed to risk.

        The order keeps its own type and prices (a stop is what the trader placed); it stays
        INITIALIZED until the risk gate decides on the released order, like any new order.
        """
        if not self.is_held:
            raise InvalidTransition(self.status, OrderStatus.SUBMITTED)
        self.proposal_id = proposal_id
        self.released_at = now
        self.reference_price = trigger_price
        sent = emulation.released(self.spec(), trigger_price)
        self.reason = f"triggered at {trigger_price}; released as a {sent.order_type} order"
        self._touch(now)
        return sent

    def expire(self, now: datetime) -> bool:
        """A held order reached its expiry before its trigger; False if it is no longer held."""
        if not self.is_held:
            return False
        self._move_to(OrderStatus.EXPIRED, now, "expired while held, before its trigger")
        return True

    def has_expired(self, now: datetime) -> bool:
        return self.expire_at is not None and self.expire_at <= now

    def request_expiry(self, now: datetime) -> bool:
        """A GTD/DAY order past its expiry: a held one expires; one at the venue is canceled
        (its CANCELED report then reads as EXPIRED). False when there is nothing to do."""
        if self.expire_at is None or self.expire_at > now:
            return False
        if self.is_held:
            return self.expire(now)
        return self.request_cancel(f"expired at {self.expire_at.isoformat()}", now)

    @property
    def is_held(self) -> bool:
        """Held by the OMS for emulation, not yet triggered: no venue has seen it, nor will."""
        return self.emulated and self.status is OrderStatus.INITIALIZED and self.released_at is None

    def request_cancel(self, reason: str, now: datetime) -> bool:
        """We asked the venue to cancel; False when the order is finished or already asked.

        A held order is CANCELED at once: no venue holds it, so no cancel must be sent for it
        (callers check :attr:`status`).
        """
        if self.status.is_terminal or self.status is OrderStatus.PENDING_CANCEL:
            return False
        if self.is_held:
            self._move_to(OrderStatus.CANCELED, now, reason)
            return True
        self._move_to(OrderStatus.PENDING_CANCEL, now, reason)
        return True

    # --- what the venue says --------------------------------------------------------------

    def apply_report(self, report: ExecutionReport, now: datetime) -> AppliedReport:
        """Apply a venue report idempotently, whatever order the reports arrive in."""
        self._check_describes(report)
        previous = self.status
        new_fill = self._take_fill(report.fill)
        learned_venue_id = self._learn_venue_order_id(report.venue_order_id)
        advanced = self._advance_filled_quantity(report)
        implied = self._status_implied_by(report, now)
        ignored: OrderStatus | None = None
        if implied is not self.status:
            if self._is_stale(implied, advanced) or not can_transition(self.status, implied):
                ignored = implied
            else:
                self.status = implied
                self.reason = report.reason or self.reason
        changed = (
            new_fill is not None or learned_venue_id or advanced or self.status is not previous
        )
        if changed:
            self._touch(now)
        return AppliedReport(
            order_id=self.order_id,
            previous_status=previous,
            status=self.status,
            changed=changed,
            new_fill=new_fill,
            filled_quantity_advanced=advanced,
            ignored_status=ignored,
        )

    def _check_describes(self, report: ExecutionReport) -> None:
        if report.order_id != self.order_id:
            raise ReportMismatch(
                f"a report for order {report.order_id} was handed to order {self.order_id}"
            )
        for name in _IDENTITY_FIELDS:
            reported, ours = getattr(report, name), getattr(self, name)
            if reported != ours:
                raise ReportMismatch(
                    f"the report for order {self.order_id} says {name}={reported}, "
                    f"the order has {name}={ours}"
                )

    def _take_fill(self, fill: Fill | None) -> Fill | None:
        if fill is None or fill.fill_id in self.fill_ids:
            return None
        self.fill_ids.add(fill.fill_id)
        self.fills_quantity += fill.quantity
        self.fills_notional += fill.quantity * fill.price
        self.fees += fill.fee
        self.average_fill_price = self.fills_notional / self.fills_quantity
        self.events.append(
            OrderFilled(
                order_id=self.order_id,
                account=self.account,
                strategy=self.strategy,
                venue=self.venue,
                symbol=self.symbol,
                side=self.side,
                fill=fill,
            )
        )
        return fill

    def _learn_venue_order_id(self, venue_order_id: str | None) -> bool:
        # The first id the venue gives wins; the order is known by it for cancels.
        if venue_order_id is None or self.venue_order_id is not None:
            return False
        self.venue_order_id = venue_order_id
        return True

    def _advance_filled_quantity(self, report: ExecutionReport) -> bool:
        # Fills can exceed a report's cumulative quantity when the fill reports arrive first.
        reported = max(report.cumulative_quantity, self.fills_quantity)
        if reported <= self.filled_quantity:
            return False
        self.filled_quantity = reported
        # Without fills of our own, the venue's average is the best we know; once fills
        # arrive, their weighted average replaces it.
        if not self.fill_ids and report.average_price is not None:
            self.average_fill_price = report.average_price
        return True

    def _status_implied_by(self, report: ExecutionReport, now: datetime) -> OrderStatus:
        if self.filled_quantity >= self.quantity:
            return OrderStatus.FILLED
        # A FILLED report short of the quantity: the venue finished the order at less than we
        # asked (e.g. a reduce-only order clipped to a smaller position). It is done.
        if report.status is ExecutionStatus.FILLED and self.filled_quantity > ZERO:
            return OrderStatus.FILLED
        ending = _ENDINGS.get(report.status)
        if ending is OrderStatus.CANCELED and self.has_expired(report.venue_time or now):
            # The OMS cancels a GTD/DAY order at its expiry when the venue does not (see
            # .order_types); the cancel that answers it means the order expired.
            return OrderStatus.EXPIRED
        if ending is not None:
            return ending
        # The venue holds the order.
        if self.filled_quantity > ZERO:
            return OrderStatus.PARTIALLY_FILLED
        if report.status is ExecutionStatus.TRIGGERED:
            return OrderStatus.TRIGGERED
        return OrderStatus.ACCEPTED

    def _is_stale(self, implied: OrderStatus, advanced: bool) -> bool:
        """A report that moved no quantity can only bring status news that is still current."""
        if advanced:
            return False
        if self.status.is_terminal:
            return True  # only a fill (that raced the cancel or expiry) reopens a finished order
        # "Still working" was sent before our cancel reached the venue; it does not answer it.
        return self.status is OrderStatus.PENDING_CANCEL and implied in _WORKING

    # --- bookkeeping ----------------------------------------------------------------------

    def _move_to(self, target: OrderStatus, now: datetime, reason: str | None = None) -> None:
        self.status = transition(self.status, target)
        if reason is not None:
            self.reason = reason
        self._touch(now)

    def _touch(self, now: datetime) -> None:
        self.version += 1
        self.updated_at = now
        self.events.append(OrderChanged(self.order_id, self.version, self.status))

    # --- views ------------------------------------------------------------------------------

    def spec(self) -> OrderSpec:
        return OrderSpec(
            order_id=self.order_id,
            account=self.account,
            strategy=self.strategy,
            venue=self.venue,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            time_in_force=self.time_in_force,
            quantity=self.quantity,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            reduce_only=self.reduce_only,
            post_only=self.post_only,
            reference_price=self.reference_price,
            trailing_amount=self.trailing_amount,
            trailing_percent=self.trailing_percent,
            expire_at=self.expire_at,
        )

    def to_view(self) -> OrderView:
        return OrderView(
            order_id=self.order_id,
            signal_id=self.signal_id,
            account=self.account,
            strategy=self.strategy,
            venue=self.venue,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            quantity=self.quantity,
            status=self.status,
            filled_quantity=self.filled_quantity,
            average_fill_price=self.average_fill_price,
            fees=self.fees,
            venue_order_id=self.venue_order_id,
            reduce_only=self.reduce_only,
            reason=self.reason,
            version=self.version,
            created_at=self.created_at,
            updated_at=self.updated_at,
            time_in_force=self.time_in_force,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            trailing_amount=self.trailing_amount,
            trailing_percent=self.trailing_percent,
            expire_at=self.expire_at,
            post_only=self.post_only,
            emulated=self.emulated,
            released_at=self.released_at,
        )
