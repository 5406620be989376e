"""Which reports an order calls for: every fill once, every status change once, in order."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordo.contracts.enums import ExecutionStatus, Side
from ordo.contracts.execution import Fill
from ordo.execution.domain.reports import ReportDraft, rejection, reports_due
from ordo.execution.venues import VenueOrder

AT = datetime(2025, 1, 1, tzinfo=UTC)
S = ExecutionStatus


def fill(fill_id: str, quantity: str, price: str) -> Fill:
    return Fill(
        fill_id=fill_id,
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal(0),
        fee_currency="USDT",
        filled_at=AT,
    )


def venue_order(
    status: ExecutionStatus, quantity: str = "1", fills: tuple[Fill, ...] = ()
) -> VenueOrder:
    filled = sum((f.quantity for f in fills), Decimal(0))
    average = sum((f.quantity * f.price for f in fills), Decimal(0)) / filled if filled else None
    return VenueOrder(
        order_id="ord-1",
        venue_order_id="v-1",
        symbol="BTC/USDT",
        side=Side.BUY,
        status=status,
        quantity=Decimal(quantity),
        filled_quantity=filled,
        average_price=average,
        fills=fills,
    )


def test_a_market_order_filled_at_once_is_accepted_then_filled() -> None:
    order = venue_order(S.FILLED, "1", (fill("f-1", "1", "100"),))

    drafts = reports_due(order, last_status=None, reported_fill_ids=set())

    assert [d.status for d in drafts] == [S.ACCEPTED, S.FILLED]
    assert (drafts[1].cumulative_quantity, drafts[1].average_price) == (Decimal(1), Decimal(100))


def test_two_fills_carry_the_running_quantity_and_average() -> None:
    order = venue_order(S.FILLED, "2", (fill("f-1", "1", "100"), fill("f-2", "1", "110")))

    drafts = reports_due(order, last_status=S.ACCEPTED, reported_fill_ids=set())

    assert [(d.status, d.cumulative_quantity, d.average_price) for d in drafts] == [
        (S.PARTIALLY_FILLED, Decimal(1), Decimal(100)),
        (S.FILLED, Decimal(2), Decimal(105)),
    ]


def test_a_cancel_after_a_partial_fill_reports_the_cancel_with_what_was_filled() -> None:
    order = venue_order(S.CANCELED, "2", (fill("f-1", "1", "100"),))

    drafts = reports_due(order, last_status=S.PARTIALLY_FILLED, reported_fill_ids={"f-1"})

    assert drafts == [ReportDraft(S.CANCELED, Decimal(1), Decimal(100))]


def test_a_venue_that_reports_filled_without_its_trades_still_says_filled() -> None:
    order = venue_order(S.FILLED, "1")

    drafts = reports_due(order, last_status=S.ACCEPTED, reported_fill_ids=set())

    assert [d.status for d in drafts] == [S.FILLED]


def test_a_rejected_order_is_not_first_reported_accepted() -> None:
    assert reports_due(venue_order(S.REJECTED), last_status=None, reported_fill_ids=()) == [
        ReportDraft(S.REJECTED, Decimal(0))
    ]
    assert rejection("too small") == ReportDraft(S.REJECTED, Decimal(0), reason="too small")


@pytest.mark.parametrize(
    ("said", "stale"),
    [
        (S.FILLED, S.PARTIALLY_FILLED),
        (S.CANCELED, S.TRIGGERED),
        (S.PARTIALLY_FILLED, S.TRIGGERED),
        (S.EXPIRED, S.CANCELED),
    ],
)
def test_a_stale_read_of_the_venue_never_takes_a_reported_status_back(
    said: ExecutionStatus, stale: ExecutionStatus
) -> None:
    # Read before a newer look that was reported already (the follow-up job and the approval,
    # say, or a venue's lagging replica): nothing in it is news.
    order = venue_order(stale, "2", (fill("f-1", "1", "100"),))

    assert reports_due(order, last_status=said, reported_fill_ids={"f-1"}) == []


def test_an_order_triggered_after_its_acceptance_is_reported_triggered() -> None:
    drafts = reports_due(venue_order(S.TRIGGERED), last_status=S.ACCEPTED, reported_fill_ids=())

    assert [d.status for d in drafts] == [S.TRIGGERED]


@dataclass(frozen=True)
class History:
    """An order's life at the venue, and the moments (fills seen so far) it was looked at."""

    quantity: Decimal
    fills: tuple[Fill, ...]
    ending: ExecutionStatus | None  # how an unfinished order ends, if it does
    looks: tuple[int, ...]

    def at(self, seen: int, *, final: bool) -> VenueOrder:
        fills = self.fills[:seen]
        filled = sum((f.quantity for f in fills), Decimal(0))
        if filled == self.quantity:
            status = S.FILLED
        elif final and self.ending is not None:
            status = self.ending
        else:
            status = S.PARTIALLY_FILLED if fills else S.ACCEPTED
        return venue_order(status, str(self.quantity), fills)


@st.composite
def histories(draw: st.DrawFn) -> History:
    units = draw(st.lists(st.integers(1, 50), max_size=6))
    unfilled = draw(st.integers(0, 20))
    prices = draw(st.lists(st.integers(1, 10_000), min_size=len(units), max_size=len(units)))
    fills = tuple(
        fill(f"f-{i}", str(Decimal(q) / 1000), str(Decimal(p) / 100))
        for i, (q, p) in enumerate(zip(units, prices, strict=True))
    )
    ending = draw(st.sampled_from([None, S.CANCELED, S.EXPIRED])) if unfilled else None
    looks = sorted(draw(st.lists(st.integers(0, len(fills)), max_size=5)))
    quantity = Decimal(sum(units) + unfilled) / 1000
    return History(quantity, fills, ending, tuple(looks))


@given(histories())
def test_looking_at_an_order_any_number_of_times_reports_each_fill_once(history: History) -> None:
    last_status: ExecutionStatus | None = None
    reported: set[str] = set()
    drafts: list[ReportDraft] = []
    moments = [(seen, False) for seen in history.looks] + [(len(history.fills), True)] * 2
    for seen, final in moments:
        order = history.at(seen, final=final)
        new = reports_due(order, last_status=last_status, reported_fill_ids=reported)
        drafts.extend(new)
        reported |= {d.fill.fill_id for d in new if d.fill is not None}
        last_status = order.status

    fill_ids = [d.fill.fill_id for d in drafts if d.fill is not None]
    assert fill_ids == [f.fill_id for f in history.fills]
    cumulative = [d.cumulative_quantity for d in drafts if d.fill is not None]
    assert cumulative == sorted(set(cumulative))
    assert drafts[0].status is S.ACCEPTED
    assert drafts[-1].status is history.at(len(history.fills), final=True).status
