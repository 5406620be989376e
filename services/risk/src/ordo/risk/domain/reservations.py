"""How much of an approved order still counts, whichever of its two reports arrives first.

A fill reaches the risk service twice, on two subjects read by two consumers: as an
``OrderUpdated`` (the order's cumulative filled quantity) and as a ``PositionChanged`` (the
position that now holds the fill). Either may be handled first, and a retried message may come
after later ones. The exposure the limits see is *positions + reservations*, so at every moment a
fill must be counted in at least one of the two: counted in both is safe (briefly conservative),
counted in neither would let through an order that the limits forbid.

So a reservation lets go of a filled quantity only once *both* reports have shown it::

    counted = (filled_reported if ended else quantity) - min(filled_reported, filled_in_positions)

- ``filled_reported``: what the order updates say has filled (cumulative, only ever grows);
- ``filled_in_positions``: how much of this order the positions projection already holds;
- while the order is live its unfilled part counts too; once it has ended (filled, canceled,
  expired, rejected) only the fills that the positions have not shown yet still count.

Order update first: the min is what the positions hold, so the new fill stays reserved until its
position change arrives. Position change first: the min is what the order reported, so the fill is
counted in the position *and* the reservation for a moment (conservative, never under-counted).
Once both have arrived and the order has ended, ``counted`` is 0 and the position holds every
fill: the end state is exact in any order.

Attribution: the OMS moves a position's version up by one per fill, so a ``PositionChanged`` whose
version directly follows the projection's carries exactly one fill, of ``|new - held|`` (a fill
through flat included). When a version was skipped (a retried message overtaken by a later one,
a projection that started late) the fills cannot be told apart, and the skipped messages will be
ignored as older when they come. The reservations on that position are then taken as fully shown
in positions (:meth:`ReservationFills.all_in_positions`): from there on they follow the order
updates alone. The end state is still exact and no reservation is stranded waiting for a
position change that will never be counted; what is given up, for those reservations only, is
the guarantee in between (a later fill whose order update overtakes its position change is
counted nowhere until that position change arrives).
"""

from dataclasses import dataclass, replace
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class ReservationFills:
    """What the two reports have said so far about one approved order's fills."""

    quantity: Decimal
    filled_reported: Decimal = ZERO
    filled_in_positions: Decimal = ZERO
    ended: bool = False

    @property
    def counted(self) -> Decimal:
        """The quantity the reservation still adds to the account's exposure."""
        seen_by_both = min(self.filled_reported, self.filled_in_positions)
        still_to_fill_or_show = self.filled_reported if self.ended else self.quantity
        return max(ZERO, still_to_fill_or_show - seen_by_both)

    @property
    def settled(self) -> bool:
        """Ended, and the positions hold every fill: the reservation can be forgotten."""
        return self.ended and self.counted == 0

    def reported(self, filled_quantity: Decimal, *, ended: bool) -> "ReservationFills":
        """Take an order update. A late one with less filled does not bring quantity back."""
        filled = min(self.quantity, max(self.filled_reported, filled_quantity))
        return replace(self, filled_reported=filled, ended=self.ended or ended)

    def in_positions(self, fill_quantity: Decimal) -> "ReservationFills":
        """Take one fill of this order that the positions projection now holds."""
        shown = min(self.quantity, self.filled_in_positions + abs(fill_quantity))
        return replace(self, filled_in_positions=shown)

    def all_in_positions(self) -> "ReservationFills":
        """The fills can no longer be attributed: trust the order updates alone from now on."""
        return replace(self, filled_in_positions=self.quantity)


def fill_between(
    held_version: int, held_quantity: Decimal, new_version: int, new_quantity: Decimal
) -> Decimal | None:
    """The quantity of the single fill that took a position from held to new, if there was one.

    A position not held yet counts as version 0, flat. ``None`` when versions were skipped:
    several fills, of orders that cannot be told apart.
    """
    if new_version != held_version + 1:
        return None
    return abs(new_quantity - held_quantity)
