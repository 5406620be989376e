"""A plain signal's order block: the planner builds the type it asks for, and the OMS places it
as every order (checked against its venue, DAY given its session close, emulated where the
venue lacks the type)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from faststream.nats import TestNatsBroker
from order_domain_builders import ACCOUNT, NOW, STRATEGY, VENUE, order_ids, signal
from test_order_handlers import (
    accepted_signal,
    approval,
    count_rows,
    deliver,
    filled_report,
    open_long,
    orders,
    published,
)

from ordo.contracts.enums import Intent, OrderStatus, OrderType, Side, SizeUnit, TimeInForce
from ordo.contracts.envelope import new_message_id
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import OrderProposed
from ordo.contracts.signals import OrderRequest, SignalAccepted
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.order import store
from ordo.order.app import build
from ordo.order.config import OrderSettings
from ordo.order.domain import MarketRules, PlanningError, Position, plan_orders
from ordo.order.store import SignalRecord

D = Decimal
RULES = MarketRules(tick_size=D("0.5"), step_size=D("0.001"), min_notional=D("5"))
QTY = SizeUnit.QUANTITY
SYMBOL = "BTC/USDT"


def holding_of(quantity: str) -> Position:
    position = Position.flat(ACCOUNT, STRATEGY, VENUE, SYMBOL, NOW)
    position.apply_fill(Side.BUY, D(quantity), D("100"), D("0"))
    return position


def ordered(intent: Intent, size: str | None = "0.5", **order: Any) -> SignalAccepted:
    return signal(intent, (QTY, size) if size else None, order=OrderRequest.model_validate(order))


# --- planning ---------------------------------------------------------------------------------


def test_a_limit_buy_is_rounded_down_to_the_tick_and_a_limit_sell_up() -> None:
    (buy,) = plan_orders(
        ordered(Intent.ENTER_LONG, order_type="limit", limit_price="100.9"),
        None,
        RULES,
        order_ids(),
    )
    (sell,) = plan_orders(
        ordered(Intent.ENTER_SHORT, order_type="limit", limit_price="100.1"),
        None,
        RULES,
        order_ids(),
    )

    assert (buy.order_type, buy.side, buy.limit_price) == (OrderType.LIMIT, Side.BUY, D("100.5"))
    assert (sell.order_type, sell.side, sell.limit_price) == (
        OrderType.LIMIT,
        Side.SELL,
        D("100.5"),
    )


def test_a_stop_limit_keeps_its_trigger_and_limit_and_time_in_force() -> None:
    expiry = datetime(2031, 1, 1, tzinfo=UTC)
    (order,) = plan_orders(
        ordered(
            Intent.ENTER_LONG,
            order_type="stop_limit",
            stop_price="101.2",
            limit_price="102",
            time_in_force="gtd",
            expire_at=expiry,
        ),
        None,
        RULES,
        order_ids(),
    )

    assert order.order_type is OrderType.STOP_LIMIT
    assert (order.stop_price, order.limit_price) == (D("101"), D("102"))
    assert (order.time_in_force, order.expire_at) == (TimeInForce.GTD, expiry)


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ({"time_in_force": "ioc"}, (TimeInForce.IOC, False)),
        ({"time_in_force": "fok"}, (TimeInForce.FOK, False)),
        ({"post_only": True}, (TimeInForce.GTC, True)),
    ],
)
def test_ioc_fok_and_post_only_travel_on_the_order(
    terms: dict[str, Any], expected: tuple[TimeInForce, bool]
) -> None:
    (order,) = plan_orders(
        ordered(Intent.ENTER_LONG, order_type="limit", limit_price="100", **terms),
        None,
        RULES,
        order_ids(),
    )

    assert (order.time_in_force, order.post_only) == expected


def test_a_trailing_stop_keeps_its_distance() -> None:
    (order,) = plan_orders(
        ordered(Intent.ENTER_SHORT, order_type="trailing_stop", trailing_percent="1.5"),
        None,
        RULES,
        order_ids(),
    )

    assert (order.order_type, order.trailing_percent, order.stop_price) == (
        OrderType.TRAILING_STOP,
        D("1.5"),
        None,
    )


def test_without_a_reference_price_a_quote_size_is_sized_at_the_limit_price() -> None:
    request = signal(
        Intent.ENTER_LONG,
        (SizeUnit.QUOTE, "100"),
        reference_price=None,
        order=OrderRequest(order_type=OrderType.LIMIT, limit_price=D("50")),
    )

    (order,) = plan_orders(request, None, RULES, order_ids())

    assert (order.quantity, order.reference_price) == (D("2"), D("50"))


def test_a_limit_exit_closes_the_position_reduce_only_at_its_price() -> None:
    (order,) = plan_orders(
        ordered(Intent.EXIT_LONG, size=None, order_type="limit", limit_price="120.2"),
        holding_of("1"),
        RULES,
        order_ids(),
    )

    assert (order.side, order.quantity, order.reduce_only) == (Side.SELL, D("1"), True)
    assert (order.order_type, order.limit_price) == (OrderType.LIMIT, D("120.5"))


def test_a_reverse_places_both_legs_as_the_type_asked() -> None:
    close, entry = plan_orders(
        ordered(Intent.REVERSE, size="1", order_type="limit", limit_price="99"),
        holding_of("1"),
        RULES,
        order_ids(),
    )

    assert (close.reduce_only, close.order_type, close.limit_price) == (
        True,
        OrderType.LIMIT,
        D("99"),
    )
    assert (entry.reduce_only, entry.order_type, entry.side) == (False, OrderType.LIMIT, Side.SELL)


def test_a_price_below_one_tick_is_refused_not_made_zero() -> None:
    with pytest.raises(PlanningError, match="rounds to 0"):
        plan_orders(
            ordered(Intent.ENTER_LONG, order_type="limit", limit_price="0.2"),
            None,
            RULES,
            order_ids(),
        )


# --- the OMS's signal path --------------------------------------------------------------------

ALWAYS_OPEN = "paper"  # a crypto venue: no session close, no stops (the handlers' tests' venue)
STOCKS = "stocks"  # closes at 20:00 UTC
GROUPED = "dca"  # a strategy whose orders follow its plan


@pytest.fixture
async def oms(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    rules = {"tick_size": "0.01", "step_size": "0.0001", "min_notional": "5"}
    settings = OrderSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}",
        markets={ALWAYS_OPEN: {SYMBOL: rules}, STOCKS: {SYMBOL: rules}},
        venues={
            ALWAYS_OPEN: {"order_types": ["market", "limit"]},
            STOCKS: {"session_close_utc": time(20, 0)},
        },
        strategies={GROUPED: {"take_profit": {"mode": "aggregate", "aggregate_percent": "3"}}},
    )
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    await kit.breakers.start()
    yield kit
    await kit.db.close()


def with_order(
    venue: str = ALWAYS_OPEN, intent: Intent = Intent.ENTER_LONG, **order: Any
) -> SignalAccepted:
    accepted = accepted_signal(intent, size="0.5" if intent is Intent.ENTER_LONG else None)
    request = accepted.signal.model_copy(
        update={"venue": venue, "order": OrderRequest.model_validate(order)}
    )
    return accepted.model_copy(update={"signal": request})


def quote(last: str, seconds: float) -> MarketQuote:
    return MarketQuote(
        correlation_id=new_message_id(),
        producer="execution",
        venue=ALWAYS_OPEN,
        symbol=SYMBOL,
        last=D(last),
        quoted_at=utc_now() + timedelta(seconds=seconds),
    )


async def outcome(kit: ServiceKit, signal_id: str) -> SignalRecord:
    async with kit.db.session() as session:
        record = await store.Repositories(session).signals.get(signal_id)
    assert record is not None
    return record


async def test_a_limit_signal_is_proposed_as_a_limit_order_at_its_price(oms: ServiceKit) -> None:
    limit = with_order(order_type="limit", limit_price="59000.129", post_only=True)
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, limit)

    (proposal,) = await published(oms, OrderProposed)
    (spec,) = proposal.orders
    assert (spec.order_type, spec.limit_price, spec.post_only) == (
        OrderType.LIMIT,
        D("59000.12"),
        True,
    )
    (order,) = await orders(oms)
    assert (order.order_type, order.limit_price, order.emulated) == (
        OrderType.LIMIT,
        D("59000.12"),
        False,
    )


async def test_a_stop_limit_the_venue_lacks_is_held_and_released_by_the_crossing_quote(
    oms: ServiceKit,
) -> None:
    stop_limit = with_order(order_type="stop_limit", stop_price="61000", limit_price="61050")
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, stop_limit)
        (held,) = await orders(oms)
        assert (held.status, held.emulated, held.order_type) == (
            OrderStatus.INITIALIZED,
            True,
            OrderType.STOP_LIMIT,
        )
        assert await published(oms, OrderProposed) == []
        assert (await outcome(oms, stop_limit.signal_id)).outcome is store.SignalOutcome.PLANNED

        await deliver(broker, quote("60900", seconds=1))
        assert await published(oms, OrderProposed) == []
        await deliver(broker, quote("61010", seconds=2))

        (proposal,) = await published(oms, OrderProposed)
        (sent,) = proposal.orders
        assert (sent.order_id, sent.order_type, sent.limit_price, sent.stop_price) == (
            held.order_id,
            OrderType.LIMIT,
            D("61050"),
            None,
        )
        assert proposal.signal_id == stop_limit.signal_id
        await deliver(broker, approval(proposal))
        await deliver(broker, filled_report(sent, "f-1", "61020", "6"))

    (order,) = await orders(oms)
    assert order.status is OrderStatus.FILLED


async def test_day_on_a_venue_without_a_session_close_is_refused_and_places_nothing(
    oms: ServiceKit,
) -> None:
    day = with_order(order_type="limit", limit_price="59000", time_in_force="day")
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, day)

    assert await orders(oms) == []
    assert await count_rows(oms, store.messaging.outbox) == 0
    record = await outcome(oms, day.signal_id)
    assert record.outcome is store.SignalOutcome.UNPLANNABLE
    assert "paper has none (it trades around the clock)" in (record.reason or "")


async def test_day_on_a_venue_with_a_session_close_expires_at_the_close(oms: ServiceKit) -> None:
    day = with_order(STOCKS, order_type="limit", limit_price="59000", time_in_force="day")
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, day)

    (order,) = await orders(oms)
    assert order.time_in_force is TimeInForce.DAY
    assert order.expire_at is not None
    assert order.expire_at.time() == time(20, 0)
    assert utc_now() < order.expire_at <= utc_now() + timedelta(days=1)


async def test_a_gtd_signal_that_has_already_expired_is_refused(oms: ServiceKit) -> None:
    past = with_order(
        order_type="limit",
        limit_price="59000",
        time_in_force="gtd",
        expire_at=utc_now() - timedelta(minutes=1),
    )
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, past)

    assert await orders(oms) == []
    assert await count_rows(oms, store.messaging.outbox) == 0
    record = await outcome(oms, past.signal_id)
    assert record.outcome is store.SignalOutcome.UNPLANNABLE
    assert "has already passed" in (record.reason or "")


async def test_a_market_exit_without_an_order_block_works_as_before(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        entry = await open_long(oms, broker)
        exit_signal = accepted_signal(Intent.EXIT_LONG, size=None)
        await deliver(broker, exit_signal)

    (exit_proposal,) = [
        p for p in await published(oms, OrderProposed) if p.signal_id == exit_signal.signal_id
    ]
    (close,) = exit_proposal.orders
    assert (close.side, close.quantity, close.reduce_only, close.order_type) == (
        Side.SELL,
        entry.quantity,
        True,
        OrderType.MARKET,
    )


async def test_an_order_block_for_a_strategy_with_a_plan_is_refused_not_ignored(
    oms: ServiceKit,
) -> None:
    limit = with_order(order_type="limit", limit_price="59000")
    grouped = limit.model_copy(
        update={"signal": limit.signal.model_copy(update={"strategy": GROUPED})}
    )
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, grouped)

    assert await orders(oms) == []
    assert await count_rows(oms, store.messaging.outbox) == 0
    record = await outcome(oms, grouped.signal_id)
    assert record.outcome is store.SignalOutcome.UNPLANNABLE
    assert "places its orders by its plan" in (record.reason or "")
