"""Quotes, emulated orders, marks, rebalances and signal outcomes on the in-memory broker."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.nats import NatsBroker, TestNatsBroker
from test_order_handlers import (
    ACCOUNT,
    STRATEGY,
    SYMBOL,
    VENUE,
    accepted_signal,
    approval,
    deliver,
    denial,
    filled_report,
    open_long,
    orders,
    propose,
    published,
)

from ordo.contracts.enums import (
    ExecutionStatus,
    Intent,
    OrderStatus,
    OrderType,
    Side,
    SignalOutcome,
)
from ordo.contracts.envelope import new_message_id
from ordo.contracts.execution import ExecutionReport
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import (
    CancelOrder,
    OrderProposed,
    OrderSpec,
    RebalancePortfolio,
    TargetWeight,
)
from ordo.contracts.queries import QueryPositions, QueryRebalances, QuerySignals, RebalanceView
from ordo.contracts.risk import DenialReason
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.order import store
from ordo.order.app import build
from ordo.order.config import OrderSettings
from ordo.order.handlers import OrderManagement, OrderQueries
from ordo.order.market_handlers import OrderExpiry, OrderPlacement, proposal
from ordo.order.store import Repositories

NO_STOPS = {"order_types": ["market", "limit"]}


@pytest.fixture
async def oms(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = OrderSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}",
        venues={VENUE: NO_STOPS},
        capital={ACCOUNT: Decimal(100_000)},
    )
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    await kit.breakers.start()
    yield kit
    await kit.db.close()


@pytest.fixture
def settings(oms: ServiceKit) -> OrderSettings:
    assert isinstance(oms.settings, OrderSettings)
    return oms.settings


def quote(last: str, symbol: str = SYMBOL, seconds: float = 1) -> MarketQuote:
    return MarketQuote(
        correlation_id=new_message_id(),
        producer="execution",
        venue=VENUE,
        symbol=symbol,
        last=Decimal(last),
        quoted_at=utc_now() + timedelta(seconds=seconds),
    )


async def hold(kit: ServiceKit, settings: OrderSettings, spec: OrderSpec) -> None:
    """Place ``spec`` as the OMS's consumers do (the venue lacks stops, so it is held)."""
    settle = OrderManagement(settings.market_rules()).settle_order
    placement = OrderPlacement(settings.venue_capabilities(), settle)
    now = utc_now()
    async with kit.outbox.transaction() as tx:
        sent = await placement.place(
            placement.prepare([spec], now),
            signal_id="sig-held",
            proposal_id="prop-held",
            cause=accepted_signal(),
            repos=Repositories(tx.session),
            tx=tx,
            now=now,
            detail="placed by a test",
        )
    assert sent == []  # held, not proposed


def stop_loss(stop: str = "59000") -> OrderSpec:
    return OrderSpec(
        order_id=new_message_id(),
        account=ACCOUNT,
        strategy=STRATEGY,
        venue=VENUE,
        symbol=SYMBOL,
        side=Side.SELL,
        order_type=OrderType.STOP_MARKET,
        stop_price=Decimal(stop),
        quantity=Decimal("0.5"),
        reduce_only=True,
    )


async def test_a_stop_the_venue_lacks_is_held_and_released_as_a_market_order_when_triggered(
    oms: ServiceKit, settings: OrderSettings
) -> None:
    spec = stop_loss("59000")
    async with TestNatsBroker(oms.broker) as broker:
        await hold(oms, settings, spec)
        (held,) = await orders(oms, order_id=spec.order_id)
        assert (held.status, held.emulated) == (OrderStatus.INITIALIZED, True)

        await deliver(broker, quote("59500", seconds=1))
        assert await published(oms, OrderProposed) == []
        await deliver(broker, quote("58990", seconds=2))

    (proposal,) = await published(oms, OrderProposed)
    (sent,) = proposal.orders
    assert (sent.order_id, sent.order_type, sent.reduce_only) == (
        spec.order_id,
        OrderType.MARKET,
        True,
    )
    assert sent.reference_price == Decimal("58990")
    assert proposal.signal_id == "sig-held"
    (released,) = await orders(oms, order_id=spec.order_id)
    assert released.status is OrderStatus.INITIALIZED  # until the risk gate decides
    assert released.order_type is OrderType.STOP_MARKET
    assert "triggered at 58990" in (released.reason or "")


async def test_a_released_order_is_only_released_once_and_then_runs_the_usual_course(
    oms: ServiceKit, settings: OrderSettings
) -> None:
    spec = stop_loss("59000")
    async with TestNatsBroker(oms.broker) as broker:
        await hold(oms, settings, spec)
        await deliver(broker, quote("58000", seconds=1))
        await deliver(broker, quote("57000", seconds=2))
        (proposal,) = await published(oms, OrderProposed)
        await deliver(broker, approval(proposal))
        await deliver(broker, filled_report(proposal.orders[0], "f-1", "57990", "5"))

    (order,) = await orders(oms, order_id=spec.order_id)
    assert order.status is OrderStatus.FILLED


