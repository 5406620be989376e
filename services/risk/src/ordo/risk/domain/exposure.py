"""What an account holds and what it may come to hold: positions plus approved, unfilled orders.

Positions arrive per strategy and symbol from the OMS; the limits apply to the account's net
position per venue and symbol. Orders the risk gate approved but the venue has not filled yet are
*reservations*. The limits are checked against the worst case on each side: the furthest the net
position can get if open orders fill in any amounts and in any sequence. On the buy side that is
the position plus every open buy, plus reduce-only buys only as far as they can go, which is up to
flat from a short (a reduce-only order never crosses flat). Every reachable position lies between
the two worst cases, so a limit that holds for both holds whatever fills.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from ordo.contracts.enums import Side
from ordo.contracts.orders import OrderSpec, PositionView

ZERO = Decimal(0)


class ExposureError(ValueError):
    """A position or order that cannot belong to this exposure."""


class Instrument(NamedTuple):
    venue: str
    symbol: str


class PositionKey(NamedTuple):
    """One strategy's position in one instrument: what ``max_open_positions`` counts."""

    strategy: str
    venue: str
    symbol: str

    @property
    def instrument(self) -> Instrument:
        return Instrument(self.venue, self.symbol)


@dataclass(frozen=True)
class HeldPosition:
    quantity: Decimal  # signed: short < 0
    version: int
    average_entry: Decimal | None


@dataclass(frozen=True)
class Reservation:
    """An approved order's quantity that has not filled yet."""

    order: OrderSpec
    remaining: Decimal

    @property
    def instrument(self) -> Instrument:
        return Instrument(self.order.venue, self.order.symbol)

    @property
    def key(self) -> PositionKey:
        return PositionKey(self.order.strategy, self.order.venue, self.order.symbol)


def reduces_exposure(before: Decimal, after: Decimal) -> bool:
    """True when ``after`` is strictly closer to flat than ``before`` without crossing it."""
    same_side_or_flat = before * after >= 0
    return same_side_or_flat and abs(after) < abs(before)


def signed_quantity(order: OrderSpec) -> Decimal:
    return order.quantity * order.side.sign


class Exposure:
    """One account's positions and reservations. Mutable; :meth:`copy` for what-if evaluation."""

    def __init__(self, account: str) -> None:
        self._account = account
        # Flat positions are kept too: their version stops a late, older view from reviving them.
        self._positions: dict[PositionKey, HeldPosition] = {}
        self._reservations: dict[str, Reservation] = {}

    @property
    def account(self) -> str:
        return self._account

    def copy(self) -> "Exposure":
        twin = Exposure(self._account)
        twin._positions = dict(self._positions)
        twin._reservations = dict(self._reservations)
        return twin

    # -- updates ---------------------------------------------------------------------------------

    def apply_position(self, view: PositionView) -> bool:
        """Take the OMS's position; returns False when the view is older than the one held."""
        self._require_account(view.account, what=f"position {view.symbol}")
        key = PositionKey(view.strategy, view.venue, view.symbol)
        held = self._positions.get(key)
        if held is not None and view.version < held.version:
            return False
        self._positions[key] = HeldPosition(view.quantity, view.version, view.average_entry)
        return True

    def reserve(self, order: OrderSpec, *, remaining: Decimal | None = None) -> None:
        """Count an approved order until it fills or ends.

        ``remaining`` restores a reservation that has partly filled already (the service rebuilds
        the exposure from its store for every decision); by default the whole order counts.
        """
        self._require_account(order.account, what=f"order {order.order_id}")
        if order.order_id in self._reservations:
            raise ExposureError(f"order {order.order_id} is already reserved")
        counted = order.quantity if remaining is None else remaining
        if not ZERO <= counted <= order.quantity:
            raise ExposureError(
                f"order {order.order_id} cannot keep {counted} of its {order.quantity} reserved"
            )
        self._reservations[order.order_id] = Reservation(order, counted)

    # -- questions -------------------------------------------------------------------------------

    def positions(self) -> dict[PositionKey, HeldPosition]:
        return dict(self._positions)

    def reservations(self) -> tuple[Reservation, ...]:
        return tuple(self._reservations.values())

    def is_reserved(self, order_id: str) -> bool:
        return order_id in self._reservations

    def net_position(self, venue: str, symbol: str) -> Decimal:
        """The filled position, summed over the account's strategies."""
        instrument = Instrument(venue, symbol)
        held = (q.quantity for key, q in self._positions.items() if key.instrument == instrument)
        return sum(held, ZERO)

    def reserved_quantity(self, venue: str, symbol: str, side: Side) -> Decimal:
        instrument = Instrument(venue, symbol)
        return sum(
            (
                reservation.remaining
                for reservation in self._reservations.values()
                if reservation.instrument == instrument and reservation.order.side is side
            ),
            ZERO,
        )

    def worst_case_position(self, venue: str, symbol: str, side: Side) -> Decimal:
        """The furthest the net position can go towards ``side`` if open orders fill."""
        return self._worst_case(Instrument(venue, symbol), side)

    def position_before(self, order: OrderSpec) -> Decimal:
        """The worst case on the order's side, without the order."""
        return self._worst_case(Instrument(order.venue, order.symbol), order.side)

    def position_after(self, order: OrderSpec) -> Decimal:
        """The worst case on the order's side with the order open too (signed)."""
        return self._worst_case(Instrument(order.venue, order.symbol), order.side, extra=order)

    def _worst_case(
        self, instrument: Instrument, side: Side, extra: OrderSpec | None = None
    ) -> Decimal:
        open_orders = [
            (r.order.reduce_only, r.remaining)
            for r in self._reservations.values()
            if r.instrument == instrument and r.order.side is side
        ]
        if extra is not None:
            open_orders.append((extra.reduce_only, extra.quantity))
        plain = sum((quantity for reduce_only, quantity in open_orders if not reduce_only), ZERO)
        reducing = sum((quantity for reduce_only, quantity in open_orders if reduce_only), ZERO)
        position = self.net_position(*instrument)
        # Reduce-only orders fill only while the position is on the other side, and only to flat.
        room_to_flat = max(ZERO, -position * side.sign)
        return position + side.sign * (plain + min(reducing, room_to_flat))

    def order_reduces_exposure(self, order: OrderSpec) -> bool:
        return reduces_exposure(self.position_before(order), self.position_after(order))

    def open_positions(self) -> frozenset[PositionKey]:
        """Strategy positions that are open, or will be once an approved entry fills."""
        held = {key for key, position in self._positions.items() if position.quantity != 0}
        pending = {r.key for r in self._reservations.values() if not r.order.reduce_only}
        return frozenset(held | pending)

    def opens_new_position(self, order: OrderSpec) -> bool:
        key = PositionKey(order.strategy, order.venue, order.symbol)
        return not order.reduce_only and key not in self.open_positions()

    def _require_account(self, account: str, *, what: str) -> None:
        if account != self._account:
            raise ExposureError(f"{what} belongs to account {account!r}, not to {self._account!r}")
