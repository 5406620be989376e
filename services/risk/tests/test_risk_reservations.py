"""A reservation keeps each fill counted until both its order update and its position change
have arrived, in whichever order, and ends exact."""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from risk_factories import order

from ordo.risk.domain.exposure import Exposure, ExposureError
from ordo.risk.domain.reservations import ReservationFills, fill_between

ZERO = Decimal(0)


def test_an_order_update_first_keeps_the_fill_reserved_until_the_position_shows_it() -> None:
    fills = ReservationFills(quantity=Decimal(2)).reported(Decimal(2), ended=True)

    assert fills.counted == 2
    assert fills.in_positions(Decimal(2)).settled


def test_a_position_first_counts_the_fill_twice_until_the_order_update() -> None:
    fills = ReservationFills(quantity=Decimal(2)).in_positions(Decimal(1))

    assert fills.counted == 2
    assert fills.reported(Decimal(1), ended=False).counted == 1


def test_an_ended_order_releases_its_unfilled_part_at_once() -> None:
    fills = ReservationFills(quantity=Decimal(5)).reported(Decimal(0), ended=True)

    assert fills.counted == 0
    assert fills.settled


def test_a_late_update_with_less_filled_brings_nothing_back() -> None:
    fills = ReservationFills(quantity=Decimal(5), filled_in_positions=Decimal(3))

    later = fills.reported(Decimal(3), ended=False).reported(Decimal(1), ended=False)

    assert later.filled_reported == 3
    assert later.counted == 2


def test_unattributable_fills_leave_the_reservation_to_the_order_updates() -> None:
    fills = ReservationFills(quantity=Decimal(4)).reported(Decimal(3), ended=False)

    assert fills.all_in_positions().counted == 1
    assert fills.all_in_positions().reported(Decimal(3), ended=True).settled


@pytest.mark.parametrize(
    ("held", "new", "fill"),
    [
        ((0, "0"), (1, "2"), Decimal(2)),  # the first fill, from flat
        ((3, "1"), (4, "-2"), Decimal(3)),  # through flat
        ((3, "1"), (5, "4"), None),  # version 4 skipped: two fills, whose?
        ((0, "0"), (7, "4"), None),  # a projection that starts late
    ],
)
def test_a_fill_is_attributed_only_across_consecutive_versions(
    held: tuple[int, str], new: tuple[int, str], fill: Decimal | None
) -> None:
    assert fill_between(held[0], Decimal(held[1]), new[0], Decimal(new[1])) == fill


def test_a_restored_reservation_counts_only_its_remainder() -> None:
    exposure = Exposure("acc-1")

    exposure.reserve(order("buy", "3", order_id="o-1"), remaining=Decimal("0.5"))

    assert exposure.reserved_quantity("paper", "BTC/USDT", order("buy").side) == Decimal("0.5")
    with pytest.raises(ExposureError, match="cannot keep 4"):
        exposure.reserve(order("buy", "3", order_id="o-2"), remaining=Decimal(4))


# -- any order of arrival ------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    filled: Decimal  # cumulative
    ended: bool


@dataclass(frozen=True)
class Shown:
    version: int  # the position's version after this fill (one version per fill)


@st.composite
def histories(draw: st.DrawFn) -> tuple[Decimal, list[Decimal], bool, list[Report | Shown]]:
    quantity = Decimal(draw(st.integers(1, 100))) / 10
    fills: list[Decimal] = []
    for tenths in draw(st.lists(st.integers(1, 40), max_size=5)):
        part = Decimal(tenths) / 10
        if sum(fills, ZERO) + part > quantity:
            break
        fills.append(part)
    ends = draw(st.booleans())
    cumulative = [sum(fills[: i + 1], ZERO) for i in range(len(fills))]
    reports = [Report(filled, ended=False) for filled in cumulative]
    if ends:
        reports = [*reports[:-1], Report(cumulative[-1] if fills else ZERO, ended=True)]
    events: list[Report | Shown] = [*reports, *(Shown(i + 1) for i in range(len(fills)))]
    return quantity, fills, ends, draw(st.permutations(events))


@given(history=histories())
def test_every_fill_stays_counted_whatever_arrives_first_and_the_end_is_exact(
    history: tuple[Decimal, list[Decimal], bool, list[Report | Shown]],
) -> None:
    quantity, fills, ends, events = history
    reservation = ReservationFills(quantity)
    held_version, held_quantity = 0, ZERO  # the positions projection, as the handler keeps it
    ended_seen = skipped = False
    final = sum(fills, ZERO)

    for event in events:
        if isinstance(event, Report):
            reservation = reservation.reported(event.filled, ended=event.ended)
            ended_seen = ended_seen or event.ended
        elif event.version > held_version:  # an older position change is ignored
            new_quantity = sum(fills[: event.version], ZERO)
            fill = fill_between(held_version, held_quantity, event.version, new_quantity)
            skipped = skipped or fill is None
            reservation = (
                reservation.all_in_positions() if fill is None else reservation.in_positions(fill)
            )
            held_version, held_quantity = event.version, new_quantity

        if not skipped:
            # Never less than the order can still come to: all of it while live, its fills once
            # ended. (After a skipped version the order updates alone decide, see the module.)
            assert held_quantity + reservation.counted >= (final if ended_seen else quantity)

    assert held_quantity == final
    assert held_quantity + reservation.counted == (final if ends else quantity)
    assert reservation.settled is ends
