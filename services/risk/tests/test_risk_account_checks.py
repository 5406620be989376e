"""The account-wide checks, the price collar, the order rate and the stop-loss: each at its limit
(approved) and one tick over it (denied, with the limit and the actual number)."""

from decimal import Decimal

import pytest
from risk_accounts import account_context, quote, realised
from risk_factories import order, position, proposal

from ordo.contracts.enums import OrderType
from ordo.contracts.orders import OrderSpec
from ordo.contracts.risk import DenialReason
from ordo.risk.domain.checks import DailyActivity, DenialCode, OrderCounts, evaluate

ETH = "ETH/USDT"


def only_reason(decision_reasons: tuple[DenialReason, ...], code: DenialCode) -> DenialReason:
    assert [reason.code for reason in decision_reasons] == [code]
    return decision_reasons[0]


@pytest.mark.parametrize(("quantity", "approved"), [("10", True), ("10.01", False)])
def test_position_as_percent_of_equity(quantity: str, approved: bool) -> None:
    ctx = account_context(starting_capital="10000", max_position_percent_of_equity="10")

    decision = evaluate(proposal(order("buy", quantity)), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.MAX_POSITION_PERCENT_OF_EQUITY)
        assert (reason.limit, reason.actual) == (Decimal(10), Decimal("10.01"))


def test_equity_counts_realised_and_unrealised_pnl() -> None:
    # 10000 + 500 realised + 10 x (110 - 100) unrealised = 10600: 10 % of it is 1060.
    held = realised(position("10", symbol=ETH), "500")
    ctx = account_context(
        held,
        quotes=(quote("110", symbol=ETH),),
        starting_capital="10000",
        max_position_percent_of_equity="10",
    )

    assert evaluate(proposal(order("buy", "10.6")), ctx).approved
    assert not evaluate(proposal(order("buy", "10.61")), ctx).approved


@pytest.mark.parametrize(("quantity", "approved"), [("5", True), ("5.01", False)])
def test_gross_exposure_counts_held_positions_at_their_marks(quantity: str, approved: bool) -> None:
    ctx = account_context(
        position("5", symbol=ETH), quotes=(quote("100", symbol=ETH),), max_gross_exposure="1000"
    )

    decision = evaluate(proposal(order("buy", quantity)), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.MAX_GROSS_EXPOSURE)
        assert (reason.limit, reason.actual) == (Decimal(1000), Decimal("1001.00"))


def test_gross_exposure_counts_open_orders_on_both_sides() -> None:
    # An open sell of 4 in ETH could take the account short 4: that is exposure too.
    ctx = account_context(reserved=(order("sell", "4", symbol=ETH),), max_gross_exposure="1000")

    assert evaluate(proposal(order("buy", "6")), ctx).approved
    assert not evaluate(proposal(order("buy", "6.01")), ctx).approved


@pytest.mark.parametrize(("quantity", "approved"), [("20", True), ("20.01", False)])
def test_leverage_is_gross_over_equity(quantity: str, approved: bool) -> None:
    ctx = account_context(starting_capital="1000", max_leverage="2")

    decision = evaluate(proposal(order("buy", quantity)), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.MAX_LEVERAGE)
        assert reason.limit == Decimal(2)
        assert reason.actual == Decimal("2.001")


@pytest.mark.parametrize(("quantity", "approved"), [("10", True), ("10.01", False)])
def test_concentration_is_the_symbols_share_of_gross(quantity: str, approved: bool) -> None:
    ctx = account_context(
        position("10", symbol=ETH),
        quotes=(quote("100", symbol=ETH), quote("100")),
        max_symbol_concentration_percent="50",
    )

    decision = evaluate(proposal(order("buy", quantity)), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.MAX_SYMBOL_CONCENTRATION)
        assert reason.limit == Decimal(50)
        assert reason.actual is not None and reason.actual > 50


