from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ordo.contracts.enums import DiscrepancyKind, ReconciliationOutcome, Severity
from ordo.contracts.execution import VenuePosition, VenueSnapshot
from ordo.contracts.orders import PositionView
from ordo.contracts.types import utc_now
from ordo.reconciler.domain.compare import (
    Discrepancy,
    InvalidPrice,
    Tolerances,
    compare_positions,
    outcome,
    positions_compared,
    requires_halt,
)

ACCOUNT, VENUE, BTC, ETH = "acc-1", "paper", "BTC/USDT", "ETH/USDT"

# A difference of 0.01 is noise; at 100 a unit, 10 units (1000) is the most that is only a warning.
TOLERANCES = Tolerances(quantity_tolerance=Decimal("0.01"), critical_notional=Decimal(1000))


def snapshot(*positions: tuple[str, str], account: str = ACCOUNT) -> VenueSnapshot:
    return VenueSnapshot(
        account=account,
        venue=VENUE,
        taken_at=utc_now(),
        positions=tuple(VenuePosition(symbol=s, quantity=Decimal(q)) for s, q in positions),
        correlation_id="recon-1",
        producer="test",
    )


def oms(
    quantity: str | Decimal,
    *,
    symbol: str = BTC,
    strategy: str = "trend",
    entry: str | None = "100",
    account: str = ACCOUNT,
    venue: str = VENUE,
) -> PositionView:
    return PositionView(
        account=account,
        strategy=strategy,
        venue=venue,
        symbol=symbol,
        quantity=Decimal(quantity),
        average_entry=None if entry is None else Decimal(entry),
        realised_pnl=Decimal(0),
        fees=Decimal(0),
        version=1,
        updated_at=utc_now(),
    )


def only(found: list[Discrepancy]) -> Discrepancy:
    assert len(found) == 1, found
    return found[0]


# -- agreement and tolerance --------------------------------------------------------------------


def test_matching_positions_are_clean() -> None:
    found = compare_positions(snapshot((BTC, "1.5")), (oms("1.5"),), TOLERANCES)

    assert found == []
    assert outcome(found) is ReconciliationOutcome.CLEAN


def test_nothing_on_either_side_is_clean() -> None:
    assert compare_positions(snapshot(), (), TOLERANCES) == []


def test_the_strategies_positions_are_summed_before_comparing() -> None:
    positions = (oms("2", strategy="trend"), oms("-0.5", strategy="meanrev"))

    assert compare_positions(snapshot((BTC, "1.5")), positions, TOLERANCES) == []


def test_strategies_that_net_to_flat_match_a_venue_without_the_symbol() -> None:
    positions = (oms("2", strategy="trend"), oms("-2", strategy="meanrev"))

    assert compare_positions(snapshot(), positions, TOLERANCES) == []


def test_a_difference_exactly_at_the_quantity_tolerance_is_ignored() -> None:
    assert compare_positions(snapshot((BTC, "1.01")), (oms("1"),), TOLERANCES) == []


def test_a_difference_just_over_the_quantity_tolerance_is_a_mismatch() -> None:
    found = only(compare_positions(snapshot((BTC, "1.0101")), (oms("1"),), TOLERANCES))

    assert found.kind is DiscrepancyKind.POSITION_MISMATCH
    assert found.severity is Severity.WARNING
    assert (found.symbol, found.venue_value, found.oms_value) == (
        BTC,
        Decimal("1.0101"),
        Decimal(1),
    )


def test_a_symbol_can_have_a_tolerance_of_its_own() -> None:
    tolerances = Tolerances(
        quantity_tolerance=Decimal("0.01"),
        critical_notional=Decimal(1000),
        symbol_quantity_tolerance={"SHIB/USDT": Decimal(1000)},
    )
    venue = snapshot(("SHIB/USDT", "1000"), (BTC, "0.02"))

    found = only(compare_positions(venue, (), tolerances))

    assert found.symbol == BTC


def test_with_no_tolerance_any_difference_is_a_mismatch() -> None:
    tolerances = Tolerances(critical_notional=Decimal(1000))

    assert compare_positions(snapshot((BTC, "1.00000001")), (oms("1"),), tolerances)


