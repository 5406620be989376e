"""Emulated stops: held by the OMS, triggered by the last price, released as plain orders."""

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from order_domain_builders import LATER, NOW, new_order, order_spec

from ordo.contracts.enums import OrderStatus, OrderType, Side, TimeInForce
from ordo.contracts.orders import OrderSpec
from ordo.order.domain import InvalidTransition
from ordo.order.domain.emulation import Watch, observe, released, stop_level


def watch(spec: OrderSpec, best: Decimal | None = None) -> Watch:
    return Watch(spec.order_id, spec.venue, spec.symbol, placed_at=NOW, best_price=best)


def run(spec: OrderSpec, prices: list[str]) -> tuple[Watch, Decimal | None]:
    current = watch(spec)
    for price in prices:
        decision = observe(spec, current, Decimal(price), LATER)
        current = decision.watch
        if decision.trigger_price is not None:
            return current, decision.trigger_price
    return current, None


SELL_STOP = order_spec(side=Side.SELL, order_type=OrderType.STOP_MARKET, stop_price=Decimal(95))
BUY_STOP = order_spec(side=Side.BUY, order_type=OrderType.STOP_MARKET, stop_price=Decimal(105))


def test_a_sell_stop_fires_when_the_last_price_falls_to_it() -> None:
    assert run(SELL_STOP, ["100", "96", "95.01"])[1] is None
    assert run(SELL_STOP, ["100", "96", "95"])[1] == Decimal(95)
    assert run(SELL_STOP, ["100", "94"])[1] == Decimal(94)  # gapped through: the last is the price


def test_a_buy_stop_fires_when_the_last_price_rises_to_it() -> None:
    assert run(BUY_STOP, ["100", "104.99"])[1] is None
    assert run(BUY_STOP, ["100", "106"])[1] == Decimal(106)


def test_a_quote_from_before_the_placement_triggers_nothing() -> None:
    decision = observe(SELL_STOP, watch(SELL_STOP), Decimal(90), NOW - timedelta(seconds=1))
    assert not decision.triggered
    assert decision.watch == watch(SELL_STOP)


def test_a_trailing_sell_follows_the_highest_price_and_fires_its_distance_below() -> None:
    spec = order_spec(
        side=Side.SELL, order_type=OrderType.TRAILING_STOP, trailing_amount=Decimal(5)
    )
    state, fired = run(spec, ["100", "110", "106", "108"])
    assert fired is None
    assert state.best_price == Decimal(110)
    assert stop_level(spec, state.best_price) == Decimal(105)
    assert run(spec, ["100", "110", "106", "105"])[1] == Decimal(105)


def test_a_trailing_buy_by_percent_follows_the_lowest_price() -> None:
    spec = order_spec(
        side=Side.BUY, order_type=OrderType.TRAILING_STOP, trailing_percent=Decimal(10)
    )
    state, fired = run(spec, ["100", "80", "87"])
    assert fired is None
    assert state.best_price == Decimal(80)
    assert run(spec, ["100", "80", "88"])[1] == Decimal(88)  # 80 + 10 %


@given(st.lists(st.integers(50, 150), min_size=1, max_size=30))
def test_a_trailing_stops_trigger_never_moves_against_its_holder(prices: list[int]) -> None:
    spec = order_spec(
        side=Side.SELL, order_type=OrderType.TRAILING_STOP, trailing_amount=Decimal(7)
    )
    current, levels = watch(spec), []
    for price in prices:
        decision = observe(spec, current, Decimal(price), LATER)
        current = decision.watch
        levels.append(stop_level(spec, current.best_price))
        if decision.triggered:
            assert Decimal(price) <= levels[-1]
            break
    assert levels == sorted(levels)  # a sell's stop only ever rises
    assert current.best_price == max(Decimal(p) for p in prices[: len(levels)])


def test_a_triggered_stop_market_is_released_as_a_market_order_at_the_trigger_price() -> None:
    sent = released(SELL_STOP.model_copy(update={"reduce_only": True}), Decimal(94))
    assert sent.order_type is OrderType.MARKET
    assert sent.stop_price is None
    assert sent.reference_price == Decimal(94)
    assert sent.reduce_only
    assert sent.order_id == SELL_STOP.order_id


def test_a_triggered_stop_limit_is_released_as_its_limit_order() -> None:
    spec = order_spec(
        side=Side.SELL,
        order_type=OrderType.STOP_LIMIT,
        stop_price=Decimal(95),
        limit_price=Decimal(94),
        time_in_force=TimeInForce.GTD,
        expire_at=NOW + timedelta(days=1),
    )
    sent = released(spec, Decimal(95))
    assert sent.order_type is OrderType.LIMIT
    assert sent.limit_price == Decimal(94)
    assert sent.time_in_force is TimeInForce.GTD
    assert sent.expire_at == spec.expire_at


def test_a_held_order_stays_initialized_until_released_and_keeps_its_own_type() -> None:
    order = new_order(side=Side.SELL, order_type=OrderType.STOP_MARKET, stop_price=Decimal(95))
    order.emulated = True
    assert order.is_held

    sent = order.release(Decimal(94), "prop-2", LATER)

    assert order.status is OrderStatus.INITIALIZED
    assert order.order_type is OrderType.STOP_MARKET
    assert order.proposal_id == "prop-2"
    assert "triggered at 94" in (order.reason or "")
    assert sent.order_type is OrderType.MARKET
    assert order.submit(LATER)  # from here on, the FSM as usual
    with pytest.raises(InvalidTransition):
        order.release(Decimal(93), "prop-3", LATER)


def test_canceling_a_held_order_ends_it_at_once() -> None:
    order = new_order(side=Side.SELL, order_type=OrderType.STOP_MARKET, stop_price=Decimal(95))
    order.emulated = True
    assert order.request_cancel("group closed", LATER)
    assert order.status is OrderStatus.CANCELED


def test_a_held_order_can_expire_before_its_trigger() -> None:
    order = new_order(
        side=Side.SELL,
        order_type=OrderType.STOP_MARKET,
        stop_price=Decimal(95),
        time_in_force=TimeInForce.GTD,
        expire_at=LATER,
    )
    order.emulated = True
    assert order.expire(LATER)
    assert order.status is OrderStatus.EXPIRED
    assert not order.expire(LATER)
