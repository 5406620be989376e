from decimal import Decimal

import pytest
from risk_factories import ACCOUNT, SYMBOL, VENUE, context, order, position, proposal

from ordo.contracts.enums import OrderType, Side, TradingState
from ordo.contracts.orders import OrderSpec
from ordo.contracts.risk import DenialReason
from ordo.risk.domain.checks import (
    DenialCode,
    RiskContext,
    check_max_notional_per_order,
    check_max_open_positions,
    check_max_position_notional,
    check_max_position_quantity,
    check_order,
    check_reduce_only,
    check_trading_state,
    evaluate,
)


def codes(reasons: list[DenialReason] | tuple[DenialReason, ...]) -> list[str]:
    return [reason.code for reason in reasons]


def denial_codes(spec: OrderSpec, ctx: RiskContext) -> list[str]:
    return codes(check_order(spec, ctx))


# -- validity -----------------------------------------------------------------------------------


def test_a_well_formed_order_without_limits_passes() -> None:
    assert check_order(order("buy", "3"), context()) == []


def test_a_market_order_without_a_reference_price_is_denied_never_priced_by_guess() -> None:
    reasons = check_order(order(price=None), context())

    assert codes(reasons) == [DenialCode.MISSING_REFERENCE_PRICE]
    assert reasons[0].message == "a market order needs a reference_price to value its notional"


def test_a_missing_reference_price_is_reported_alone_not_with_every_limit() -> None:
    ctx = context(max_notional_per_order="10", max_position_notional="10")

    assert denial_codes(order(price=None), ctx) == [DenialCode.MISSING_REFERENCE_PRICE]


def test_a_limit_order_is_valued_at_its_limit_price() -> None:
    ctx = context(max_notional_per_order="1000")
    spec = order("buy", "10", order_type=OrderType.LIMIT, limit_price="100", price=None)

    assert check_max_notional_per_order(spec, ctx) is None


def test_a_sell_limit_below_the_market_is_valued_at_the_higher_reference_price() -> None:
    ctx = context(max_notional_per_order="1000")
    spec = order("sell", "10", order_type=OrderType.LIMIT, limit_price="90", price="100.01")

    reason = check_max_notional_per_order(spec, ctx)

    assert reason is not None
    assert reason.actual == Decimal("1000.10")


def test_a_stop_market_order_is_valued_at_its_stop_price() -> None:
    ctx = context(max_notional_per_order="1000")
    spec = order("sell", "10", order_type=OrderType.STOP_MARKET, stop_price="100.01", price=None)

    assert denial_codes(spec, ctx) == [DenialCode.MAX_NOTIONAL_PER_ORDER]


def test_a_trailing_stop_without_any_price_is_denied() -> None:
    spec = order(order_type=OrderType.TRAILING_STOP, price=None)

    assert denial_codes(spec, context()) == [DenialCode.MISSING_REFERENCE_PRICE]


@pytest.mark.parametrize(
    ("side", "order_type", "prices"),
    [
        # Fills at its limit or above: at 0.01 it would sell 1000 BTC "worth" 10.
        ("sell", OrderType.LIMIT, {"limit_price": "0.01"}),
        # Below the market it triggers at once and buys at the market, far above its stop.
        ("buy", OrderType.STOP_MARKET, {"stop_price": "0.01"}),
        # Its stop follows the market: the stop it started with caps nothing.
        ("sell", OrderType.TRAILING_STOP, {"stop_price": "0.01"}),
    ],
)
def test_an_order_its_own_price_does_not_cap_needs_a_reference_price(
    side: str, order_type: OrderType, prices: dict[str, str]
) -> None:
    ctx = context(max_notional_per_order="1000", max_position_notional="1000")
    spec = order(side, "1000", order_type=order_type, price=None, **prices)

    reasons = check_order(spec, ctx)

    assert codes(reasons) == [DenialCode.MISSING_REFERENCE_PRICE]
    assert "can fill beyond its own price" in reasons[0].message