def test_concentration_is_not_checked_below_its_gross_floor() -> None:
    ctx = account_context(
        max_symbol_concentration_percent="50", concentration_min_gross_exposure="1000"
    )

    assert evaluate(proposal(order("buy", "9.99")), ctx).approved
    assert not evaluate(proposal(order("buy", "10")), ctx).approved


@pytest.mark.parametrize(("quantity", "approved"), [("1", True), ("1.01", False)])
def test_daily_traded_notional(quantity: str, approved: bool) -> None:
    ctx = account_context(
        today=DailyActivity(traded_notional=Decimal(900)), max_daily_traded_notional="1000"
    )

    decision = evaluate(proposal(order("buy", quantity)), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.MAX_DAILY_TRADED_NOTIONAL)
        assert (reason.limit, reason.actual) == (Decimal(1000), Decimal("1001"))


def test_daily_traded_notional_adds_up_the_orders_of_one_proposal() -> None:
    ctx = account_context(
        today=DailyActivity(traded_notional=Decimal(850)), max_daily_traded_notional="1000"
    )

    decision = evaluate(proposal(order("buy", "1"), order("buy", "1", symbol=ETH)), ctx)

    only_reason(decision.reasons, DenialCode.MAX_DAILY_TRADED_NOTIONAL)


@pytest.mark.parametrize(("pnl", "approved"), [("-500", True), ("-500.01", False)])
def test_daily_realised_loss(pnl: str, approved: bool) -> None:
    ctx = account_context(
        today=DailyActivity(realised_pnl=Decimal(pnl)), max_daily_realised_loss="500"
    )

    decision = evaluate(proposal(order("buy", "1")), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.MAX_DAILY_REALISED_LOSS)
        assert (reason.limit, reason.actual) == (Decimal(500), Decimal("500.01"))


def test_past_the_daily_loss_an_account_can_still_get_out() -> None:
    ctx = account_context(
        position("3"),
        today=DailyActivity(realised_pnl=Decimal(-900)),
        max_daily_realised_loss="500",
    )

    assert evaluate(proposal(order("sell", "3")), ctx).approved
    assert not evaluate(proposal(order("buy", "1")), ctx).approved


@pytest.mark.parametrize(("pnl", "approved"), [("0", True), ("-0.01", False)])
def test_drawdown_from_the_equity_peak(pnl: str, approved: bool) -> None:
    # Equity 1000 + pnl against a peak of 1250: exactly 20 % down, then a cent more.
    ctx = account_context(
        realised(position("0", symbol=ETH), pnl),
        peak="1250",
        starting_capital="1000",
        max_drawdown_percent="20",
    )

    decision = evaluate(proposal(order("buy", "1")), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.MAX_DRAWDOWN)
        assert reason.limit == Decimal(20)
        assert reason.actual is not None and reason.actual > 20


@pytest.mark.parametrize(("recent", "approved"), [(9, True), (10, False)])
def test_order_rate_per_account(recent: int, approved: bool) -> None:
    ctx = account_context(
        recent=OrderCounts(account=recent),
        order_rate_window_seconds=60,
        max_orders_per_account=10,
    )

    decision = evaluate(proposal(order("buy", "1")), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.ORDER_RATE_ACCOUNT)
        assert (reason.limit, reason.actual) == (Decimal(10), Decimal(11))


def test_order_rate_counts_every_order_of_a_proposal() -> None:
    ctx = account_context(
        recent=OrderCounts(account=9), order_rate_window_seconds=60, max_orders_per_account=10
    )

    decision = evaluate(proposal(order("buy", "1"), order("buy", "1", symbol=ETH)), ctx)

    only_reason(decision.reasons, DenialCode.ORDER_RATE_ACCOUNT)


