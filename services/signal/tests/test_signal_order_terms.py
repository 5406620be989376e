"""A signal may ask for its order's type, prices, time in force and flags; impossible ones are
refused at intake with the field and the reason, and nothing is published."""

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from signal_support import SignalHarness, api_body, bearer, running_signal, template_alert

from ordo.contracts.enums import Intent, OrderType, TimeInForce
from ordo.contracts.signals import OrderRequest, SignalAccepted
from ordo.kit.testing import eventually
from ordo.signal.domain.api import parse_api_request
from ordo.signal.domain.errors import AlertError, SignalError
from ordo.signal.domain.tradingview import parse_alert, to_signal_request

MARKETS = {"BTC/USDT"}


def alert_body(**changes: object) -> bytes:
    fields = {
        "ticker": "BINANCE:BTCUSDT",
        "action": "buy",
        "contracts": "0.5",
        "market_position": "long",
        "prev_market_position": "flat",
        "close": "42000.5",
        "account": "main",
        "strategy": "trend",
        **changes,
    }
    return "\n".join(f"{key}={value}" for key, value in fields.items()).encode()


def order_of_alert(**changes: object) -> OrderRequest | None:
    alert = parse_alert(alert_body(**changes), "text/plain")
    return to_signal_request(alert, MARKETS, "paper").order


def alert_refusal(**changes: object) -> AlertError:
    with pytest.raises(AlertError) as refused:
        order_of_alert(**changes)
    return refused.value


def test_an_alert_without_order_fields_asks_for_a_market_order() -> None:
    assert order_of_alert() is None


def test_a_plain_text_alert_asks_for_a_stop_limit_gtd_order() -> None:
    order = order_of_alert(
        order_type="stop_limit",
        stop_price="41000",
        limit_price="40950.5",
        time_in_force="GTD",
        expire_at="2030-01-15T10:30:00Z",
    )

    assert order is not None
    assert order.order_type is OrderType.STOP_LIMIT
    assert (order.stop_price, order.limit_price) == (Decimal("41000"), Decimal("40950.5"))
    assert order.time_in_force is TimeInForce.GTD
    assert order.expire_at is not None and order.expire_at.year == 2030


def test_an_alert_asks_for_post_only_and_ioc_flags() -> None:
    post_only = order_of_alert(order_type="limit", limit_price="42000", post_only="true")
    ioc = order_of_alert(order_type="limit", limit_price="42000", time_in_force="ioc")

    assert post_only is not None and post_only.post_only
    assert ioc is not None and ioc.time_in_force is TimeInForce.IOC


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"order_type": "limit"}, "order", "limit GTC: a limit order needs a limit_price"),
        (
            {"post_only": "true"},
            "order",
            "market GTC: post-only orders only add liquidity, and this type takes it when it "
            "trades",
        ),
        (
            {"order_type": "trailing_stop", "trailing_amount": "50", "trailing_percent": "1"},
            "order",
            "trailing_stop GTC: a trailing stop needs a trailing_amount or a trailing_percent "
            "(one of them)",
        ),
        (
            {"order_type": "limit", "limit_price": "42000", "time_in_force": "gtd"},
            "order",
            "limit GTD: a GTD order needs expire_at",
        ),
        (
            {"order_type": "limit", "limit_price": "42000", "reduce_only": "true"},
            "reduce_only",
            "enter_long opens a position, and a reduce-only order can only close one",
        ),
        ({"order_type": "iceberg"}, "order_type", None),
        ({"order_type": "limit", "limit_price": "-1"}, "limit_price", None),
    ],
)
def test_an_impossible_alert_order_names_the_field_and_the_reason(
    changes: dict[str, object], field: str, reason: str | None
) -> None:
    refusal = alert_refusal(**changes)

    assert refusal.field == field
    if reason is not None:
        assert refusal.reason == reason


def test_an_api_signal_carries_its_order_block() -> None:
    body = api_body(order={"order_type": "limit", "limit_price": "41000", "post_only": True})

    request = parse_api_request(_json(body))

    assert request.signal.order == OrderRequest(
        order_type=OrderType.LIMIT, limit_price=Decimal("41000"), post_only=True
    )


@pytest.mark.parametrize(
    ("order", "field", "reason"),
    [
        (
            {"order_type": "stop_limit", "stop_price": "41000"},
            "signal.order",
            "stop_limit GTC: a stop_limit order needs a limit_price",
        ),
        (
            {"order_type": "limit", "limit_price": "1", "expire_at": "2030-01-01T00:00:00Z"},
            "signal.order",
            "limit GTC: expire_at is for GTD orders (DAY expires at its venue's session close)",
        ),
        (
            {"order_type": "stop_market", "stop_price": "1", "time_in_force": "fok"},
            "signal.order",
            "stop_market FOK: FOK lives only at arrival, and a stop order waits for its trigger",
        ),
    ],
)
def test_an_impossible_api_order_names_the_field_and_the_reason(
    order: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(SignalError) as refused:
        parse_api_request(_json(api_body(order=order)))

    assert (refused.value.field, refused.value.reason) == (field, reason)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


# --- over HTTP --------------------------------------------------------------------------------


@pytest.fixture
async def signal(tmp_path: Path) -> AsyncIterator[SignalHarness]:
    async with running_signal(tmp_path) as harness:
        yield harness


async def test_a_limit_alert_is_announced_with_its_order(signal: SignalHarness) -> None:
    response = await signal.post_alert(
        template_alert(order_type="limit", limit_price="41000.25", time_in_force="gtc")
    )

    assert response.status_code == 202

    async def announced() -> list[dict[str, Any]] | None:
        return await signal.outbox() or None

    [row] = await eventually(announced, timeout=10, what="the SignalAccepted in the outbox")
    accepted = SignalAccepted.from_json(row["payload"])
    assert accepted.signal.intent is Intent.ENTER_LONG
    assert accepted.signal.order == OrderRequest(
        order_type=OrderType.LIMIT, limit_price=Decimal("41000.25")
    )


async def test_a_post_only_market_alert_is_refused_and_publishes_nothing(
    signal: SignalHarness,
) -> None:
    response = await signal.post_alert(template_alert(post_only=True))

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "order"
    assert "post-only orders only add liquidity" in problem["reason"]
    assert await signal.outbox() == []
    assert await signal.signals() == []


async def test_an_api_limit_without_price_is_refused_and_publishes_nothing(
    signal: SignalHarness,
) -> None:
    response = await signal.http.post(
        "/v1/signals", json=api_body(order={"order_type": "limit"}), headers=bearer()
    )

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem == {
        "field": "signal.order",
        "reason": "limit GTC: a limit order needs a limit_price",
    }
    assert await signal.outbox() == []
    assert await signal.signals() == []