def test_a_buy_stop_limit_without_a_reference_is_valued_at_its_highest_own_price() -> None:
    ctx = context(max_notional_per_order="1000")
    spec = order(
        "buy",
        "10",
        order_type=OrderType.STOP_LIMIT,
        stop_price="99",
        limit_price="100.01",
        price=None,
    )

    assert denial_codes(spec, ctx) == [DenialCode.MAX_NOTIONAL_PER_ORDER]


@pytest.mark.parametrize("quantity", ["0", "-1", "NaN"])
def test_a_quantity_that_is_not_positive_is_denied(quantity: str) -> None:
    # The contract already refuses these; the gate must too, whoever built the order.
    spec = order().model_copy(update={"quantity": Decimal(quantity)})

    assert denial_codes(spec, context()) == [DenialCode.INVALID_QUANTITY]


@pytest.mark.parametrize("field", ["limit_price", "stop_price", "reference_price"])
def test_a_price_that_is_not_positive_is_denied(field: str) -> None:
    spec = order(order_type=OrderType.STOP_LIMIT, limit_price="100", stop_price="99")
    spec = spec.model_copy(update={field: Decimal(0)})

    assert DenialCode.INVALID_PRICE in denial_codes(spec, context())


def test_an_order_for_another_account_is_denied() -> None:
    assert denial_codes(order(account="acc-2"), context()) == [DenialCode.ACCOUNT_MISMATCH]


def test_an_order_id_that_was_already_approved_is_denied() -> None:
    approved = order(order_id="o-dup")
    ctx = context(reserved=(approved,))

    assert denial_codes(order(order_id="o-dup"), ctx) == [DenialCode.DUPLICATE_ORDER_ID]


# -- max notional per order ---------------------------------------------------------------------


def test_an_order_exactly_at_the_notional_limit_passes() -> None:
    ctx = context(max_notional_per_order="1000")

    assert check_max_notional_per_order(order("buy", "10", price="100"), ctx) is None


def test_an_order_a_cent_over_the_notional_limit_is_denied_with_the_numbers() -> None:
    ctx = context(max_notional_per_order="1000")

    reason = check_max_notional_per_order(order("buy", "1", price="1000.01"), ctx)

    assert reason is not None
    assert reason.code == DenialCode.MAX_NOTIONAL_PER_ORDER
    assert (reason.limit, reason.actual) == (Decimal(1000), Decimal("1000.01"))


def test_the_notional_limit_applies_to_orders_that_reduce_too() -> None:
    ctx = context(position("100"), max_notional_per_order="1000")

    reason = check_max_notional_per_order(order("sell", "100", reduce_only=True), ctx)

    assert reason is not None


# -- max position -------------------------------------------------------------------------------


def test_a_position_exactly_at_the_quantity_limit_passes() -> None:
    ctx = context(position("40"), max_position_quantity="100")

    assert check_max_position_quantity(order("buy", "60"), ctx) is None


def test_a_position_a_fraction_over_the_quantity_limit_is_denied() -> None:
    ctx = context(position("40"), max_position_quantity="100")

    reason = check_max_position_quantity(order("buy", "60.01"), ctx)

    assert reason is not None
    assert reason.code == DenialCode.MAX_POSITION_QUANTITY
    assert (reason.limit, reason.actual) == (Decimal(100), Decimal("100.01"))


def test_the_quantity_limit_holds_for_short_positions_too() -> None:
    ctx = context(position("-40"), max_position_quantity="100")

    assert check_max_position_quantity(order("sell", "60"), ctx) is None
    assert check_max_position_quantity(order("sell", "60.01"), ctx) is not None


def test_approved_open_orders_count_against_the_position_limit() -> None:
    ctx = context(reserved=(order("buy", "40"),), max_position_quantity="100")

    assert check_max_position_quantity(order("buy", "60"), ctx) is None
    assert check_max_position_quantity(order("buy", "60.01"), ctx) is not None


