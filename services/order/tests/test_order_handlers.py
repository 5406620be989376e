"""The OMS on FastStream's in-memory broker: signals, risk decisions and fills, end to end."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from faststream.nats import NatsBroker, TestNatsBroker
from sqlalchemy import func, select

from ordo.contracts.enums import ExecutionStatus, Intent, OrderStatus, Side, SignalSource, SizeUnit
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.orders import (
    OrderProposed,
    OrderSpec,
    OrderUpdated,
    OrderView,
    PositionChanged,
    PositionView,
)
from ordo.contracts.queries import OrdersView, PositionsView, QueryOrders, QueryPositions
from ordo.contracts.risk import DenialReason, OrderApproved, OrderDenied
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.contracts.subjects import STREAM_OF_SUBJECT, subject_of
from ordo.contracts.types import utc_now
from ordo.kit.keyed_locks import KeyedLocks
from ordo.kit.messaging import PoisonMessage
from ordo.kit.outbox import Transaction
from ordo.kit.service import ServiceKit
from ordo.order import store
from ordo.order.app import build
from ordo.order.config import OrderSettings
from ordo.order.handlers import OrderManagement

M = TypeVar("M", bound=Message)

ACCOUNT, STRATEGY, VENUE, SYMBOL = "main", "trend", "paper", "BTC/USDT"


@pytest.fixture
async def oms(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = OrderSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}")
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    await kit.breakers.start()
    yield kit
    await kit.db.close()


# --- messages as the other services send them ---------------------------------------------------


def accepted_signal(
    intent: Intent = Intent.ENTER_LONG, size: str | None = "0.5", price: str = "60000"
) -> SignalAccepted:
    signal_id = new_message_id()
    return SignalAccepted(
        correlation_id=signal_id,
        producer="signal",
        signal_id=signal_id,
        source=SignalSource.API,
        received_at=utc_now(),
        signal=SignalRequest(
            account=ACCOUNT,
            strategy=STRATEGY,
            venue=VENUE,
            symbol=SYMBOL,
            intent=intent,
            size=Size(unit=SizeUnit.QUANTITY, value=Decimal(size)) if size else None,
            reference_price=Decimal(price),
        ),
    )


def approval(proposal: OrderProposed) -> OrderApproved:
    return OrderApproved.caused_by(
        proposal,
        producer="risk",
        proposal_id=proposal.proposal_id,
        account=proposal.account,
        orders=proposal.orders,
    )


def denial(proposal: OrderProposed, *reasons: DenialReason) -> OrderDenied:
    return OrderDenied.caused_by(
        proposal,
        producer="risk",
        proposal_id=proposal.proposal_id,
        account=proposal.account,
        order_ids=tuple(spec.order_id for spec in proposal.orders),
        reasons=reasons,
    )


def filled_report(spec: OrderSpec, fill_id: str, price: str, fee: str) -> ExecutionReport:
    fill = Fill(
        fill_id=fill_id,
        quantity=spec.quantity,
        price=Decimal(price),
        fee=Decimal(fee),
        fee_currency="USDT",
        filled_at=utc_now(),
    )
    return ExecutionReport(
        correlation_id="sig",
        producer="execution",
        order_id=spec.order_id,
        venue_order_id=f"v-{spec.order_id}",
        account=spec.account,
        venue=spec.venue,
        symbol=spec.symbol,
        side=spec.side,
        status=ExecutionStatus.FILLED,
        cumulative_quantity=spec.quantity,
        average_price=Decimal(price),
        fill=fill,
    )


# --- what the OMS holds and publishes ---------------------------------------------------------


async def deliver(broker: NatsBroker, message: Message) -> None:
    subject = subject_of(message)
    await broker.publish(message.to_json(), str(subject), stream=STREAM_OF_SUBJECT[subject])


async def published(kit: ServiceKit, model: type[M]) -> list[M]:
    outbox = store.messaging.outbox
    async with kit.db.session() as session:
        rows = await session.execute(
            select(outbox.c.payload)
            .where(outbox.c.subject == str(subject_of(model)))
            .order_by(outbox.c.seq)
        )
        return [model.from_json(payload) for (payload,) in rows.all()]


async def orders(kit: ServiceKit, **filters: Any) -> list[OrderView]:
    async with kit.db.session() as session:
        return await store.find_orders(session, **filters)


async def positions(kit: ServiceKit) -> list[PositionView]:
    async with kit.db.session() as session:
        return await store.find_positions(session, include_flat=True)


async def count_rows(kit: ServiceKit, table: Any) -> int:
    async with kit.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def propose(kit: ServiceKit, broker: NatsBroker, signal: SignalAccepted) -> OrderProposed:
    await deliver(broker, signal)
    (proposal,) = [
        p for p in await published(kit, OrderProposed) if p.signal_id == signal.signal_id
    ]
    return proposal


async def open_long(
    kit: ServiceKit, broker: NatsBroker, size: str = "0.5", fee: str = "30"
) -> OrderSpec:
    proposal = await propose(kit, broker, accepted_signal(size=size))
    await deliver(broker, approval(proposal))
    (spec,) = proposal.orders
    await deliver(broker, filled_report(spec, f"fill-{spec.order_id}", "60000", fee))
    return spec


# --- scenarios -------------------------------------------------------------------------------


async def test_an_accepted_signal_becomes_one_initialized_order_and_a_proposal(
    oms: ServiceKit,
) -> None:
    signal = accepted_signal(size="0.5")
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal)

    (order,) = await orders(oms)
    assert order.status is OrderStatus.INITIALIZED
    assert (order.signal_id, order.side, order.quantity) == (
        signal.signal_id,
        Side.BUY,
        Decimal("0.5"),
    )
    (proposal,) = await published(oms, OrderProposed)
    assert proposal.correlation_id == signal.signal_id
    assert proposal.causation_id == signal.message_id
    assert proposal.signal_id == signal.signal_id
    assert [spec.order_id for spec in proposal.orders] == [order.order_id]
    assert proposal.orders[0].reference_price == Decimal("60000")
    (update,) = await published(oms, OrderUpdated)
    assert update.order == order


async def test_the_same_signal_in_another_message_plans_nothing_more(oms: ServiceKit) -> None:
    signal = accepted_signal()
    resent = signal.model_copy(update={"message_id": new_message_id()})
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal)
        await deliver(broker, signal)
        await deliver(broker, resent)

    assert len(await orders(oms)) == 1
    assert len(await published(oms, OrderProposed)) == 1


async def test_an_approval_submits_the_order(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        proposal = await propose(oms, broker, accepted_signal())
        await deliver(broker, approval(proposal))

    (order,) = await orders(oms)
    assert (order.status, order.version) == (OrderStatus.SUBMITTED, 2)
    assert [u.order.status for u in await published(oms, OrderUpdated)] == [
        OrderStatus.INITIALIZED,
        OrderStatus.SUBMITTED,
    ]


async def test_a_fill_completes_the_order_and_opens_the_position_net_of_its_fee(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        spec = await open_long(oms, broker, size="0.5", fee="30")

    (order,) = await orders(oms)
    assert order.status is OrderStatus.FILLED
    assert (order.filled_quantity, order.average_fill_price, order.fees) == (
        Decimal("0.5"),
        Decimal("60000"),
        Decimal("30"),
    )
    assert order.venue_order_id == f"v-{spec.order_id}"
    (position,) = await positions(oms)
    assert position.quantity == Decimal("0.5")
    assert position.average_entry == Decimal("60000")
    assert position.realised_pnl == Decimal("-30")  # the entry fee is P&L from the start
    (change,) = await published(oms, PositionChanged)
    assert (change.order_id, change.fill_id) == (spec.order_id, f"fill-{spec.order_id}")
    assert change.position == position


async def test_the_same_report_twice_applies_its_fill_once(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        proposal = await propose(oms, broker, accepted_signal(size="0.5"))
        await deliver(broker, approval(proposal))
        report = filled_report(proposal.orders[0], "fill-1", "60000", "30")
        await deliver(broker, report)
        (before,) = await positions(oms)
        await deliver(broker, report)  # a redelivery: the inbox knows it
        await deliver(broker, report.model_copy(update={"message_id": new_message_id()}))

    (after,) = await positions(oms)
    assert after == before
    assert after.quantity == Decimal("0.5")
    assert await count_rows(oms, store.order_fills) == 1
    assert len(await published(oms, PositionChanged)) == 1
    assert (await orders(oms))[0].version == 3


async def test_a_denial_keeps_every_reason_code_on_the_order(oms: ServiceKit) -> None:
    reasons = (
        DenialReason(code="MAX_NOTIONAL_PER_ORDER", message="300000 > 250000"),
        DenialReason(code="TRADING_HALTED", message="account main is halted"),
    )
    async with TestNatsBroker(oms.broker) as broker:
        proposal = await propose(oms, broker, accepted_signal(size="5"))
        await deliver(broker, denial(proposal, *reasons))

    (order,) = await orders(oms)
    assert order.status is OrderStatus.DENIED
    assert order.reason == (
        "MAX_NOTIONAL_PER_ORDER: 300000 > 250000; TRADING_HALTED: account main is halted"
    )
    assert (await published(oms, OrderUpdated))[-1].order == order


async def test_an_exit_long_after_a_fill_sells_the_whole_position_reduce_only(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_long(oms, broker, size="0.5")
        exit_signal = accepted_signal(Intent.EXIT_LONG, size=None)
        proposal = await propose(oms, broker, exit_signal)

    (exit_order,) = proposal.orders
    assert (exit_order.side, exit_order.quantity, exit_order.reduce_only) == (
        Side.SELL,
        Decimal("0.5"),
        True,
    )
    (stored,) = await orders(oms, signal_id=exit_signal.signal_id)
    assert stored.status is OrderStatus.INITIALIZED


async def test_closing_at_the_entry_price_realises_both_fees(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_long(oms, broker, size="0.5", fee="30")
        proposal = await propose(oms, broker, accepted_signal(Intent.EXIT_LONG, size=None))
        await deliver(broker, approval(proposal))
        await deliver(broker, filled_report(proposal.orders[0], "fill-exit", "60000", "30"))

    (position,) = await positions(oms)
    assert position.quantity == 0
    assert position.average_entry is None
    assert position.realised_pnl == Decimal("-60")
    async with oms.db.session() as session:
        assert await store.find_positions(session) == []  # flat positions are left out


async def test_a_second_exit_while_the_first_is_working_sells_nothing_more(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_long(oms, broker, size="0.5")
        first = await propose(oms, broker, accepted_signal(Intent.EXIT_LONG, size=None))
        await deliver(broker, approval(first))
        again = accepted_signal(Intent.EXIT_LONG, size=None)
        await deliver(broker, again)

    assert await orders(oms, signal_id=again.signal_id) == []
    async with oms.db.session() as session:
        record = await store.Repositories(session).signals.get(again.signal_id)
    assert record is not None and record.outcome is store.SignalOutcome.UNPLANNABLE
    assert f"already closing 0.5 by orders {first.orders[0].order_id}" in (record.reason or "")


async def test_two_exits_planned_at_once_close_the_position_once(
    oms: ServiceKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_long(oms, broker, size="0.5")
        # Both units of work read the same position and working orders before either writes.
        both_read = asyncio.Barrier(2)
        read_working = store.OrderRepository.working_orders_of
        readings = 0

        async def working_orders_of(
            self: store.OrderRepository, *key: str, **filters: bool
        ) -> list[Any]:
            nonlocal readings
            found = await read_working(self, *key, **filters)
            readings += 1
            if readings <= 2:  # the first reading of each; the loser's second one goes alone
                await asyncio.wait_for(both_read.wait(), timeout=5)
            return found

        monkeypatch.setattr(store.OrderRepository, "working_orders_of", working_orders_of)
        # As two replicas: each has its own per-account turns, so nothing keeps them apart.
        monkeypatch.setattr(KeyedLocks, "hold", lambda _self, _key: contextlib.nullcontext())
        exits = [accepted_signal(Intent.EXIT_LONG, size=None) for _ in range(2)]
        await asyncio.gather(*(deliver(broker, signal) for signal in exits))

    closes = [o for o in await orders(oms) if o.reduce_only]
    assert [(o.side, o.quantity) for o in closes] == [(Side.SELL, Decimal("0.5"))]
    assert len(await published(oms, OrderProposed)) == 2  # the entry's and one exit's


async def test_a_quote_sized_entry_leaves_room_for_the_venue_fee(oms: ServiceKit) -> None:
    signal = accepted_signal(size=None, price="100")
    budgeted = signal.model_copy(
        update={
            "signal": signal.signal.model_copy(
                update={"size": Size(unit=SizeUnit.QUOTE, value=Decimal("1000"))}
            )
        }
    )
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, budgeted)

    (order,) = await orders(oms)
    # The paper venue charges 0.1 %: 10 BTC at 100 would cost 1001.
    assert order.quantity == Decimal("9.99")
    assert order.quantity * 100 * Decimal("1.001") <= 1000


async def test_an_unplannable_signal_creates_no_order_and_records_why(oms: ServiceKit) -> None:
    signal = accepted_signal(Intent.EXIT_LONG, size=None)
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal)

    assert await orders(oms) == []
    assert await count_rows(oms, store.messaging.outbox) == 0
    async with oms.db.session() as session:
        record = await store.Repositories(session).signals.get(signal.signal_id)
    assert record is not None
    assert record.outcome is store.SignalOutcome.UNPLANNABLE
    assert "no long position is open" in (record.reason or "")


async def test_a_signal_for_a_market_without_rules_is_unplannable(oms: ServiceKit) -> None:
    signal = accepted_signal()
    unknown = signal.model_copy(
        update={"signal": signal.signal.model_copy(update={"symbol": "DOGE/USDT"})}
    )
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, unknown)

    assert await orders(oms) == []
    async with oms.db.session() as session:
        record = await store.Repositories(session).signals.get(signal.signal_id)
    assert record is not None
    assert "no market rules for DOGE/USDT at paper" in (record.reason or "")


STRANGER = OrderSpec(
    order_id="not-ours",
    account=ACCOUNT,
    strategy=STRATEGY,
    venue=VENUE,
    symbol=SYMBOL,
    side=Side.BUY,
    quantity=Decimal("1"),
)


async def test_a_status_report_for_an_unknown_order_changes_nothing(oms: ServiceKit) -> None:
    filled = filled_report(STRANGER, "f-1", "60000", "1")
    status_only = filled.model_copy(update={"fill": None, "status": ExecutionStatus.ACCEPTED})
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, status_only)

    assert await count_rows(oms, store.messaging.outbox) == 0
    assert await count_rows(oms, store.messaging.inbox) == 1  # handled: acknowledged, not retried


async def test_a_fill_for_an_unknown_order_is_dead_lettered_not_dropped(oms: ServiceKit) -> None:
    oms_handlers = OrderManagement(OrderSettings().market_rules())
    report = filled_report(STRANGER, "f-1", "60000", "1")
    async with oms.db.session() as session:
        with pytest.raises(PoisonMessage, match=r"fill f-1 .* unknown order not-ours"):
            await oms_handlers.on_execution_report(report, Transaction(session))

    assert await positions(oms) == []


async def test_every_version_of_an_order_is_kept_in_its_history(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        spec = await open_long(oms, broker)

    async with oms.db.session() as session:
        history = await store.order_events_of(session, spec.order_id)
    assert [(event["version"], event["status"]) for event in history] == [
        (1, "initialized"),
        (2, "submitted"),
        (3, "filled"),
    ]
    assert f"fill fill-{spec.order_id}: 0.5 @ 60000" in history[-1]["detail"]


async def test_the_query_responders_return_orders_and_positions(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        first = await open_long(oms, broker, size="0.5")
        second = await open_long(oms, broker, size="0.25")
        query = QueryOrders(correlation_id="ops", producer="operator", account=ACCOUNT)
        found = await oms.request(query, OrdersView)
        by_status = await oms.request(
            QueryOrders(correlation_id="ops", producer="operator", status=OrderStatus.DENIED),
            OrdersView,
        )
        held = await oms.request(
            QueryPositions(correlation_id="ops", producer="operator", account=ACCOUNT),
            PositionsView,
        )
        elsewhere = await oms.request(
            QueryPositions(correlation_id="ops", producer="operator", account="other"),
            PositionsView,
        )

    assert [o.order_id for o in found.orders] == [second.order_id, first.order_id]  # newest first
    assert found.correlation_id == "ops"
    assert found.causation_id == query.message_id
    assert by_status.orders == ()
    (position,) = held.positions
    assert (position.strategy, position.quantity) == (STRATEGY, Decimal("0.75"))
    assert elsewhere.positions == ()