# -- severity by size ---------------------------------------------------------------------------


def test_a_difference_worth_exactly_the_critical_notional_is_a_warning() -> None:
    found = only(compare_positions(snapshot((BTC, "15")), (oms("5"),), TOLERANCES))

    assert found.severity is Severity.WARNING
    assert not requires_halt([found])


def test_a_difference_worth_a_cent_more_than_the_critical_notional_is_critical() -> None:
    found = only(compare_positions(snapshot((BTC, "15.0001")), (oms("5"),), TOLERANCES))

    assert found.severity is Severity.CRITICAL
    assert requires_halt([found])


def test_a_given_price_values_the_difference_before_the_oms_entry_does() -> None:
    found = only(
        compare_positions(
            snapshot((BTC, "2")), (oms("1", entry="100"),), TOLERANCES, prices={BTC: Decimal(1001)}
        )
    )

    assert found.severity is Severity.CRITICAL
    assert "worth 1001 at 1001" in found.detail


def test_the_oms_entry_price_is_weighted_by_each_strategys_size() -> None:
    positions = (oms("3", strategy="a", entry="100"), oms("1", strategy="b", entry="200"))

    found = only(compare_positions(snapshot((BTC, "14")), positions, TOLERANCES))

    # 3 at 100 and 1 at 200 average 125: a difference of 10 is worth 1250.
    assert found.severity is Severity.CRITICAL
    assert "worth 1250 at 125" in found.detail


def test_a_difference_that_cannot_be_valued_is_critical() -> None:
    found = only(compare_positions(snapshot((ETH, "0.5")), (), TOLERANCES))

    assert found.severity is Severity.CRITICAL
    assert "no price to value it" in found.detail


def test_a_price_that_is_not_positive_is_refused_not_used() -> None:
    with pytest.raises(InvalidPrice, match="ETH/USDT"):
        compare_positions(snapshot(), (), TOLERANCES, prices={ETH: Decimal(0)})


def test_the_detail_reads_as_plain_numbers_rounded_for_people() -> None:
    # 1 at 100 and 2 at 100.01 average 100.00666...: 28 digits that nobody wants on a phone.
    positions = (oms("1", strategy="a", entry="100"), oms("2", strategy="b", entry="100.01"))

    exact = Tolerances(critical_notional=Decimal(1000))

    found = only(compare_positions(snapshot((BTC, "3.123")), positions, exact))
    tiny = only(compare_positions(snapshot((BTC, "1E-7")), (), exact))

    assert found.detail == (
        "the venue holds 3.123 BTC/USDT and the OMS 3: a difference of 0.123, "
        "worth 12.3 at 100.00666667 (critical above 1000)"
    )
    assert tiny.detail == (
        "the venue holds 0.0000001 BTC/USDT and the OMS has no position: "
        "a difference of 0.0000001, with no price to value it"
    )


# -- one side only ------------------------------------------------------------------------------


def test_a_position_only_at_the_venue_is_a_mismatch() -> None:
    found = only(compare_positions(snapshot((ETH, "3")), (), TOLERANCES, prices={ETH: Decimal(10)}))

    assert (found.venue_value, found.oms_value) == (Decimal(3), Decimal(0))
    assert found.severity is Severity.WARNING
    assert "the OMS has no position" in found.detail


def test_a_position_only_in_the_oms_is_a_mismatch() -> None:
    found = only(compare_positions(snapshot(), (oms("-20"),), TOLERANCES))

    assert (found.venue_value, found.oms_value) == (Decimal(0), Decimal(-20))
    assert found.severity is Severity.CRITICAL
    assert "the venue has no position" in found.detail


def test_a_position_on_opposite_sides_counts_the_whole_gap() -> None:
    found = only(compare_positions(snapshot((BTC, "-6")), (oms("6"),), TOLERANCES))

    assert found.severity is Severity.CRITICAL
    assert "a difference of 12" in found.detail


def test_dust_on_one_side_within_tolerance_is_ignored() -> None:
    assert compare_positions(snapshot((BTC, "0.005")), (), TOLERANCES) == []


