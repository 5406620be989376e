"""Order types, time in force and flags: what makes sense, what a venue takes, and DAY's rule."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from order_domain_builders import NOW, order_spec
from pydantic import ValidationError

from ordo.contracts.enums import OrderType, TimeInForce
from ordo.order.config import OrderSettings
from ordo.order.domain.errors import InvalidOrderSpec, PlanningError
from ordo.order.domain.order_types import (
    VenueCapabilities,
    check_spec,
    next_session_close,
    prepare,
)

CRYPTO = VenueCapabilities()
EQUITIES = VenueCapabilities(session_close=time(20, 0))
LIMITS_ONLY = VenueCapabilities(order_types=frozenset({OrderType.MARKET, OrderType.LIMIT}))


@pytest.mark.parametrize(
    "fields",
    [
        {"order_type": OrderType.MARKET},
        {"order_type": OrderType.LIMIT, "limit_price": Decimal(99), "post_only": True},
        {"order_type": OrderType.LIMIT, "limit_price": Decimal(99), "time_in_force": "ioc"},
        {"order_type": OrderType.LIMIT, "limit_price": Decimal(99), "time_in_force": "fok"},
        {"order_type": OrderType.STOP_MARKET, "stop_price": Decimal(90), "reduce_only": True},
        {"order_type": OrderType.STOP_LIMIT, "stop_price": Decimal(90), "limit_price": Decimal(89)},
        {"order_type": OrderType.TRAILING_STOP, "trailing_amount": Decimal(5)},
        {"order_type": OrderType.TRAILING_STOP, "trailing_percent": Decimal("2.5")},
        {
            "order_type": OrderType.LIMIT,
            "limit_price": Decimal(99),
            "time_in_force": "gtd",
            "expire_at": NOW + timedelta(hours=1),
        },
    ],
)
def test_sensible_orders_pass(fields: dict[str, Any]) -> None:
    check_spec(order_spec(**fields), NOW)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"order_type": OrderType.MARKET, "post_only": True}, "post-only"),
        (
            {
                "order_type": OrderType.LIMIT,
                "limit_price": 99,
                "post_only": True,
                "time_in_force": "ioc",
            },
            "must rest",
        ),
        ({"order_type": OrderType.STOP_MARKET, "stop_price": 90, "time_in_force": "ioc"}, "IOC"),
        ({"order_type": OrderType.TRAILING_STOP}, "trailing_amount or a trailing_percent"),
        (
            {"order_type": OrderType.TRAILING_STOP, "trailing_amount": 5, "trailing_percent": 1},
            "one of them",
        ),
        (
            {"order_type": OrderType.TRAILING_STOP, "trailing_amount": 5, "stop_price": 90},
            "no stop_price",
        ),
        (
            {"order_type": OrderType.LIMIT, "limit_price": 99, "trailing_amount": 5},
            "trailing stops only",
        ),
        ({"order_type": OrderType.MARKET, "limit_price": 99}, "no limit_price"),
        ({"order_type": OrderType.LIMIT, "limit_price": 99, "stop_price": 90}, "stop_price"),
        ({"order_type": OrderType.STOP_MARKET, "stop_price": 90, "limit_price": 89}, "stop-limit"),
        (
            {"order_type": OrderType.LIMIT, "limit_price": 99, "time_in_force": "gtd"},
            "needs expire_at",
        ),
        (
            {
                "order_type": OrderType.LIMIT,
                "limit_price": 99,
                "time_in_force": "gtd",
                "expire_at": NOW - timedelta(seconds=1),
            },
            "already passed",
        ),
        ({"order_type": OrderType.MARKET, "time_in_force": "day"}, "nothing to expire"),
    ],
)
def test_impossible_combinations_are_refused_with_what_to_change(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidOrderSpec, match=message) as refused:
        check_spec(order_spec(**{k: _decimal(v) for k, v in fields.items()}), NOW)
    assert "ord-1" in str(refused.value)


def test_an_invalid_spec_is_a_planning_error_so_the_signal_is_recorded_unplannable() -> None:
    assert issubclass(InvalidOrderSpec, PlanningError)


def test_expire_at_belongs_to_expiring_orders_only() -> None:
    with pytest.raises(ValueError, match="expire_at is for GTD and DAY"):
        order_spec(expire_at=NOW + timedelta(hours=1))


def test_day_is_refused_on_a_venue_that_trades_around_the_clock() -> None:
    spec = order_spec(order_type=OrderType.LIMIT, limit_price=Decimal(99), time_in_force="day")
    with pytest.raises(InvalidOrderSpec, match=r"has none .* use GTC, or GTD"):
        prepare(spec, CRYPTO, NOW)


def test_a_day_order_expires_at_the_venues_next_session_close() -> None:
    spec = order_spec(order_type=OrderType.LIMIT, limit_price=Decimal(99), time_in_force="day")
    prepared = prepare(spec, EQUITIES, NOW)  # NOW is 09:30 UTC
    assert prepared.expire_at == datetime(2025, 3, 14, 20, 0, tzinfo=UTC)
    assert prepared.time_in_force is TimeInForce.DAY


def test_after_the_close_a_day_order_lives_until_the_next_one() -> None:
    evening = datetime(2025, 3, 14, 20, 0, tzinfo=UTC)
    assert next_session_close(evening, time(20, 0)) == datetime(2025, 3, 15, 20, 0, tzinfo=UTC)


def test_a_venue_emulates_the_stop_types_it_lacks_and_takes_the_rest() -> None:
    assert LIMITS_ONLY.emulates(OrderType.STOP_MARKET)
    assert LIMITS_ONLY.emulates(OrderType.TRAILING_STOP)
    assert not LIMITS_ONLY.emulates(OrderType.LIMIT)
    assert not CRYPTO.emulates(OrderType.STOP_LIMIT)


def test_a_venue_without_limit_orders_cannot_have_them_emulated() -> None:
    market_only = VenueCapabilities(order_types=frozenset({OrderType.MARKET}))
    with pytest.raises(InvalidOrderSpec, match="cannot emulate"):
        prepare(order_spec(order_type=OrderType.LIMIT, limit_price=Decimal(99)), market_only, NOW)


def test_a_venue_configured_without_market_or_limit_orders_is_refused_at_start_up() -> None:
    """Emulated stops are released as market or limit orders, and a group's grid and exits are
    limit orders: a venue that takes neither cannot be traded, so it is refused in the config,
    not found out by the first exit placed while a fill is being applied."""
    with pytest.raises(ValidationError, match="order_types must include limit"):
        OrderSettings(venues={"ccxt:x": {"order_types": ["market", "stop_market"]}})
    settings = OrderSettings(venues={"ccxt:x": {"order_types": ["market", "limit"]}})
    assert settings.venue_capabilities()["ccxt:x"].emulates(OrderType.STOP_MARKET)


def _decimal(value: Any) -> Any:
    return Decimal(value) if isinstance(value, int) else value