async def test_the_newest_quote_is_the_mark_of_unrealised_pnl_and_the_totals(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_long(oms, broker, size="0.5", fee="30")  # at 60000
        await deliver(broker, quote("61000", seconds=2))
        await deliver(broker, quote("59000", seconds=1))  # older: arrives late, changes nothing

    view = await OrderQueries(oms.db).positions(
        QueryPositions(correlation_id="q", producer="test", account=ACCOUNT)
    )
    (position,) = view.positions
    assert position.mark_price == Decimal(61000)
    assert position.unrealised_pnl == Decimal(500)
    account_total, strategy_total = view.totals
    assert (account_total.account, account_total.strategy) == (ACCOUNT, None)
    assert strategy_total.strategy == STRATEGY
    for total in view.totals:
        assert (total.realised_pnl, total.unrealised_pnl, total.fees) == (
            Decimal(-30),
            Decimal(500),
            Decimal(30),
        )
        assert total.unmarked_positions == 0


async def test_a_position_without_a_mark_has_no_unrealised_pnl_and_is_counted_unmarked(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_long(oms, broker)

    view = await OrderQueries(oms.db).positions(QueryPositions(correlation_id="q", producer="t"))
    (position,) = view.positions
    assert position.unrealised_pnl is None
    assert view.totals[0].unmarked_positions == 1


async def test_signal_outcomes_say_planned_unplannable_and_denied_with_reasons(
    oms: ServiceKit,
) -> None:
    planned, unplannable, denied = (
        accepted_signal(),
        accepted_signal().model_copy(
            update={"signal": accepted_signal().signal.model_copy(update={"symbol": "DOGE/USDT"})}
        ),
        accepted_signal(),
    )
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, planned)
        await deliver(broker, unplannable)
        proposal = await propose(oms, broker, denied)
        await deliver(
            broker, denial(proposal, DenialReason(code="max_notional", message="too big"))
        )

    view = await OrderQueries(oms.db).signals(QuerySignals(correlation_id="q", producer="t"))
    outcomes = {s.signal_id: (s.outcome, s.reason) for s in view.signals}
    assert outcomes[planned.signal_id] == (SignalOutcome.PLANNED, None)
    assert outcomes[unplannable.signal_id][0] is SignalOutcome.UNPLANNABLE
    assert "no market rules for DOGE/USDT" in (outcomes[unplannable.signal_id][1] or "")
    assert outcomes[denied.signal_id] == (SignalOutcome.DENIED, "max_notional: too big")
    assert {s.intent for s in view.signals} == {Intent.ENTER_LONG}
    pages, cursor = [], None
    while True:
        page = await OrderQueries(oms.db).signals(
            QuerySignals(correlation_id="q", producer="t", limit=1, after_signal_id=cursor)
        )
        if not page.signals:
            break
        pages.append(page.signals[0].signal_id)
        cursor = page.signals[-1].signal_id
    assert pages == [s.signal_id for s in view.signals]  # each once, in order, none skipped


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [(SignalOutcome.DENIED, "denied"), (SignalOutcome.PLANNED, "planned")],
)
async def test_a_filtered_page_of_signals_is_full_however_the_others_read(
    oms: ServiceKit, outcome: SignalOutcome, expected: str
) -> None:
    """Planned and denied share one stored outcome; the filter must still fill its page, or a
    reader paging "until a short page" would stop early."""
    async with TestNatsBroker(oms.broker) as broker:
        planned = [accepted_signal() for _ in range(2)]
        for signal in planned:
            await deliver(broker, signal)
        denied = [accepted_signal() for _ in range(2)]
        for signal in denied:
            proposal = await propose(oms, broker, signal)
            await deliver(broker, denial(proposal, DenialReason(code="x", message="no")))

    page = await OrderQueries(oms.db).signals(
        QuerySignals(correlation_id="q", producer="t", outcome=outcome, limit=2)
    )
    wanted = {"denied": denied, "planned": planned}[expected]
    assert {s.signal_id for s in page.signals} == {s.signal_id for s in wanted}
    assert {s.outcome for s in page.signals} == {outcome}


def rebalance(*targets: tuple[str, str], reserve: str = "0") -> RebalancePortfolio:
    rebalance_id = new_message_id()
    return RebalancePortfolio(
        correlation_id=rebalance_id,
        producer="operator",
        rebalance_id=rebalance_id,
        account=ACCOUNT,
        strategy=STRATEGY,
        venue=VENUE,
        targets=tuple(TargetWeight(symbol=s, weight=Decimal(w)) for s, w in targets),
        reserve=Decimal(reserve),
    )


async def fill_all(broker: NatsBroker, proposal: OrderProposed, price: dict[str, str]) -> None:
    await deliver(broker, approval(proposal))
    for spec in proposal.orders:
        await deliver(broker, filled_report(spec, f"f-{spec.order_id}", price[spec.symbol], "1"))


