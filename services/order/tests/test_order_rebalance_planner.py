"""The rebalance planner: weights and a reserve become sells then buys, on marks, never a guess."""

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordo.contracts.enums import Side
from ordo.order.domain import MarketRules
from ordo.order.domain.errors import RebalanceRefused
from ordo.order.domain.rebalance import Holding, RebalanceRequest, plan_rebalance

RULES = {
    "BTC/USDT": MarketRules(tick_size=Decimal("0.01"), step_size=Decimal("0.001")),
    "ETH/USDT": MarketRules(tick_size=Decimal("0.01"), step_size=Decimal("0.01")),
    "AAPL": MarketRules(tick_size=Decimal("0.01"), step_size=Decimal(1), min_notional=Decimal(5)),
}
MARKS = {"BTC/USDT": Decimal(50_000), "ETH/USDT": Decimal(2_000), "AAPL": Decimal(190)}


def request(
    reserve: str = "0", capital: str = "10000", minimum: str = "10", **weights: str
) -> RebalanceRequest:
    targets = {symbol.replace("_", "/"): Decimal(w) for symbol, w in weights.items()}
    return RebalanceRequest(targets, Decimal(reserve), Decimal(capital), Decimal(minimum))


def holding(symbol: str, quantity: str, entry: str, realised: str = "0") -> Holding:
    return Holding(symbol, Decimal(quantity), Decimal(entry), Decimal(realised))


def test_from_cash_only_it_buys_each_target_and_keeps_the_reserve() -> None:
    plan = plan_rebalance(request("0.1", BTC_USDT="0.5", ETH_USDT="0.4"), [], MARKS, RULES)

    assert plan.sells == ()
    buys = {trade.symbol: trade for trade in plan.buys}
    assert buys["BTC/USDT"].quantity == Decimal("0.1")  # 5000 / 50000
    assert buys["ETH/USDT"].quantity == Decimal(2)  # 4000 / 2000
    assert sum(t.notional for t in plan.buys) <= plan.equity * Decimal("0.9")


def test_an_overweight_symbol_is_sold_reduce_only_and_the_underweight_bought() -> None:
    # 10000 capital bought 0.15 BTC at 40000 (6000): now worth 7500, cash 4000, equity 11500.
    held = [holding("BTC/USDT", "0.15", "40000", realised="-6")]
    plan = plan_rebalance(request(BTC_USDT="0.5", ETH_USDT="0.5"), held, MARKS, RULES)

    assert plan.equity == Decimal(10000) - 6 + Decimal("0.15") * 10000
    (sell,) = plan.sells
    assert sell.side is Side.SELL and sell.symbol == "BTC/USDT" and sell.reduce_only
    assert Decimal("0.15") - sell.quantity == Decimal("0.114")  # floor(5747 / 50000, 0.001)
    (buy,) = plan.buys
    assert buy.symbol == "ETH/USDT" and buy.quantity == Decimal("2.87")


def test_a_weight_of_zero_sells_the_whole_position() -> None:
    held = [holding("ETH/USDT", "3", "1500")]
    plan = plan_rebalance(request(ETH_USDT="0", BTC_USDT="0.5"), held, MARKS, RULES)
    (sell,) = plan.sells
    assert sell.quantity == Decimal(3)


def test_whole_units_where_the_venue_requires_them() -> None:
    plan = plan_rebalance(request(AAPL="0.5"), [], MARKS, RULES)
    (buy,) = plan.buys
    assert buy.quantity == Decimal(26)  # 5000 / 190 = 26.3: whole shares, floored


def test_a_trade_below_the_minimum_amount_is_skipped_with_its_reason() -> None:
    held = [holding("ETH/USDT", "1.67", "2000")]  # 3340 of 10000; the target 0.333 is 1.66 ETH
    plan = plan_rebalance(request(minimum="50", ETH_USDT="0.333"), held, MARKS, RULES)
    assert plan.sells == () and plan.buys == ()
    (skipped,) = plan.skipped
    assert skipped.symbol == "ETH/USDT"
    assert "below the minimum trade amount 50" in skipped.reason


def test_a_symbol_without_a_mark_refuses_the_rebalance() -> None:
    held = [holding("SOL/USDT", "10", "100")]
    with pytest.raises(RebalanceRefused, match="no mark for SOL/USDT"):
        plan_rebalance(request(BTC_USDT="0.5"), held, MARKS, RULES)


def test_weights_and_reserve_above_the_whole_are_refused() -> None:
    with pytest.raises(RebalanceRefused, match="at most 1"):
        plan_rebalance(request("0.2", BTC_USDT="0.5", ETH_USDT="0.4"), [], MARKS, RULES)


def test_buys_shrink_alike_when_the_cash_would_not_pay_their_fees() -> None:
    rules = {s: replace(r, taker_fee_rate=Decimal("0.01")) for s, r in RULES.items()}
    plan = plan_rebalance(request(BTC_USDT="0.5", ETH_USDT="0.5"), [], MARKS, rules)
    cost = sum(t.notional * Decimal("1.01") for t in plan.buys)
    assert cost <= Decimal(10_000)
    assert {t.symbol for t in plan.buys} == {"BTC/USDT", "ETH/USDT"}


weights = st.lists(st.integers(0, 100), min_size=1, max_size=3)
positions = st.lists(st.integers(0, 5000), min_size=3, max_size=3)


@given(weights, st.integers(0, 30), positions, st.integers(1_000, 1_000_000))
def test_a_plan_never_spends_past_the_reserve_nor_sells_what_is_not_held(
    raw_weights: list[int], reserve_percent: int, held_units: list[int], capital: int
) -> None:
    symbols = ["BTC/USDT", "ETH/USDT", "AAPL"]
    budget = 100 - reserve_percent
    total = sum(raw_weights) or 1
    targets = {
        symbol: Decimal(w * budget // total) / 100
        for symbol, w in zip(symbols, raw_weights, strict=False)
    }
    held = [
        Holding(s, Decimal(units) * RULES[s].step_size, MARKS[s], Decimal(0))
        for s, units in zip(symbols, held_units, strict=True)
    ]
    reserve = Decimal(reserve_percent) / 100
    plan = plan_rebalance(
        RebalanceRequest(targets, reserve, Decimal(capital), Decimal(10)), held, MARKS, RULES
    )

    quantities = {h.symbol: h.quantity for h in held}
    for sell in plan.sells:
        assert 0 < sell.quantity <= quantities[sell.symbol]
        assert sell.reduce_only
    for trade in (*plan.sells, *plan.buys):
        assert trade.quantity % RULES[trade.symbol].step_size == 0
        assert trade.notional >= 10
    after_sells = plan.cash + sum(t.notional for t in plan.sells)
    assert sum(t.notional for t in plan.buys) <= max(after_sells - plan.equity * reserve, 0)
    for buy in plan.buys:  # never bought past its target
        assert (quantities[buy.symbol] + buy.quantity) * MARKS[buy.symbol] <= (
            targets[buy.symbol] * plan.equity
        )