def test_a_resting_order_on_the_other_side_does_not_make_room() -> None:
    # The sell may never fill; counting it would let the buys run past the limit.
    ctx = context(reserved=(order("sell", "50"),), max_position_quantity="100")

    assert check_max_position_quantity(order("buy", "100.01"), ctx) is not None


def test_a_resting_reduce_only_exit_clears_the_way_for_a_sell_past_flat() -> None:
    # The exit can fill to flat first; the plain sell then opens a short of its full size.
    exit_order = order("sell", "10", reduce_only=True)
    ctx = context(position("10"), reserved=(exit_order,), max_position_quantity="10")

    assert check_max_position_quantity(order("sell", "10"), ctx) is None
    assert check_max_position_quantity(order("sell", "10.01"), ctx) is not None


def test_the_position_limit_sums_the_strategies_of_the_account() -> None:
    ctx = context(
        position("60", strategy="trend"),
        position("30", strategy="breakout"),
        max_position_quantity="100",
    )

    assert check_max_position_quantity(order("buy", "10", strategy="new"), ctx) is None
    assert check_max_position_quantity(order("buy", "10.01", strategy="new"), ctx) is not None


def test_an_order_that_reduces_a_position_above_the_limit_passes() -> None:
    ctx = context(position("150"), max_position_quantity="100", max_position_notional="100")

    assert check_max_position_quantity(order("sell", "10"), ctx) is None
    assert check_max_position_notional(order("sell", "10"), ctx) is None
    assert check_max_position_quantity(order("buy", "1"), ctx) is not None


def test_flipping_through_flat_into_a_position_beyond_the_limit_is_denied() -> None:
    ctx = context(position("50"), max_position_quantity="100")

    assert check_max_position_quantity(order("sell", "150"), ctx) is None
    assert check_max_position_quantity(order("sell", "150.01"), ctx) is not None


def test_a_position_worth_exactly_the_notional_limit_passes() -> None:
    ctx = context(position("50"), max_position_notional="10000")

    assert check_max_position_notional(order("buy", "50", price="100"), ctx) is None


def test_a_position_worth_a_cent_over_the_notional_limit_is_denied() -> None:
    ctx = context(position("50"), max_position_notional="10000")

    reason = check_max_position_notional(order("buy", "1", price="196.08"), ctx)

    assert reason is not None
    assert reason.code == DenialCode.MAX_POSITION_NOTIONAL
    assert (reason.limit, reason.actual) == (Decimal(10000), Decimal("10000.08"))


def test_the_position_notional_counts_approved_open_orders() -> None:
    ctx = context(reserved=(order("buy", "50"),), max_position_notional="10000")

    assert check_max_position_notional(order("buy", "50", price="100"), ctx) is None
    assert check_max_position_notional(order("buy", "50", price="100.01"), ctx) is not None


# -- max open positions -------------------------------------------------------------------------


def two_open_positions(**limits: str | int) -> RiskContext:
    return context(
        position("1", strategy="trend"),
        position("-1", strategy="trend", symbol="ETH/USDT"),
        **limits,
    )


def test_a_new_position_up_to_the_limit_passes() -> None:
    ctx = two_open_positions(max_open_positions=3)

    assert check_max_open_positions(order(symbol="SOL/USDT"), ctx) is None


def test_a_new_position_beyond_the_limit_is_denied() -> None:
    reason = check_max_open_positions(
        order(symbol="SOL/USDT"), two_open_positions(max_open_positions=2)
    )

    assert reason is not None
    assert reason.code == DenialCode.MAX_OPEN_POSITIONS
    assert (reason.limit, reason.actual) == (Decimal(2), Decimal(3))


def test_adding_to_an_open_position_does_not_open_another() -> None:
    ctx = two_open_positions(max_open_positions=2)

    assert check_max_open_positions(order("buy", symbol=SYMBOL), ctx) is None


def test_another_strategy_in_the_same_symbol_is_another_position() -> None:
    ctx = two_open_positions(max_open_positions=2)

    assert check_max_open_positions(order(strategy="breakout"), ctx) is not None


