"""A signal's order block: the venue-independent rules, shared with the OMS."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from ordo.contracts.enums import Intent, OrderType, TimeInForce
from ordo.contracts.order_terms import terms_problem
from ordo.contracts.signals import OrderRequest, SignalRequest

SIGNAL = {
    "account": "main",
    "strategy": "trend",
    "venue": "paper",
    "symbol": "BTC/USDT",
    "intent": "enter_long",
    "size": {"unit": "quantity", "value": "0.1"},
}


def test_a_signal_without_an_order_block_reads_as_before() -> None:
    request = SignalRequest.model_validate(SIGNAL)

    assert request.order is None


def test_an_order_block_defaults_to_a_market_order_good_till_canceled() -> None:
    order = OrderRequest()

    assert (order.order_type, order.time_in_force) == (OrderType.MARKET, TimeInForce.GTC)
    assert not (order.post_only or order.reduce_only)


@pytest.mark.parametrize(
    ("terms", "reason"),
    [
        ({"post_only": True}, "post-only orders only add liquidity"),
        ({"order_type": "limit"}, "a limit order needs a limit_price"),
        ({"order_type": "stop_market"}, "a stop_market order needs a stop_price"),
        (
            {"order_type": "trailing_stop", "trailing_amount": "5", "trailing_percent": "1"},
            "one of them",
        ),
        ({"order_type": "trailing_stop"}, "one of them"),
        ({"order_type": "limit", "limit_price": "1", "time_in_force": "gtd"}, "needs expire_at"),
        ({"time_in_force": "day"}, "a market order trades at once"),
        ({"order_type": "limit", "limit_price": "1", "stop_price": "1"}, "only stop orders"),
        ({"limit_price": "1"}, "a market order takes no limit_price"),
        ({"trailing_percent": "1"}, "for trailing stops only"),
    ],
)
def test_an_impossible_order_block_is_refused_with_its_reason(
    terms: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        OrderRequest.model_validate(terms)


def test_a_reduce_only_entry_is_refused_but_a_reduce_only_exit_is_not() -> None:
    reduce_only = {"order_type": "limit", "limit_price": "100", "reduce_only": True}
    with pytest.raises(ValidationError, match="enter_long opens a position"):
        SignalRequest.model_validate({**SIGNAL, "order": reduce_only})

    exit_request = SignalRequest.model_validate(
        {**SIGNAL, "intent": "exit_long", "size": None, "order": reduce_only}
    )
    assert exit_request.intent is Intent.EXIT_LONG
    assert exit_request.order is not None and exit_request.order.reduce_only


def test_an_expiry_in_the_past_is_read_but_refused_against_the_clock() -> None:
    # A message is read again on replay, later: only the check with a clock refuses a past time.
    past = datetime(2020, 1, 1, tzinfo=UTC)
    order = OrderRequest(
        order_type=OrderType.LIMIT,
        limit_price=Decimal(100),
        time_in_force=TimeInForce.GTD,
        expire_at=past,
    )

    assert terms_problem(order) is None
    assert terms_problem(order, past + timedelta(seconds=1)) == (
        "expire_at 2020-01-01T00:00:00+00:00 has already passed"
    )
