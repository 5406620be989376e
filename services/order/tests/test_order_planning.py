"""From an accepted signal to the orders of the thin path."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from order_domain_builders import (
    ACCOUNT,
    NOW,
    STRATEGY,
    SYMBOL,
    VENUE,
    fill,
    new_order,
    order_ids,
    report,
    signal,
)

from ordo.contracts.enums import ExecutionStatus, Intent, OrderType, Side, SizeUnit
from ordo.order.domain import MarketRules, Order, PlanningError, Position, plan_orders

D = Decimal
RULES = MarketRules(
    tick_size=D("0.1"), step_size=D("0.001"), min_quantity=D("0.001"), min_notional=D("5")
)
QTY = SizeUnit.QUANTITY
steps = st.sampled_from([D("1"), D("0.5"), D("0.01"), D("0.001"), D("0.00001"), D("25")])
amounts = st.integers(1, 10**9).map(lambda n: D(n) / 10**4)
costs = st.integers(0, 100).map(lambda n: D(n) / 10_000)  # 0 to 1 %


def holding(quantity: str) -> Position:
    position = Position.flat(ACCOUNT, STRATEGY, VENUE, SYMBOL, NOW)
    side = Side.BUY if D(quantity) > 0 else Side.SELL
    position.apply_fill(side, abs(D(quantity)), D("100"), D("0"))
    return position


def test_enter_long_buys_the_quantity_at_market() -> None:
    (order,) = plan_orders(signal(Intent.ENTER_LONG, (QTY, "0.5")), None, RULES, order_ids())

    assert (order.side, order.quantity, order.order_type) == (Side.BUY, D("0.5"), OrderType.MARKET)
    assert not order.reduce_only
    assert order.order_id == "ord-1"
    assert order.reference_price == D("100")
    assert (order.account, order.strategy, order.venue, order.symbol) == (
        ACCOUNT,
        STRATEGY,
        VENUE,
        SYMBOL,
    )


def test_enter_short_sells_the_quantity() -> None:
    (order,) = plan_orders(signal(Intent.ENTER_SHORT, (QTY, "0.5")), None, RULES, order_ids())
    assert (order.side, order.quantity) == (Side.SELL, D("0.5"))


def test_entering_long_while_short_is_refused_rather_than_netted() -> None:
    with pytest.raises(PlanningError, match=r"short position of 1.*reverse"):
        plan_orders(signal(Intent.ENTER_LONG, (QTY, "0.5")), holding("-1"), RULES, order_ids())


def test_a_quote_size_becomes_a_quantity_at_the_reference_price_floored_to_the_step() -> None:
    intent = signal(Intent.ENTER_LONG, (SizeUnit.QUOTE, "100"), reference_price="30000")
    (order,) = plan_orders(intent, None, RULES, order_ids())
    assert order.quantity == D("0.003")  # 0.00333... floored


def test_a_quote_size_leaves_room_for_the_fee_and_the_expected_slippage() -> None:
    rules = MarketRules(
        tick_size=D("0.01"),
        step_size=D("0.01"),
        taker_fee_rate=D("0.001"),
        expected_slippage=D("0.002"),
    )
    intent = signal(Intent.ENTER_LONG, (SizeUnit.QUOTE, "1000"), reference_price="100")

    (order,) = plan_orders(intent, None, rules, order_ids())

    # 10 at 100 would cost 1000 plus a fee of 1: over the budget. At the worst price the
    # sizing expects (100.2), 9.97 costs 998.994 + 0.998994 in fees: inside it.
    assert order.quantity == D("9.97")
    worst_price = D("100") * (1 + rules.expected_slippage)
    assert order.quantity * worst_price * (1 + rules.taker_fee_rate) <= D("1000")


@given(
    st.integers(10, 10**7).map(D),
    st.integers(1, 10**6).map(lambda n: D(n) / 100),
    costs,
    costs,
    steps,
)
def test_a_quote_size_plus_its_costs_stays_inside_the_budget_by_less_than_a_step(
    budget: Decimal, price: Decimal, fee_rate: Decimal, slippage: Decimal, step: Decimal
) -> None:
    rules = MarketRules(
        tick_size=D("0.01"), step_size=step, taker_fee_rate=fee_rate, expected_slippage=slippage
    )
    intent = signal(Intent.ENTER_SHORT, (SizeUnit.QUOTE, str(budget)), reference_price=str(price))
    try:
        (order,) = plan_orders(intent, None, rules, order_ids())
    except PlanningError:
        return  # the budget buys less than one step
    cost_per_unit = price * (1 + slippage) * (1 + fee_rate)
    assert order.quantity * cost_per_unit <= budget < (order.quantity + step) * cost_per_unit


def test_a_quote_size_without_a_reference_price_is_refused() -> None:
    intent = signal(Intent.ENTER_LONG, (SizeUnit.QUOTE, "100"), reference_price=None)
    with pytest.raises(PlanningError, match="reference_price"):
        plan_orders(intent, None, RULES, order_ids())


@pytest.mark.parametrize(
    ("unit", "missing"),
    [(SizeUnit.PERCENT_EQUITY, "needs the account's equity"), (SizeUnit.RISK, "needs a stop")],
)
def test_sizing_by_equity_or_risk_without_its_input_is_refused(
    unit: SizeUnit, missing: str
) -> None:
    with pytest.raises(PlanningError, match=missing):
        plan_orders(signal(Intent.ENTER_LONG, (unit, "1")), None, RULES, order_ids())


def test_an_entry_sized_by_percent_of_equity_spends_that_share_of_the_equity() -> None:
    intent = signal(Intent.ENTER_LONG, (SizeUnit.PERCENT_EQUITY, "10"))
    (order,) = plan_orders(intent, None, RULES, order_ids(), equity=D("10000"))
    assert order.reference_price is not None
    assert order.quantity * order.reference_price <= D("1000")


def test_an_entry_needs_a_size() -> None:
    with pytest.raises(PlanningError, match="needs a size"):
        plan_orders(signal(Intent.ENTER_LONG), None, RULES, order_ids())


def test_an_order_below_the_minimum_quantity_is_not_sent() -> None:
    with pytest.raises(PlanningError, match="minimum quantity"):
        plan_orders(signal(Intent.ENTER_LONG, (QTY, "0.0009")), None, RULES, order_ids())


def test_an_order_below_the_minimum_notional_is_not_sent() -> None:
    with pytest.raises(PlanningError, match="minimum notional"):
        plan_orders(signal(Intent.ENTER_LONG, (QTY, "0.04")), None, RULES, order_ids())


def test_without_a_reference_price_the_notional_is_left_to_the_risk_gate() -> None:
    intent = signal(Intent.ENTER_LONG, (QTY, "0.04"), reference_price=None)
    (order,) = plan_orders(intent, None, RULES, order_ids())
    assert order.reference_price is None


def test_add_follows_the_open_position() -> None:
    (order,) = plan_orders(signal(Intent.ADD, (QTY, "0.2")), holding("-1"), RULES, order_ids())
    assert (order.side, order.quantity, order.reduce_only) == (Side.SELL, D("0.2"), False)


def test_add_without_a_position_is_refused() -> None:
    with pytest.raises(PlanningError, match="no position is open"):
        plan_orders(signal(Intent.ADD, (QTY, "0.2")), None, RULES, order_ids())


def test_reduce_is_a_reduce_only_order_capped_at_the_position() -> None:
    (order,) = plan_orders(signal(Intent.REDUCE, (QTY, "5")), holding("1"), RULES, order_ids())
    assert (order.side, order.quantity, order.reduce_only) == (Side.SELL, D("1"), True)


def test_reduce_needs_a_size() -> None:
    with pytest.raises(PlanningError, match="reduce needs a size"):
        plan_orders(signal(Intent.REDUCE), holding("1"), RULES, order_ids())


def test_exit_signal_closes_the_whole_long() -> None:
    (order,) = plan_orders(signal(Intent.EXIT_LONG), holding("1.25"), RULES, order_ids())
    assert (order.side, order.quantity, order.reduce_only) == (Side.SELL, D("1.25"), True)


def test_exit_short_buys_back_the_whole_short() -> None:
    (order,) = plan_orders(signal(Intent.EXIT_SHORT), holding("-2"), RULES, order_ids())
    assert (order.side, order.quantity, order.reduce_only) == (Side.BUY, D("2"), True)


def test_an_exit_with_a_size_closes_that_much() -> None:
    intent = signal(Intent.EXIT_LONG, (QTY, "0.5"))
    (order,) = plan_orders(intent, holding("2"), RULES, order_ids())
    assert (order.quantity, order.reduce_only) == (D("0.5"), True)


@pytest.mark.parametrize(
    ("intent", "held"),
    [(Intent.EXIT_LONG, None), (Intent.EXIT_LONG, "-1"), (Intent.EXIT_SHORT, "1")],
)
def test_exiting_a_side_that_is_not_open_is_refused(intent: Intent, held: str | None) -> None:
    position = holding(held) if held else None
    with pytest.raises(PlanningError, match=r"no (long|short) position is open"):
        plan_orders(signal(intent), position, RULES, order_ids())


@pytest.mark.parametrize(("held", "side"), [("0.7", Side.SELL), ("-0.7", Side.BUY)])
def test_close_all_closes_whatever_is_open(held: str, side: Side) -> None:
    (order,) = plan_orders(signal(Intent.CLOSE_ALL), holding(held), RULES, order_ids())
    assert (order.side, order.quantity, order.reduce_only) == (side, D("0.7"), True)


@pytest.mark.parametrize("intent", [Intent.CLOSE_ALL, Intent.REDUCE, Intent.REVERSE])
def test_closing_a_flat_position_is_refused(intent: Intent) -> None:
    flat = Position.flat(ACCOUNT, STRATEGY, VENUE, SYMBOL, NOW)
    with pytest.raises(PlanningError, match="no position is open"):
        plan_orders(signal(intent, (QTY, "1")), flat, RULES, order_ids())


def test_reverse_closes_then_opens_the_other_side() -> None:
    intent = signal(Intent.REVERSE, (QTY, "0.3"))
    close, opening = plan_orders(intent, holding("1"), RULES, order_ids())

    assert (close.order_id, close.side, close.quantity, close.reduce_only) == (
        "ord-1",
        Side.SELL,
        D("1"),
        True,
    )
    assert (opening.order_id, opening.side, opening.quantity, opening.reduce_only) == (
        "ord-2",
        Side.SELL,
        D("0.3"),
        False,
    )


def test_reverse_without_a_size_mirrors_the_position() -> None:
    _, opening = plan_orders(signal(Intent.REVERSE), holding("-0.5"), RULES, order_ids())
    assert (opening.side, opening.quantity) == (Side.BUY, D("0.5"))


def working_exit(quantity: str, side: Side = Side.SELL, order_id: str = "exit-1") -> Order:
    """A reduce-only order of an earlier exit, approved but not (entirely) filled yet."""
    order = new_order(order_id=order_id, side=side, quantity=D(quantity), reduce_only=True)
    order.submit(NOW)
    return order


@pytest.mark.parametrize("intent", [Intent.EXIT_LONG, Intent.CLOSE_ALL, Intent.REDUCE])
def test_a_position_whose_exit_is_already_working_is_not_closed_twice(intent: Intent) -> None:
    with pytest.raises(PlanningError, match=r"already closing 1 .*exit-1"):
        plan_orders(
            signal(intent, (QTY, "1") if intent is Intent.REDUCE else None),
            holding("1"),
            RULES,
            order_ids(),
            working=[working_exit("1")],
        )


def test_an_exit_closes_only_what_the_working_exits_leave_open() -> None:
    (order,) = plan_orders(
        signal(Intent.EXIT_SHORT),
        holding("-1"),
        RULES,
        order_ids(),
        working=[working_exit("0.3", Side.BUY), working_exit("0.2", Side.BUY, "exit-2")],
    )
    assert (order.side, order.quantity, order.reduce_only) == (Side.BUY, D("0.5"), True)


def test_a_partly_filled_exit_still_counts_for_its_unfilled_rest() -> None:
    earlier = working_exit("1")
    earlier.apply_report(report(earlier, ExecutionStatus.PARTIALLY_FILLED, "0.4"), NOW)
    # The position already shows the 0.4 sold: 0.6 held, 0.6 still to be sold by the earlier exit.
    with pytest.raises(PlanningError, match=r"already closing 0\.6"):
        plan_orders(signal(Intent.EXIT_LONG), holding("0.6"), RULES, order_ids(), working=[earlier])


def test_finished_exits_and_orders_that_do_not_close_are_not_counted() -> None:
    denied = new_order(order_id="exit-denied", side=Side.SELL, reduce_only=True)
    denied.deny("TRADING_HALTED: account is halted", NOW)
    filled = working_exit("1", order_id="exit-filled")
    filled.apply_report(report(filled, ExecutionStatus.FILLED, "1", fill("f1", "1", "100")), NOW)
    entry = new_order(order_id="entry", side=Side.BUY, quantity=D("1"))
    opposite = working_exit("1", Side.BUY, "buy-back")

    (order,) = plan_orders(
        signal(Intent.EXIT_LONG),
        holding("1"),
        RULES,
        order_ids(),
        working=[denied, filled, entry, opposite],
    )
    assert order.quantity == D("1")


def test_a_reverse_leaves_the_close_to_an_exit_already_working() -> None:
    (opening,) = plan_orders(
        signal(Intent.REVERSE, (QTY, "0.3")),
        holding("1"),
        RULES,
        order_ids(),
        working=[working_exit("1")],
    )
    assert (opening.side, opening.quantity, opening.reduce_only) == (Side.SELL, D("0.3"), False)


def test_a_position_of_another_symbol_is_refused() -> None:
    other = Position.flat(ACCOUNT, STRATEGY, VENUE, "ETH/USDT", NOW)
    with pytest.raises(PlanningError, match="not the signal's"):
        plan_orders(signal(Intent.CLOSE_ALL), other, RULES, order_ids())


@pytest.mark.parametrize(
    "bad",
    [
        {"tick_size": D("0")},
        {"step_size": D("-0.1")},
        {"min_quantity": D("-1")},
        {"min_notional": D("-1")},
    ],
)
def test_market_rules_refuse_nonsense(bad: dict[str, Decimal]) -> None:
    fields = {"tick_size": D("0.1"), "step_size": D("0.01"), **bad}
    with pytest.raises(ValueError, match=r"must be positive|cannot be negative"):
        MarketRules(**fields)


def test_limit_prices_round_toward_the_safe_side() -> None:
    assert RULES.round_price(D("100.07"), Side.BUY) == D("100.0")
    assert RULES.round_price(D("100.01"), Side.SELL) == D("100.1")
    assert RULES.round_price(D("100.1"), Side.SELL) == D("100.1")


@given(amounts, steps)
def test_flooring_never_exceeds_and_stays_within_one_step(amount: Decimal, step: Decimal) -> None:
    rules = MarketRules(tick_size=D("0.01"), step_size=step)
    floored = rules.floor_quantity(amount)
    assert floored <= amount < floored + step
    assert floored % step == 0


@given(amounts, steps, st.sampled_from([Side.BUY, Side.SELL]))
def test_rounded_prices_sit_on_the_tick_on_the_safe_side(
    price: Decimal, tick: Decimal, side: Side
) -> None:
    rounded = MarketRules(tick_size=tick, step_size=D("1")).round_price(price, side)
    assert rounded % tick == 0
    assert abs(rounded - price) < tick
    assert rounded <= price if side is Side.BUY else rounded >= price