def test_an_approved_entry_counts_as_an_open_position() -> None:
    ctx = context(reserved=(order(symbol="ETH/USDT"),), max_open_positions=1)

    assert check_max_open_positions(order(symbol="SOL/USDT"), ctx) is not None


def test_a_flat_position_does_not_count_as_open() -> None:
    ctx = context(position("0", symbol="ETH/USDT"), max_open_positions=1)

    assert check_max_open_positions(order(symbol="SOL/USDT"), ctx) is None


def test_a_reduce_only_order_never_opens_a_position() -> None:
    ctx = two_open_positions(max_open_positions=2)

    assert check_max_open_positions(order("sell", reduce_only=True, strategy="x"), ctx) is None


# -- reduce-only --------------------------------------------------------------------------------


def test_a_reduce_only_order_closing_the_whole_position_passes() -> None:
    ctx = context(position("10"))

    assert check_reduce_only(order("sell", "10", reduce_only=True), ctx) is None


def test_a_reduce_only_order_larger_than_the_position_is_denied() -> None:
    ctx = context(position("10"))

    reason = check_reduce_only(order("sell", "10.01", reduce_only=True), ctx)

    assert reason is not None
    assert reason.code == DenialCode.REDUCE_ONLY_INCREASES_EXPOSURE
    assert (reason.limit, reason.actual) == (Decimal(10), Decimal("10.01"))


def test_a_reduce_only_order_on_the_side_of_the_position_is_denied() -> None:
    ctx = context(position("10"))

    reason = check_reduce_only(order("buy", "1", reduce_only=True), ctx)

    assert reason is not None
    assert reason.limit == 0


def test_a_reduce_only_order_without_a_position_is_denied() -> None:
    assert check_reduce_only(order("sell", "1", reduce_only=True), context()) is not None


def test_a_reduce_only_order_reduces_the_accounts_net_position() -> None:
    # The venue nets the account's strategies: with them flat overall there is nothing to reduce.
    ctx = context(position("5", strategy="trend"), position("-5", strategy="meanrev"))

    assert check_reduce_only(order("sell", "5", reduce_only=True, strategy="trend"), ctx)


def test_a_bracket_proposed_with_its_entry_is_approved() -> None:
    entry = order("buy", "1")
    take_profit = order(
        "sell", "1", order_type=OrderType.LIMIT, limit_price="110", reduce_only=True
    )
    stop_loss = order(
        "sell", "1", order_type=OrderType.STOP_MARKET, stop_price="95", reduce_only=True
    )

    decision = evaluate(proposal(entry, take_profit, stop_loss), context(max_position_quantity="1"))

    assert decision.approved


# -- trading state ------------------------------------------------------------------------------


def test_a_halted_account_denies_even_an_order_that_reduces() -> None:
    ctx = context(position("10"), state=TradingState.HALTED)

    reason = check_trading_state(order("sell", "5", reduce_only=True), ctx)

    assert reason is not None
    assert reason.code == DenialCode.TRADING_HALTED


def test_a_reducing_account_denies_a_new_entry() -> None:
    ctx = context(state=TradingState.REDUCING)

    reason = check_trading_state(order("buy", "1"), ctx)

    assert reason is not None
    assert reason.code == DenialCode.TRADING_REDUCING


def test_a_reducing_account_denies_adding_to_a_position() -> None:
    ctx = context(position("10"), state=TradingState.REDUCING)

    assert check_trading_state(order("buy", "1"), ctx) is not None


def test_a_reducing_account_takes_an_order_that_closes_the_position() -> None:
    ctx = context(position("10"), state=TradingState.REDUCING)

    assert check_trading_state(order("sell", "10"), ctx) is None


def test_a_reducing_account_denies_an_order_that_flips_the_position() -> None:
    ctx = context(position("10"), state=TradingState.REDUCING)

    assert check_trading_state(order("sell", "10.01"), ctx) is not None


