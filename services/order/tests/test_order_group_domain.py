"""The pure parts of position groups: the grid, sizing, exits in step, the pool's priority."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ordo.contracts.enums import (
    GroupOrderRole,
    GroupStatus,
    OrderStatus,
    OrderType,
    Side,
    SizeUnit,
    TakeProfitMode,
)
from ordo.order.config import OrderSettings, StrategySettings
from ordo.order.domain import MarketRules, PlanningError
from ordo.order.domain.contingent import GroupLeg, oco_cancels, plan_exits
from ordo.order.domain.grid import plan_entries
from ordo.order.domain.groups import GroupRefused, InvalidGroupTransition, PositionGroup
from ordo.order.domain.pool import WaitingEntry, release_order
from ordo.order.domain.sizing import entry_quantity
from ordo.order.domain.strategy import DcaLevel, GridPlan, StrategyPlan, TakeProfitPlan

D = Decimal
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
RULES = MarketRules(tick_size=D("0.01"), step_size=D("0.001"), min_notional=D("5"))
GRID = GridPlan(D(1), (DcaLevel(D(1), D(1)), DcaLevel(D(2), D(2))))

prices = st.integers(100, 10**7).map(lambda n: D(n) / 100)
quantities = st.integers(1, 10**6).map(lambda n: D(n) / 1000)
gaps = st.integers(1, 5000).map(lambda n: D(n) / 100)
weights = st.integers(1, 10).map(D)
sides = st.sampled_from([Side.BUY, Side.SELL])


# --- the grid ----------------------------------------------------------------------------------


def test_a_long_grid_splits_its_size_by_weight_below_the_entry() -> None:
    base, first, second = plan_entries(Side.BUY, D("0.4"), D(100), GRID, RULES)
    assert (base.role, base.order_type, base.quantity) == (
        GroupOrderRole.BASE,
        OrderType.MARKET,
        D("0.1"),
    )
    assert (first.limit_price, first.quantity) == (D(99), D("0.1"))
    assert (second.limit_price, second.quantity) == (D(98), D("0.2"))


def test_a_short_grid_lies_above_the_entry() -> None:
    _, first, second = plan_entries(Side.SELL, D("0.4"), D(100), GRID, RULES)
    assert (first.limit_price, second.limit_price) == (D(101), D(102))


def test_a_level_below_the_minimum_notional_is_merged_into_the_one_before_it() -> None:
    # 0.12 split 1:1:2 is 0.03 / 0.03 / 0.06; at 100 the levels are worth 2.97 and 5.88: the
    # first is too small and goes to the base entry, the second stays.
    base, level = plan_entries(Side.BUY, D("0.12"), D(100), GRID, RULES)
    assert (base.quantity, level.limit_price, level.quantity) == (D("0.06"), D(98), D("0.06"))


def test_a_grid_without_a_reference_price_is_unplannable() -> None:
    with pytest.raises(PlanningError, match="reference_price"):
        plan_entries(Side.BUY, D("0.4"), None, GRID, RULES)


def test_a_base_entry_too_small_to_send_is_unplannable() -> None:
    with pytest.raises(PlanningError, match="base entry"):
        plan_entries(Side.BUY, D("0.01"), D(100), GRID, RULES)


@given(sides, quantities, prices, st.lists(st.tuples(gaps, weights), min_size=1, max_size=5))
def test_a_grid_never_exceeds_its_size_nor_sends_what_the_venue_refuses(
    side: Side, total: Decimal, price: Decimal, levels: list[tuple[Decimal, Decimal]]
) -> None:
    steps = sorted({gap for gap, _ in levels})
    grid = GridPlan(
        D(1), tuple(DcaLevel(gap, weight) for gap, (_, weight) in zip(steps, levels, strict=False))
    )
    try:
        entries = plan_entries(side, total, price, grid, RULES)
    except PlanningError:
        return  # the base entry alone is below the venue's minimums
    assert sum(entry.quantity for entry in entries) <= total
    for entry in entries[1:]:
        assert entry.limit_price is not None
        assert entry.limit_price % RULES.tick_size == 0
        assert (entry.limit_price - price) * side.sign < 0  # a level is always a better price
        assert RULES.violation(entry.quantity, entry.limit_price) is None
        assert entry.quantity % RULES.step_size == 0


# --- sizing ------------------------------------------------------------------------------------

COSTLY = MarketRules(
    tick_size=D("0.01"),
    step_size=D("0.0001"),
    taker_fee_rate=D("0.001"),
    expected_slippage=D("0.0005"),
)


@given(sides, st.integers(1, 10**6).map(D), prices, st.integers(1, 50).map(D))
def test_risk_sizing_never_loses_more_than_the_risk_at_the_stop_costs_included(
    side: Side, risk: Decimal, price: Decimal, stop_percent: Decimal
) -> None:
    stop = price * (1 - side.sign * stop_percent / 100)
    quantity = entry_quantity(SizeUnit.RISK, risk, side=side, rules=COSTLY, price=price, stop=stop)
    buy, sell = (price, stop) if side is Side.BUY else (stop, price)
    slip, fee = COSTLY.expected_slippage, COSTLY.taker_fee_rate
    loss = quantity * (buy * (1 + slip) * (1 + fee) - sell * (1 - slip) * (1 - fee))
    assert loss <= risk
    assert quantity % COSTLY.step_size == 0


def test_risk_sizing_divides_the_risk_by_the_distance_to_the_stop() -> None:
    rules = MarketRules(tick_size=D("0.01"), step_size=D("0.001"))
    quantity = entry_quantity(
        SizeUnit.RISK, D(100), side=Side.BUY, rules=rules, price=D(100), stop=D(95)
    )
    assert quantity == D(20)


def test_a_stop_on_the_wrong_side_cannot_size_a_risk() -> None:
    with pytest.raises(PlanningError, match="stop below"):
        entry_quantity(SizeUnit.RISK, D(100), side=Side.BUY, rules=RULES, price=D(100), stop=D(101))


@given(st.integers(1, 100).map(D), st.integers(10**3, 10**8).map(D), prices)
def test_percent_of_equity_spends_at_most_that_share_with_its_costs(
    percent: Decimal, equity: Decimal, price: Decimal
) -> None:
    quantity = entry_quantity(
        SizeUnit.PERCENT_EQUITY, percent, side=Side.BUY, rules=COSTLY, price=price, equity=equity
    )
    assert quantity * price * COSTLY.entry_cost_factor <= equity * percent / 100


def test_percent_of_equity_without_a_capital_is_unplannable() -> None:
    with pytest.raises(PlanningError, match="capital"):
        entry_quantity(SizeUnit.PERCENT_EQUITY, D(5), side=Side.BUY, rules=RULES, price=D(100))


# --- exits in step -----------------------------------------------------------------------------


def leg(
    order_id: str,
    role: GroupOrderRole,
    status: OrderStatus,
    quantity: str,
    filled: str = "0",
    **kw: object,
) -> GroupLeg:
    return GroupLeg(order_id, role, status, D(quantity), D(filled), **kw)  # type: ignore[arg-type]


AGGREGATE = StrategyPlan(
    take_profit=TakeProfitPlan(TakeProfitMode.AGGREGATE, aggregate_percent=D(1)),
    stop_loss_percent=D(5),
)


def test_exits_that_match_the_group_are_kept() -> None:
    legs = [
        leg("tp", GroupOrderRole.TAKE_PROFIT, OrderStatus.ACCEPTED, "0.2", limit_price=D("101")),
        leg("sl", GroupOrderRole.STOP_LOSS, OrderStatus.ACCEPTED, "0.2", stop_price=D("95")),
    ]
    assert plan_exits(Side.BUY, D("0.2"), D(100), legs, AGGREGATE, RULES).is_empty


def test_a_moved_average_replaces_the_aggregate_take_profit_and_the_stop() -> None:
    legs = [
        leg("tp", GroupOrderRole.TAKE_PROFIT, OrderStatus.ACCEPTED, "0.1", limit_price=D("101")),
        leg("sl", GroupOrderRole.STOP_LOSS, OrderStatus.ACCEPTED, "0.1", stop_price=D("95")),
    ]
    plan = plan_exits(Side.BUY, D("0.2"), D("99.5"), legs, AGGREGATE, RULES)
    assert set(plan.cancel) == {"tp", "sl"}
    take_profit, stop = plan.place
    assert (take_profit.limit_price, take_profit.quantity) == (D("100.5"), D("0.2"))
    assert (stop.stop_price, stop.quantity) == (D("94.53"), D("0.2"))


def test_hybrid_takes_profit_per_dca_leg_and_aggregates_the_rest() -> None:
    hybrid = StrategyPlan(take_profit=TakeProfitPlan(TakeProfitMode.HYBRID, D(2), D(1)))
    legs = [
        leg(
            "base", GroupOrderRole.BASE, OrderStatus.FILLED, "0.1", "0.1", average_fill_price=D(100)
        ),
        leg("dca", GroupOrderRole.DCA, OrderStatus.FILLED, "0.1", "0.1", average_fill_price=D(99)),
    ]
    plan = plan_exits(Side.BUY, D("0.2"), D("99.5"), legs, hybrid, RULES)
    per_leg, aggregate = plan.place
    assert (per_leg.role, per_leg.parent_order_id, per_leg.limit_price) == (
        GroupOrderRole.TAKE_PROFIT_LEG,
        "dca",
        D("100.98"),
    )
    assert (aggregate.role, aggregate.quantity, aggregate.limit_price) == (
        GroupOrderRole.TAKE_PROFIT,
        D("0.1"),
        D("100.5"),
    )


def test_a_superseded_exit_still_with_the_risk_gate_is_cancelled_once_a_match_exists() -> None:
    legs = [
        leg("old", GroupOrderRole.TAKE_PROFIT, OrderStatus.SUBMITTED, "0.1", limit_price=D("101")),
        leg(
            "new",
            GroupOrderRole.TAKE_PROFIT,
            OrderStatus.INITIALIZED,
            "0.2",
            limit_price=D("100.5"),
        ),
    ]
    plan = plan_exits(
        Side.BUY, D("0.2"), D("99.5"), legs, StrategyPlan(take_profit=AGGREGATE.take_profit), RULES
    )
    assert (plan.cancel, plan.place) == (("old",), ())


def test_once_flat_every_working_order_of_the_group_is_cancelled() -> None:
    legs = [
        leg("tp", GroupOrderRole.TAKE_PROFIT, OrderStatus.FILLED, "0.1", "0.1"),
        leg("sl", GroupOrderRole.STOP_LOSS, OrderStatus.ACCEPTED, "0.1"),
        leg("dca", GroupOrderRole.DCA, OrderStatus.ACCEPTED, "0.1"),
        leg("gone", GroupOrderRole.DCA, OrderStatus.PENDING_CANCEL, "0.1"),
    ]
    assert oco_cancels(legs) == ("sl", "dca")


# --- the group and the pool --------------------------------------------------------------------


def a_group(**fields: object) -> PositionGroup:
    values: dict[str, object] = {
        "group_id": "g",
        "account": "a",
        "strategy": "s",
        "venue": "paper",
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "status": GroupStatus.LIVE,
        "signal_id": "sig",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return PositionGroup(**values)  # type: ignore[arg-type]


def test_a_pyramid_beyond_the_limit_is_refused_with_the_count() -> None:
    group = a_group()
    group.add_pyramid(1, NOW)
    with pytest.raises(GroupRefused, match="1 of 1 pyramids"):
        group.add_pyramid(1, NOW)


def test_a_closed_group_never_goes_live_again() -> None:
    group = a_group(status=GroupStatus.CLOSED)
    with pytest.raises(InvalidGroupTransition):
        group.go_live(NOW)


def waiting(
    group_id: str, symbol: str, minutes: int, reference: str = "100", venue: str = "paper"
) -> WaitingEntry:
    return WaitingEntry(
        group_id, "s", venue, symbol, Side.BUY, D(reference), NOW + timedelta(minutes=minutes)
    )


def test_the_queue_releases_by_tier_then_loss_then_age() -> None:
    entries = [
        waiting("fifo-late", "SOL/USDT", 4),
        waiting("fifo-early", "ADA/USDT", 0),
        waiting("replacement", "XRP/USDT", 3),
        waiting("shallow-loss", "ETH/USDT", 2),
        waiting("deep-loss", "DOT/USDT", 5),
        waiting("continuation", "BTC/USDT", 6),
    ]
    ranked = release_order(
        entries,
        live=frozenset({("BTC/USDT", Side.BUY)}),
        marks={
            ("paper", "ETH/USDT"): D(99),
            ("paper", "DOT/USDT"): D(90),
            ("paper", "SOL/USDT"): D(101),
        },
        last_closed_symbol="XRP/USDT",
    )
    assert [entry.group_id for entry, _ in ranked] == [
        "continuation",
        "deep-loss",
        "shallow-loss",
        "replacement",
        "fifo-early",
        "fifo-late",
    ]
    assert [priority.tier for _, priority in ranked] == [1, 2, 2, 3, 4, 4]
    assert "10.00%" in ranked[1][1].why


def test_without_marks_the_loss_tier_compares_nothing_and_says_so() -> None:
    ((_, priority),) = release_order(
        [waiting("g", "ETH/USDT", 0)], live=frozenset(), marks={}, last_closed_symbol=None
    )
    assert priority.tier == 4
    assert "no mark for ETH/USDT" in priority.why


def test_an_entry_is_compared_with_its_own_venues_mark() -> None:
    ranked = release_order(
        [waiting("on-a", "ETH/USDT", 0, venue="a"), waiting("on-b", "ETH/USDT", 1, venue="b")],
        live=frozenset(),
        marks={("a", "ETH/USDT"): D(100), ("b", "ETH/USDT"): D(90)},
        last_closed_symbol=None,
    )
    assert [(entry.group_id, priority.tier) for entry, priority in ranked] == [
        ("on-b", 2),
        ("on-a", 4),
    ]


# --- the configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ({"take_profit": {"mode": "hybrid", "per_leg_percent": "1"}}, "needs aggregate_percent"),
        (
            {"take_profit": {"mode": "per_leg", "per_leg_percent": "1", "aggregate_percent": "1"}},
            "takes no aggregate_percent",
        ),
        (
            {
                "dca": {
                    "levels": [
                        {"gap_percent": "2", "weight": "1"},
                        {"gap_percent": "1", "weight": "1"},
                    ]
                }
            },
            "do not grow",
        ),
        ({"dca": {"levels": [{"gap_percent": "0", "weight": "1"}]}}, "greater than 0"),
        ({"max_pyramids": -1}, "greater than or equal to 0"),
        ({"stop_loss": "5"}, "Extra inputs are not permitted"),
        ({"sizing": {"unit": "lots", "value": "1"}}, "Input should be"),
    ],
)
def test_each_strategy_mistake_is_named_at_start_up(
    strategy: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as error:
        OrderSettings(strategies={"broken": strategy})
    assert "strategies.broken" in str(error.value)


def test_a_strategy_config_becomes_its_plan() -> None:
    settings = StrategySettings.model_validate(
        {
            "dca": {"levels": [{"gap_percent": "1", "weight": "2"}]},
            "max_pyramids": 2,
            "take_profit": {"mode": "per_leg", "per_leg_percent": "1.5"},
            "sizing": {"unit": "risk", "value": "50"},
        }
    )
    plan = settings.plan
    assert plan.grid == GridPlan(D(1), (DcaLevel(D(1), D(2)),))
    assert (plan.max_pyramids, plan.default_size) == (2, (SizeUnit.RISK, D(50)))
    assert plan.take_profit == TakeProfitPlan(TakeProfitMode.PER_LEG, per_leg_percent=D("1.5"))
