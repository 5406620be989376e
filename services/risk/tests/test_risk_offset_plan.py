"""The loser/winner offset as a pure function: who loses, who covers it, and how much is closed."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ordo.risk.domain.offset import Group, GroupKey, OffsetSettings, plan_offset

SETTINGS = OffsetSettings(enabled=True, loss_percent=Decimal(10), loss_amount=Decimal(50))


def group(
    strategy: str,
    quantity: str,
    entry: str,
    mark: str,
    *,
    symbol: str = "BTC/USDT",
) -> Group:
    return Group(
        GroupKey(strategy, "paper", symbol), Decimal(quantity), Decimal(entry), Decimal(mark)
    )


def test_a_loser_is_closed_whole_and_the_best_winner_in_part() -> None:
    loser = group("dip", "10", "100", "80")  # -200, -20 %
    small = group("small", "1", "100", "150")  # +50
    big = group("big", "-20", "100", "60")  # short: +800

    plan = plan_offset([loser, small, big], SETTINGS)

    assert plan is not None
    assert (plan.loser.group, plan.loser.quantity, plan.loser.whole) == (loser, Decimal(10), True)
    assert plan.loss == Decimal(200)
    [winner] = plan.winners
    assert (winner.group, winner.quantity, winner.whole) == (big, Decimal(5), False)
    assert plan.covered == Decimal(200)


def test_winners_are_taken_in_order_of_profit_until_the_loss_is_covered() -> None:
    loser = group("dip", "10", "100", "80")  # -200
    first = group("first", "1", "100", "250")  # +150
    second = group("second", "2", "100", "140")  # +80
    third = group("third", "1", "100", "110")  # +10

    plan = plan_offset([third, loser, second, first], SETTINGS)

    assert plan is not None
    assert [(c.group.key.strategy, c.quantity, c.whole) for c in plan.winners] == [
        ("first", Decimal(1), True),
        ("second", Decimal("1.25"), False),
    ]
    assert plan.covered == plan.loss == Decimal(200)


@pytest.mark.parametrize(
    ("mark", "planned"),
    [("95", True), ("95.01", False)],
    ids=["exactly-at-both-thresholds", "one-tick-short"],
)
def test_the_loser_must_reach_both_the_percent_and_the_amount(mark: str, planned: bool) -> None:
    settings = OffsetSettings(enabled=True, loss_percent=Decimal(5), loss_amount=Decimal(50))
    loser = group("dip", "10", "100", mark)  # at 95: -50, -5 %
    winner = group("win", "10", "100", "200")

    assert (plan_offset([loser, winner], settings) is not None) is planned


def test_a_big_loss_under_the_percent_is_no_loser() -> None:
    huge = group("huge", "1000", "100", "98")  # -2000 but only -2 %
    winner = group("win", "1000", "100", "200")

    assert plan_offset([huge, winner], SETTINGS) is None


def test_nothing_is_planned_when_the_winners_cannot_cover_the_loss() -> None:
    loser = group("dip", "10", "100", "80")  # -200
    winner = group("win", "1", "100", "250")  # +150

    assert plan_offset([loser, winner], SETTINGS) is None


def test_the_deepest_loss_is_the_loser() -> None:
    shallow = group("shallow", "10", "100", "85")  # -150
    deep = group("deep", "10", "100", "70")  # -300
    winner = group("win", "100", "100", "200")

    plan = plan_offset([shallow, deep, winner], SETTINGS)

    assert plan is not None
    assert plan.loser.group == deep
    assert [c.group for c in plan.winners] == [winner]  # the other loser is no winner


def test_fees_of_entry_and_exit_count_and_quantities_round_up_to_the_step() -> None:
    settings = OffsetSettings(
        enabled=True,
        loss_percent=Decimal(10),
        loss_amount=Decimal(50),
        fee_rate=Decimal("0.001"),
        quantity_steps={"ETH/USDT": Decimal("0.01")},
    )
    loser = group("dip", "10", "100", "80")  # -200, and 1.8 of fees (1000 in, 800 out)
    winner = group("win", "10", "100", "200", symbol="ETH/USDT")  # 100 - 0.3 of fees per unit

    plan = plan_offset([loser, winner], settings)

    assert plan is not None
    assert plan.loss == Decimal("201.8")
    [close] = plan.winners
    assert close.quantity == Decimal("2.03")  # 201.8 / 99.7 = 2.024..., up to the next 0.01
    assert plan.covered >= plan.loss


def test_offset_settings_refuse_enabling_without_thresholds() -> None:
    with pytest.raises(ValidationError, match="needs both loss_percent and loss_amount"):
        OffsetSettings(enabled=True, loss_percent=Decimal(5))
    with pytest.raises(ValidationError):
        OffsetSettings(quantity_steps={"BTC/USDT": Decimal(0)})


# -- properties ----------------------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10_000), places=2)
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1_000), places=3)


@st.composite
def accounts(draw: st.DrawFn) -> list[Group]:
    count = draw(st.integers(min_value=1, max_value=6))
    return [
        Group(
            GroupKey(f"s{i}", "paper", draw(st.sampled_from(["BTC/USDT", "ETH/USDT"]))),
            draw(quantities) * draw(st.sampled_from([1, -1])),
            draw(amounts),
            draw(amounts),
        )
        for i in range(count)
    ]


settings_drawn = st.builds(
    OffsetSettings,
    enabled=st.just(True),
    loss_percent=st.decimals(min_value=Decimal("0.1"), max_value=Decimal(100), places=1),
    loss_amount=amounts,
    fee_rate=st.decimals(min_value=Decimal(0), max_value=Decimal("0.01"), places=4),
    quantity_steps=st.fixed_dictionaries(
        {}, optional={"BTC/USDT": st.sampled_from([Decimal("0.001"), Decimal("0.1")])}
    ),
)


@given(accounts(), settings_drawn)
def test_a_plan_covers_the_loss_and_never_closes_more_than_is_held(
    groups: list[Group], settings: OffsetSettings
) -> None:
    plan = plan_offset(groups, settings)
    if plan is None:
        return
    assert plan.covered >= plan.loss > 0
    assert plan.loser.whole
    for close in plan.closes:
        assert 0 < close.quantity <= close.group.held
    closed = [close.group.key for close in plan.closes]
    assert len(closed) == len(set(closed))  # the loser is never its own winner, nor any twice


@given(accounts(), settings_drawn)
def test_a_loser_with_enough_profit_beside_it_is_always_offset(
    groups: list[Group], settings: OffsetSettings
) -> None:
    assert settings.loss_percent is not None and settings.loss_amount is not None
    fee = settings.fee_rate
    losers = [
        g
        for g in groups
        if -g.unrealised >= settings.loss_amount and g.loss_percent >= settings.loss_percent
    ]
    if not losers:
        assert plan_offset(groups, settings) is None
        return
    deepest = min(losers, key=lambda g: (g.unrealised, g.key))
    loss = -deepest.realised_per_unit(fee) * deepest.held
    profit = sum(
        (
            g.realised_per_unit(fee) * g.held
            for g in groups
            if g is not deepest and g.realised_per_unit(fee) > 0
        ),
        Decimal(0),
    )

    plan = plan_offset(groups, settings)

    assert (plan is not None) == (profit >= loss > 0)