def test_a_reducing_account_does_not_close_the_same_position_twice() -> None:
    ctx = context(position("10"), reserved=(order("sell", "10"),), state=TradingState.REDUCING)

    assert check_trading_state(order("sell", "10"), ctx) is not None


def test_a_reducing_account_takes_reduce_only_exits_while_the_stop_loss_rests() -> None:
    resting_stop = order(
        "sell", "10", order_type=OrderType.STOP_MARKET, stop_price="90", reduce_only=True
    )
    ctx = context(position("10"), reserved=(resting_stop,), state=TradingState.REDUCING)

    assert check_order(order("sell", "10", reduce_only=True), ctx) == []


def test_an_active_account_takes_any_order_the_limits_allow() -> None:
    assert check_trading_state(order("buy", "1"), context()) is None


# -- whole proposals ----------------------------------------------------------------------------


def test_a_proposal_within_every_limit_is_approved() -> None:
    ctx = context(max_position_quantity="100", max_notional_per_order="10000")

    decision = evaluate(proposal(order("buy", "60"), order("buy", "40")), ctx)

    assert decision.approved
    assert not decision.denied
    assert decision.reasons == ()


def test_two_orders_that_each_fit_but_together_break_the_limit_fail_together() -> None:
    first, second = order("buy", "60"), order("buy", "60")

    decision = evaluate(proposal(first, second), context(max_position_quantity="100"))

    assert decision.denied
    assert [(r.code, r.order_id) for r in decision.reasons] == [
        (DenialCode.MAX_POSITION_QUANTITY, second.order_id)
    ]


def test_one_bad_order_denies_the_whole_proposal() -> None:
    decision = evaluate(proposal(order("buy", "1"), order("buy", "1", price=None)), context())

    assert codes(decision.reasons) == [DenialCode.MISSING_REFERENCE_PRICE]


def test_every_reason_of_every_order_is_reported() -> None:
    ctx = context(max_notional_per_order="100", max_position_quantity="1")
    too_big = order("buy", "2", price="100")

    decision = evaluate(proposal(too_big, order(price=None)), ctx)

    assert codes(decision.reasons) == [
        DenialCode.MAX_NOTIONAL_PER_ORDER,
        DenialCode.MAX_POSITION_QUANTITY,
        DenialCode.MISSING_REFERENCE_PRICE,
    ]


def test_orders_of_one_proposal_count_against_the_open_positions_limit_together() -> None:
    ctx = context(max_open_positions=1)

    decision = evaluate(proposal(order(symbol="ETH/USDT"), order(symbol="SOL/USDT")), ctx)

    assert codes(decision.reasons) == [DenialCode.MAX_OPEN_POSITIONS]


def test_the_same_order_id_twice_in_a_proposal_is_denied() -> None:
    decision = evaluate(proposal(order(order_id="o-x"), order(order_id="o-x")), context())

    assert codes(decision.reasons) == [DenialCode.DUPLICATE_ORDER_ID]


def test_a_proposal_for_another_account_is_denied() -> None:
    decision = evaluate(proposal(order(account="acc-2"), account="acc-2"), context())

    assert codes(decision.reasons) == [DenialCode.ACCOUNT_MISMATCH, DenialCode.ACCOUNT_MISMATCH]
    assert decision.reasons[0].order_id is None


def test_evaluating_a_proposal_leaves_the_exposure_untouched() -> None:
    ctx = context(position("1"))

    evaluate(proposal(order("buy", "5"), order("sell", "2")), ctx)

    assert ctx.exposure.reservations() == ()
    assert ctx.exposure.worst_case_position(VENUE, SYMBOL, Side.BUY) == Decimal(1)
    assert ctx.account == ACCOUNT


def test_an_approved_proposal_reserved_afterwards_counts_against_the_next() -> None:
    ctx = context(max_position_quantity="100")
    first = proposal(order("buy", "60"))
    assert evaluate(first, ctx).approved

    for spec in first.orders:
        ctx.exposure.reserve(spec)

    assert evaluate(proposal(order("buy", "60")), ctx).denied