def test_order_rate_per_strategy_with_a_strategy_of_its_own() -> None:
    ctx = account_context(
        recent=OrderCounts(account=3, by_strategy={"scalp": 1, "trend": 2}),
        strategies={"scalp": {"max_orders_per_strategy": 2}},
        order_rate_window_seconds=60,
        max_orders_per_strategy=3,
    )

    assert evaluate(proposal(order("buy", "1", strategy="scalp")), ctx).approved
    assert evaluate(proposal(order("buy", "1", strategy="trend")), ctx).approved
    two_scalps = proposal(order("buy", "1", strategy="scalp"), order("buy", "1", strategy="scalp"))
    reason = only_reason(evaluate(two_scalps, ctx).reasons, DenialCode.ORDER_RATE_STRATEGY)
    assert (reason.limit, reason.actual) == (Decimal(2), Decimal(3))


# -- the price collar and the quote ------------------------------------------------------------


@pytest.mark.parametrize(("price", "approved"), [("105", True), ("105.01", False), ("95", True)])
def test_the_reference_price_must_lie_within_the_collar(price: str, approved: bool) -> None:
    ctx = account_context(
        quotes=(quote("100"),), price_collar_percent="5", quote_max_age_seconds="10"
    )

    decision = evaluate(proposal(order("buy", "1", price=price)), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.PRICE_OUTSIDE_COLLAR)
        assert (reason.limit, reason.actual) == (Decimal(5), Decimal("5.01"))


def test_a_limit_price_outside_the_collar_is_denied_a_protective_stop_is_not() -> None:
    ctx = account_context(
        position("1"), quotes=(quote("100"),), price_collar_percent="5", quote_max_age_seconds="10"
    )
    far_limit = order("buy", "1", order_type=OrderType.LIMIT, limit_price="94.99", price="100")
    far_stop = order(
        "sell", "1", order_type=OrderType.STOP_MARKET, stop_price="80", reduce_only=True
    )

    only_reason(evaluate(proposal(far_limit), ctx).reasons, DenialCode.PRICE_OUTSIDE_COLLAR)
    assert evaluate(proposal(far_stop), ctx).approved


def test_no_quote_denies_rather_than_guessing_a_price() -> None:
    ctx = account_context(price_collar_percent="5", quote_max_age_seconds="10")

    only_reason(evaluate(proposal(order()), ctx).reasons, DenialCode.QUOTE_MISSING)


@pytest.mark.parametrize(("age", "approved"), [("10", True), ("10.001", False)])
def test_a_quote_older_than_its_max_age_denies(age: str, approved: bool) -> None:
    ctx = account_context(
        quotes=(quote("100", age_seconds=age),),
        price_collar_percent="5",
        quote_max_age_seconds="10",
    )

    decision = evaluate(proposal(order()), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.QUOTE_STALE)
        assert (reason.limit, reason.actual) == (Decimal(10), Decimal("10.001"))


def test_a_quote_with_an_absurd_spread_is_suspicious() -> None:
    ctx = account_context(
        quotes=(quote("100", bid="90", ask="110"),),
        price_collar_percent="5",
        quote_max_age_seconds="10",
        max_quote_spread_percent="2",
    )

    reason = only_reason(evaluate(proposal(order()), ctx).reasons, DenialCode.QUOTE_SUSPICIOUS)
    assert reason.limit == Decimal(2)
    assert reason.actual == Decimal(20)


def test_equity_without_a_trusted_mark_denies_what_is_measured_against_it() -> None:
    ctx = account_context(
        position("1", symbol=ETH),
        quotes=(quote("100", symbol=ETH, age_seconds="60"),),
        quote_max_age_seconds="10",
        starting_capital="10000",
        max_leverage="3",
    )

    reason = only_reason(evaluate(proposal(order()), ctx).reasons, DenialCode.QUOTE_STALE)
    assert "equity cannot be valued" in reason.message
    assert ETH in reason.message


# -- stop-loss and reduce-only --------------------------------------------------------------------


def stop(quantity: str = "1") -> OrderSpec:
    return order(
        "sell", quantity, order_type=OrderType.STOP_MARKET, stop_price="95", reduce_only=True
    )


