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

from ordo.contracts.enums import OrderType, Side
from ordo.contracts.orders import OrderSpec, PositionView
from ordo.risk.domain.pricing import valuation_price

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
    realised_pnl: Decimal = ZERO  # cumulative, after fees (the OMS's PositionView)


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


def is_stop(order: OrderSpec) -> bool:
    return order.order_type in _STOP_TYPES


_STOP_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})


def _on(order: OrderSpec | None, instrument: "Instrument", side: Side) -> bool:
    return (
        order is not None
        and order.side is side
        and order.symbol == instrument.symbol
        and order.venue == instrument.venue
    )


class Exposure:
    """One account's positions and reservations. Mutable; :meth:`copy` for what-if evaluation."""

    def __init__(self, account: str) -> None:
        self._account = account
        # Flat positions are kept too: their version stops a late, older view from reviving them.
        self._positions: dict[PositionKey, HeldPosition] = {}
        self._reservations: dict[str, Reservation] = {}
        # Sums kept as positions and reservations arrive, so that a check costs no scan: the
        # net position per instrument, and the open quantity per instrument, side and kind.
        self._net: dict[Instrument, Decimal] = {}
        self._open: dict[tuple[Instrument, Side, bool], Decimal] = {}
        self._top_price: dict[Instrument, Decimal] = {}
        self._revision = 0
        self._positions_revision = 0

    @property
    def account(self) -> str:
        return self._account

    @property
    def revision(self) -> int:
        """Moves on with every change: what was computed at one revision holds for it alone."""
        return self._revision

    @property
    def positions_revision(self) -> int:
        """Moves on with every change of a position (what equity is computed from)."""
        return self._positions_revision

    def copy(self) -> "Exposure":
        twin = Exposure(self._account)
        twin._positions = dict(self._positions)
        twin._reservations = dict(self._reservations)
        twin._net = dict(self._net)
        twin._open = dict(self._open)
        twin._top_price = dict(self._top_price)
        twin._revision = self._revision
        twin._positions_revision = self._positions_revision
        return twin

    # -- updates ---------------------------------------------------------------------------------

    def apply_position(self, view: PositionView) -> bool:
        """Take the OMS's position; returns False when the view is older than the one held."""
        self._require_account(view.account, what=f"position {view.symbol}")
        key = PositionKey(view.strategy, view.venue, view.symbol)
        held = self._positions.get(key)
        if held is not None and view.version < held.version:
            return False
        self._positions[key] = HeldPosition(
            view.quantity, view.version, view.average_entry, view.realised_pnl
        )
        was = ZERO if held is None else held.quantity
        self._net[key.instrument] = self._net.get(key.instrument, ZERO) + view.quantity - was
        self._revision += 1
        self._positions_revision += 1
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
        reservation = Reservation(order, counted)
        self._reservations[order.order_id] = reservation
        side = (reservation.instrument, order.side, order.reduce_only)
        self._open[side] = self._open.get(side, ZERO) + counted
        price = valuation_price(order)
        if price is not None:
            top = self._top_price.get(reservation.instrument)
            self._top_price[reservation.instrument] = price if top is None else max(top, price)
        self._revision += 1

    # -- questions -------------------------------------------------------------------------------

    def positions(self) -> dict[PositionKey, HeldPosition]:
        return dict(self._positions)

    def reservations(self) -> tuple[Reservation, ...]:
        return tuple(self._reservations.values())

    def is_reserved(self, order_id: str) -> bool:
        return order_id in self._reservations

    def net_position(self, venue: str, symbol: str) -> Decimal:
        """The filled position, summed over the account's strategies."""
        return self._net.get(Instrument(venue, symbol), ZERO)

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
        plain = self._open.get((instrument, side, False), ZERO)
        reducing = self._open.get((instrument, side, True), ZERO)
        if extra is not None:
            if extra.reduce_only:
                reducing += extra.quantity
            else:
                plain += extra.quantity
        position = self._net.get(instrument, ZERO)
        # Reduce-only orders fill only while the position is on the other side, and only to flat.
        room_to_flat = max(ZERO, -position * side.sign)
        return position + side.sign * (plain + min(reducing, room_to_flat))

    def pending_reduce_only(self, order: OrderSpec) -> Decimal:
        """What open reduce-only orders of the same kind as ``order`` may still take off.

        The kinds are stops and the rest (take-profits, plain exits). A protective stop and a
        take-profit are the two legs of one exit, each sized to the whole position, of which one
        is cancelled when the other fills; two exits of the same kind add up.
        """
        instrument = Instrument(order.venue, order.symbol)
        kind = is_stop(order)
        return sum(
            (
                r.remaining
                for r in self._reservations.values()
                if r.order.reduce_only
                and r.order.side is order.side
                and r.instrument == instrument
                and is_stop(r.order) is kind
            ),
            ZERO,
        )

    def instruments(self) -> frozenset[Instrument]:
        """Every instrument the account holds or has open orders in."""
        held = {instrument for instrument, net in self._net.items() if net}
        return frozenset(held | {instrument for instrument, _, _ in self._open})

    def largest_position(self, instrument: Instrument, extra: OrderSpec | None = None) -> Decimal:
        """The larger absolute worst case of the two sides (``extra`` counted as open too)."""
        buy = self._worst_case(
            instrument, Side.BUY, extra if _on(extra, instrument, Side.BUY) else None
        )
        sell = self._worst_case(
            instrument, Side.SELL, extra if _on(extra, instrument, Side.SELL) else None
        )
        return max(abs(buy), abs(sell))

    def top_open_price(self, instrument: Instrument) -> Decimal | None:
        """The highest price an open order in the instrument is valued at."""
        return self._top_price.get(instrument)

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