# -- scope and outcome --------------------------------------------------------------------------


def test_oms_positions_of_other_accounts_and_venues_are_left_out() -> None:
    positions = (oms("1"), oms("5", account="acc-2"), oms("7", venue="other"))

    assert compare_positions(snapshot((BTC, "1")), positions, TOLERANCES) == []


def test_differences_are_reported_per_symbol_in_symbol_order() -> None:
    found = compare_positions(
        snapshot((ETH, "1"), (BTC, "2")), (oms("1", symbol="SOL/USDT"),), TOLERANCES
    )

    assert [d.symbol for d in found] == [BTC, ETH, "SOL/USDT"]
    assert outcome(found) is ReconciliationOutcome.DISCREPANCIES


def test_warnings_alone_do_not_halt_the_account() -> None:
    found = compare_positions(snapshot((BTC, "1.5")), (oms("1"),), TOLERANCES)

    assert [d.severity for d in found] == [Severity.WARNING]
    assert not requires_halt(found)
    assert not requires_halt([])


# -- tolerances configuration -------------------------------------------------------------------


def test_a_negative_quantity_tolerance_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"quantity_tolerance[\s\S]*zero or more"):
        Tolerances(quantity_tolerance=Decimal(-1), critical_notional=Decimal(1))


def test_a_negative_symbol_tolerance_is_refused() -> None:
    with pytest.raises(ValidationError, match="zero or more"):
        Tolerances(critical_notional=Decimal(1), symbol_quantity_tolerance={BTC: Decimal(-1)})


@pytest.mark.parametrize("value", ["0", "-5"])
def test_the_critical_notional_must_be_positive(value: str) -> None:
    with pytest.raises(ValidationError, match=r"critical_notional[\s\S]*greater than zero"):
        Tolerances.model_validate({"critical_notional": value})


def test_the_critical_notional_must_be_configured() -> None:
    with pytest.raises(ValidationError, match="critical_notional"):
        Tolerances.model_validate({})


def test_tolerances_are_frozen() -> None:
    with pytest.raises(ValidationError):
        TOLERANCES.quantity_tolerance = Decimal(1)


# -- properties ---------------------------------------------------------------------------------

quantities = st.decimals(min_value=-50, max_value=50, places=3)


@given(venue_qty=quantities, parts=st.lists(quantities, max_size=4))
def test_only_the_strategies_sum_matters(venue_qty: Decimal, parts: list[Decimal]) -> None:
    split = tuple(oms(q, strategy=f"s{i}") for i, q in enumerate(parts))
    total = sum(parts, Decimal(0))
    merged = (oms(total),) if parts else ()

    found = compare_positions(snapshot((BTC, str(venue_qty))), split, TOLERANCES)

    assert found == compare_positions(snapshot((BTC, str(venue_qty))), merged, TOLERANCES)
    assert bool(found) is (abs(venue_qty - total) > TOLERANCES.quantity_tolerance)


@given(venue_qty=quantities, oms_qty=quantities)
def test_severity_follows_the_value_of_the_difference(venue_qty: Decimal, oms_qty: Decimal) -> None:
    marks = {BTC: Decimal(100)}

    found = compare_positions(snapshot((BTC, str(venue_qty))), (oms(oms_qty),), TOLERANCES, marks)

    difference = abs(venue_qty - oms_qty)
    if difference <= TOLERANCES.quantity_tolerance:
        assert found == []
    elif difference * 100 > TOLERANCES.critical_notional:
        assert only(found).severity is Severity.CRITICAL
    else:
        assert only(found).severity is Severity.WARNING


# -- what a run counts --------------------------------------------------------------------------


def test_the_symbols_of_either_side_of_the_account_are_counted_once() -> None:
    positions = (oms("1"), oms("2", strategy="meanrev"), oms("0", symbol="SOL/USDT"))
    elsewhere = (oms("3", symbol="XRP/USDT", account="acc-2"),)

    assert positions_compared(snapshot((BTC, "3"), (ETH, "1")), positions + elsewhere) == 3
    assert positions_compared(snapshot(), ()) == 0