def test_an_entry_without_a_protective_stop_is_denied_where_required() -> None:
    ctx = account_context(require_stop_loss=True)

    reason = only_reason(
        evaluate(proposal(order("buy", "2")), ctx).reasons, DenialCode.STOP_LOSS_REQUIRED
    )
    assert (reason.limit, reason.actual) == (Decimal(2), Decimal(0))


def test_an_entry_with_a_stop_covering_it_is_approved_a_smaller_stop_is_not() -> None:
    ctx = account_context(require_stop_loss=True)

    assert evaluate(proposal(order("buy", "2"), stop("2")), ctx).approved
    decision = evaluate(proposal(order("buy", "2"), stop("1.99")), ctx)
    only_reason(decision.reasons, DenialCode.STOP_LOSS_REQUIRED)


def test_stop_loss_is_required_per_strategy_and_exits_need_none() -> None:
    ctx = account_context(position("3"), strategies={"careful": {"require_stop_loss": True}})

    assert evaluate(proposal(order("buy", "1")), ctx).approved
    assert not evaluate(proposal(order("buy", "1", strategy="careful")), ctx).approved
    exit_only = order("sell", "1", strategy="careful", reduce_only=True)
    holding = account_context(position("3", strategy="careful"), require_stop_loss=True)
    assert evaluate(proposal(exit_only), holding).approved


@pytest.mark.parametrize(("quantity", "approved"), [("4", True), ("4.01", False)])
def test_pending_reduce_only_orders_leave_only_the_rest_to_reduce(
    quantity: str, approved: bool
) -> None:
    pending = order("sell", "6", order_type=OrderType.LIMIT, limit_price="110", reduce_only=True)
    ctx = account_context(position("10"), reserved=(pending,))
    exit_order = order(
        "sell", quantity, order_type=OrderType.LIMIT, limit_price="111", reduce_only=True
    )

    decision = evaluate(proposal(exit_order), ctx)

    assert decision.approved is approved
    if not approved:
        reason = only_reason(decision.reasons, DenialCode.REDUCE_ONLY_INCREASES_EXPOSURE)
        assert (reason.limit, reason.actual) == (Decimal(4), Decimal("4.01"))


def test_a_protective_stop_and_a_take_profit_each_cover_the_whole_position() -> None:
    take_profit = order(
        "sell", "10", order_type=OrderType.LIMIT, limit_price="110", reduce_only=True
    )
    ctx = account_context(position("10"), reserved=(take_profit,))

    assert evaluate(proposal(stop("10")), ctx).approved
    # Two stops are two exits of one kind: together they could flip the position.
    stopped = account_context(position("10"), reserved=(stop("10"),))
    only_reason(
        evaluate(proposal(stop("0.01")), stopped).reasons, DenialCode.REDUCE_ONLY_INCREASES_EXPOSURE
    )


def test_a_sell_that_reduces_a_long_needs_no_stop() -> None:
    ctx = account_context(position("3"), require_stop_loss=True)

    assert evaluate(proposal(order("sell", "2")), ctx).approved
    only_reason(evaluate(proposal(order("sell", "4")), ctx).reasons, DenialCode.STOP_LOSS_REQUIRED)


def test_no_equity_left_denies_what_is_measured_against_it() -> None:
    ctx = account_context(
        realised(position("0", symbol=ETH), "-1000"),
        starting_capital="1000",
        max_position_percent_of_equity="50",
    )

    reason = only_reason(evaluate(proposal(order()), ctx).reasons, DenialCode.NO_EQUITY)
    assert reason.actual == 0


def test_the_peak_is_never_below_the_starting_capital() -> None:
    # No peak stored yet, but the account started at 1000: 200 lost is 20 % down.
    ctx = account_context(
        realised(position("0", symbol=ETH), "-200.01"),
        starting_capital="1000",
        max_drawdown_percent="20",
    )

    reason = only_reason(evaluate(proposal(order()), ctx).reasons, DenialCode.MAX_DRAWDOWN)
    assert "below its peak of 1000" in reason.message