async def test_a_rebalance_sells_first_and_buys_once_the_sells_have_filled(
    oms: ServiceKit,
) -> None:
    prices = {SYMBOL: "60000", "ETH/USDT": "3000"}
    async with TestNatsBroker(oms.broker) as broker:
        await open_long(oms, broker, size="1", fee="0")  # 60000 of 100000 in BTC
        await deliver(broker, quote("60000", seconds=1))
        await deliver(broker, quote("3000", symbol="ETH/USDT", seconds=1))
        command = rebalance((SYMBOL, "0.3"), ("ETH/USDT", "0.6"), reserve="0.1")
        await deliver(broker, command)

        proposals = [p for p in await published(oms, OrderProposed) if p.signal_id.startswith("r")]
        (sells,) = proposals
        (sell,) = sells.orders
        assert (sell.symbol, sell.side, sell.reduce_only) == (SYMBOL, Side.SELL, True)
        assert sell.quantity == Decimal("0.5")  # to 30000 of 100000 at 60000 (0.5 BTC held)
        await fill_all(broker, sells, prices)

        proposals = [p for p in await published(oms, OrderProposed) if p.signal_id.startswith("r")]
        assert len(proposals) == 2
        (buy,) = proposals[1].orders
        assert (buy.symbol, buy.side) == ("ETH/USDT", Side.BUY)
        assert buy.quantity * 3000 <= Decimal("0.6") * 100_000
        await fill_all(broker, proposals[1], prices)

    rebalance_orders = await orders(oms, signal_id=f"rebalance:{command.rebalance_id}")
    assert {o.status for o in rebalance_orders} == {OrderStatus.FILLED}
    (done,) = await rebalances_of(oms, command.rebalance_id)
    assert done.phase == "done"


async def test_a_rebalance_without_marks_is_refused_and_places_nothing(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, rebalance((SYMBOL, "0.5")))

    assert await published(oms, OrderProposed) == []
    (refused,) = await rebalances_of(oms)
    assert refused.phase == "refused"
    assert "no mark for BTC/USDT" in (refused.detail or "")


async def rebalances_of(kit: ServiceKit, rebalance_id: str | None = None) -> list[RebalanceView]:
    query = QueryRebalances(correlation_id="q", producer="t", rebalance_id=rebalance_id)
    return list((await OrderQueries(kit.db).rebalances(query)).rebalances)


async def test_a_gtd_order_past_its_expiry_is_canceled_and_its_cancel_reads_as_expired(
    oms: ServiceKit, settings: OrderSettings
) -> None:
    spec = OrderSpec(
        order_id=new_message_id(),
        account=ACCOUNT,
        strategy=STRATEGY,
        venue=VENUE,
        symbol=SYMBOL,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        limit_price=Decimal(50_000),
        time_in_force="gtd",
        expire_at=utc_now() + timedelta(seconds=30),
        quantity=Decimal("0.1"),
    )
    later = spec.expire_at + timedelta(seconds=1)  # type: ignore[operator]
    oms_domain = OrderManagement(settings.market_rules())
    expiry = OrderExpiry(oms.outbox, oms.db, oms_domain.settle_order, clock=lambda: later)
    async with TestNatsBroker(oms.broker) as broker:
        placement = OrderPlacement(settings.venue_capabilities(), oms_domain.settle_order)
        async with oms.outbox.transaction() as tx:
            proposed = await placement.place(
                [spec],
                signal_id="sig-gtd",
                proposal_id="prop-gtd",
                cause=accepted_signal(),
                repos=Repositories(tx.session),
                tx=tx,
                now=utc_now(),
                detail="test",
            )
            tx.publish(
                proposal(
                    proposed, proposal_id="prop-gtd", signal_id="sig-gtd", cause=accepted_signal()
                )
            )
        (sent,) = await published(oms, OrderProposed)
        await deliver(broker, approval(sent))
        assert await expiry.run() == 1
        assert await expiry.run() == 0  # asked once
        (cancel,) = await published(oms, CancelOrder)
        assert cancel.order_id == spec.order_id
        await deliver(broker, canceled_report(spec, at=later))

    (order,) = await orders(oms, order_id=spec.order_id)
    assert order.status is OrderStatus.EXPIRED


def canceled_report(spec: OrderSpec, at: datetime) -> ExecutionReport:
    return ExecutionReport(
        correlation_id="sig-gtd",
        producer="execution",
        order_id=spec.order_id,
        venue_order_id=f"v-{spec.order_id}",
        account=spec.account,
        venue=spec.venue,
        symbol=spec.symbol,
        side=spec.side,
        status=ExecutionStatus.CANCELED,
        cumulative_quantity=Decimal(0),
        venue_time=at,
    )


async def test_a_rebalance_on_a_stale_quote_is_refused(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, quote("60000", seconds=-120))  # two minutes old
        await deliver(broker, rebalance((SYMBOL, "0.5")))

    assert await published(oms, OrderProposed) == []
    (refused,) = await rebalances_of(oms)
    assert refused.phase == "refused"
    assert "the newest quote for BTC/USDT is older than 60s" in (refused.detail or "")
