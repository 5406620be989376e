"""Mapping TradingView's action and market positions to a trading intent."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordo.contracts.enums import Intent, Side
from ordo.signal.domain.errors import UnmappableIntent
from ordo.signal.domain.intent import MarketPosition, needs_size, to_intent

BUY, SELL = Side.BUY, Side.SELL
LONG, SHORT, FLAT = MarketPosition.LONG, MarketPosition.SHORT, MarketPosition.FLAT


@pytest.mark.parametrize(
    ("action", "after", "before", "intent"),
    [
        (BUY, LONG, FLAT, Intent.ENTER_LONG),
        (BUY, LONG, LONG, Intent.ADD),
        (BUY, FLAT, SHORT, Intent.EXIT_SHORT),
        (BUY, LONG, SHORT, Intent.REVERSE),
        (BUY, SHORT, SHORT, Intent.REDUCE),
        (SELL, SHORT, FLAT, Intent.ENTER_SHORT),
        (SELL, SHORT, SHORT, Intent.ADD),
        (SELL, FLAT, LONG, Intent.EXIT_LONG),
        (SELL, SHORT, LONG, Intent.REVERSE),
        (SELL, LONG, LONG, Intent.REDUCE),
    ],
)
def test_action_and_positions_map_to_intent(
    action: Side, after: MarketPosition, before: MarketPosition, intent: Intent
) -> None:
    assert to_intent(action, after, before) is intent


@pytest.mark.parametrize(
    ("action", "after", "before"),
    [
        (BUY, SHORT, FLAT),
        (BUY, FLAT, FLAT),
        (BUY, FLAT, LONG),
        (BUY, SHORT, LONG),
        (SELL, LONG, FLAT),
        (SELL, FLAT, FLAT),
        (SELL, FLAT, SHORT),
        (SELL, LONG, SHORT),
    ],
)
def test_impossible_combinations_are_refused_with_a_reason(
    action: Side, after: MarketPosition, before: MarketPosition
) -> None:
    with pytest.raises(UnmappableIntent) as caught:
        to_intent(action, after, before)

    assert caught.value.field == "market_position"
    assert str(action) in caught.value.reason


@pytest.mark.parametrize(
    ("action", "after", "intent"),
    [
        (BUY, FLAT, Intent.EXIT_SHORT),
        (SELL, FLAT, Intent.EXIT_LONG),
        (BUY, SHORT, Intent.REDUCE),
        (SELL, LONG, Intent.REDUCE),
    ],
)
def test_missing_previous_position_is_inferred_where_the_outcome_tells_it(
    action: Side, after: MarketPosition, intent: Intent
) -> None:
    assert to_intent(action, after, None) is intent


@pytest.mark.parametrize(("action", "after"), [(BUY, LONG), (SELL, SHORT)])
def test_entry_add_or_reverse_cannot_be_told_apart_without_previous_position(
    action: Side, after: MarketPosition
) -> None:
    with pytest.raises(UnmappableIntent) as caught:
        to_intent(action, after, None)

    assert caught.value.field == "prev_market_position"


@pytest.mark.parametrize(
    ("contracts", "position_size", "intent"),
    [
        ("2", "2", Intent.ENTER_LONG),  # the order is the whole new position
        ("1", "3", Intent.ADD),  # the order is part of a larger position
        ("5", "2", Intent.REVERSE),  # the order also closed a short of 3
    ],
)
def test_sizes_tell_entry_add_and_reverse_apart(
    contracts: str, position_size: str, intent: Intent
) -> None:
    inferred = to_intent(
        BUY, LONG, None, contracts=Decimal(contracts), position_size=Decimal(position_size)
    )

    assert inferred is intent


def test_short_position_size_is_signed_in_tradingview() -> None:
    inferred = to_intent(SELL, SHORT, None, contracts=Decimal("1"), position_size=Decimal("-3"))

    assert inferred is Intent.ADD


def test_an_explicit_previous_position_wins_over_sizes() -> None:
    inferred = to_intent(BUY, LONG, FLAT, contracts=Decimal("1"), position_size=Decimal("3"))

    assert inferred is Intent.ENTER_LONG


def test_only_exits_may_omit_size() -> None:
    assert {intent for intent in Intent if not needs_size(intent)} == {
        Intent.EXIT_LONG,
        Intent.EXIT_SHORT,
        Intent.CLOSE_ALL,
    }


@given(
    action=st.sampled_from(Side),
    after=st.sampled_from(MarketPosition),
    before=st.none() | st.sampled_from(MarketPosition),
    contracts=st.none() | st.decimals(min_value=Decimal("0.001"), max_value=100, places=3),
    position_size=st.none() | st.decimals(min_value=-100, max_value=100, places=3),
)
def test_mapping_returns_an_intent_or_refuses_with_unmappable_intent(
    action: Side,
    after: MarketPosition,
    before: MarketPosition | None,
    contracts: Decimal | None,
    position_size: Decimal | None,
) -> None:
    try:
        intent = to_intent(action, after, before, contracts=contracts, position_size=position_size)
    except UnmappableIntent:
        return
    assert isinstance(intent, Intent)
