"""Position groups in the OMS on FastStream's in-memory broker: grids, take-profits re-placed,
one-cancels-the-other, pyramids, the pool's queue and the account's trading state."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from faststream.nats import NatsBroker, TestNatsBroker
from sqlalchemy import select

from ordo.contracts.enums import (
    ExecutionStatus,
    GroupOrderRole,
    GroupStatus,
    Intent,
    OrderType,
    Side,
    SignalSource,
    SizeUnit,
    TradingState,
)
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.groups import GroupsView, GroupView, QueryGroups, QueryQueue, QueueView
from ordo.contracts.orders import CancelOrder, OrderProposed, OrderSpec
from ordo.contracts.risk import DenialReason, OrderApproved, OrderDenied, TradingStateChanged
from ordo.contracts.signals import SignalAccepted, SignalRequest, Size
from ordo.contracts.subjects import STREAM_OF_SUBJECT, subject_of
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.order import store
from ordo.order.app import build
from ordo.order.config import OrderSettings
from ordo.order.domain import Position

M = TypeVar("M", bound=Message)
D = Decimal

ACCOUNT, VENUE = "main", "paper"
STRATEGIES: dict[str, Any] = {
    "dca": {
        "dca": {
            "base_weight": "1",
            "levels": [
                {"gap_percent": "1", "weight": "1"},
                {"gap_percent": "2", "weight": "2"},
            ],
        },
        "take_profit": {"mode": "aggregate", "aggregate_percent": "1"},
        "stop_loss_percent": "5",
        "max_pyramids": 1,
    },
    "legs": {
        "dca": {"levels": [{"gap_percent": "1", "weight": "1"}]},
        "take_profit": {"mode": "per_leg", "per_leg_percent": "2"},
    },
    "bracket": {"take_profit": {"mode": "aggregate", "aggregate_percent": "3"}},
    "hybrid": {
        "dca": {"levels": [{"gap_percent": "1", "weight": "1"}]},
        "take_profit": {"mode": "hybrid", "per_leg_percent": "2", "aggregate_percent": "1"},
    },
}


@pytest.fixture
async def oms(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = OrderSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}",
        strategies=STRATEGIES,
        pool={"max_open_groups": 1},
    )
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    await kit.breakers.start()
    yield kit
    await kit.db.close()


def signal(
    strategy: str,
    intent: Intent = Intent.ENTER_LONG,
    *,
    symbol: str = "BTC/USDT",
    size: str | None = "0.4",
    price: str = "100",
    stop: str | None = None,
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
            strategy=strategy,
            venue=VENUE,
            symbol=symbol,
            intent=intent,
            size=Size(unit=SizeUnit.QUANTITY, value=D(size)) if size else None,
            reference_price=D(price),
            stop_price=D(stop) if stop else None,
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


def report(spec: OrderSpec, status: ExecutionStatus, price: str | None = None) -> ExecutionReport:
    fill = None
    if status is ExecutionStatus.FILLED:
        assert price is not None
        fill = Fill(
            fill_id=f"f-{spec.order_id}",
            quantity=spec.quantity,
            price=D(price),
            fee=D(0),
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
        status=status,
        cumulative_quantity=spec.quantity if fill else D(0),
        average_price=D(price) if price else None,
        fill=fill,
    )


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


async def proposals(kit: ServiceKit) -> list[OrderProposed]:
    return await published(kit, OrderProposed)


async def approve_last(kit: ServiceKit, broker: NatsBroker) -> OrderProposed:
    proposal = (await proposals(kit))[-1]
    await deliver(broker, approval(proposal))
    return proposal


async def groups(kit: ServiceKit, **filters: Any) -> tuple[GroupView, ...]:
    async with TestNatsBroker(kit.broker) as broker:
        query = QueryGroups(correlation_id="q", producer="operator", **filters)
        answer = await broker.request(query.to_json(), str(subject_of(query)))
        return GroupsView.model_validate(await answer.decode()).groups


async def outcome(kit: ServiceKit, signal_id: str) -> tuple[str, str | None]:
    async with kit.db.session() as session:
        row = (
            await session.execute(
                select(store.signal_outcomes.c.outcome, store.signal_outcomes.c.reason).where(
                    store.signal_outcomes.c.signal_id == signal_id
                )
            )
        ).one()
        return row.outcome, row.reason


def only(specs: tuple[OrderSpec, ...], **match: Any) -> OrderSpec:
    (found,) = [s for s in specs if all(getattr(s, k) == v for k, v in match.items())]
    return found


async def open_dca_group(kit: ServiceKit, broker: NatsBroker) -> OrderProposed:
    await deliver(broker, signal("dca"))
    entries = await approve_last(kit, broker)
    await deliver(
        broker,
        report(only(entries.orders, order_type=OrderType.MARKET), ExecutionStatus.FILLED, "100"),
    )
    return entries


# --- the grid and its exits --------------------------------------------------------------------


async def test_a_dca_signal_proposes_the_base_entry_and_its_grid_as_one_proposal(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal("dca", size="0.4"))

    (proposal,) = await proposals(oms)
    base, first, second = proposal.orders
    assert (base.order_type, base.quantity) == (OrderType.MARKET, D("0.1"))
    assert (first.order_type, first.limit_price, first.quantity) == (
        OrderType.LIMIT,
        D("99"),
        D("0.1"),
    )
    assert (second.limit_price, second.quantity) == (D("98"), D("0.2"))
    (group,) = await groups(oms)
    assert group.status is GroupStatus.LIVE
    assert [leg.role for leg in group.legs] == [
        GroupOrderRole.BASE,
        GroupOrderRole.DCA,
        GroupOrderRole.DCA,
    ]


async def test_the_base_fill_places_the_aggregate_take_profit_and_the_stop_loss(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_dca_group(oms, broker)

    exits = (await proposals(oms))[-1].orders
    take_profit = only(exits, order_type=OrderType.LIMIT)
    stop_loss = only(exits, order_type=OrderType.STOP_MARKET)
    assert (take_profit.side, take_profit.quantity, take_profit.limit_price) == (
        Side.SELL,
        D("0.1"),
        D("101"),
    )
    assert (stop_loss.quantity, stop_loss.stop_price, stop_loss.reduce_only) == (
        D("0.1"),
        D("95"),
        True,
    )


async def test_a_dca_level_fill_replaces_the_take_profit_at_the_new_average(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        entries = await open_dca_group(oms, broker)
        first_exits = await approve_last(oms, broker)
        level = only(entries.orders, limit_price=D("99"))
        await deliver(broker, report(level, ExecutionStatus.FILLED, "99"))

    cancelled = {c.order_id for c in await published(oms, CancelOrder)}
    assert cancelled == {spec.order_id for spec in first_exits.orders}
    replaced = (await proposals(oms))[-1].orders
    take_profit = only(replaced, order_type=OrderType.LIMIT)
    # Average entry (100 + 99) / 2 = 99.5; 1 % above is 100.495, up to the tick: 100.5.
    assert (take_profit.quantity, take_profit.limit_price) == (D("0.2"), D("100.5"))
    assert only(replaced, order_type=OrderType.STOP_MARKET).quantity == D("0.2")


async def test_a_take_profit_fill_cancels_the_stop_and_the_grid_then_the_group_closes(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        entries = await open_dca_group(oms, broker)
        exits = await approve_last(oms, broker)
        await deliver(
            broker,
            report(only(exits.orders, order_type=OrderType.LIMIT), ExecutionStatus.FILLED, "101"),
        )
        (closing,) = await groups(oms)
        cancels = await published(oms, CancelOrder)
        stop = only(exits.orders, order_type=OrderType.STOP_MARKET)
        levels = [s for s in entries.orders if s.order_type is OrderType.LIMIT]
        assert {c.order_id for c in cancels} == {stop.order_id, *(s.order_id for s in levels)}
        assert closing.status is GroupStatus.CLOSING
        for spec in (stop, *levels):
            await deliver(broker, report(spec, ExecutionStatus.CANCELED))

    (closed,) = await groups(oms)
    assert closed.status is GroupStatus.CLOSED
    assert closed.quantity == 0


async def test_per_leg_take_profits_take_profit_on_each_fill_from_its_own_price(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal("legs", size="0.2"))
        entries = await approve_last(oms, broker)
        base = only(entries.orders, order_type=OrderType.MARKET)
        level = only(entries.orders, order_type=OrderType.LIMIT)
        await deliver(broker, report(base, ExecutionStatus.FILLED, "100"))
        await deliver(broker, report(level, ExecutionStatus.FILLED, "99"))

    base_tp, level_tp = [p.orders[0] for p in (await proposals(oms))[1:]]
    assert (base_tp.limit_price, base_tp.quantity) == (D("102"), D("0.1"))
    assert (level_tp.limit_price, level_tp.quantity) == (D("100.98"), D("0.1"))
    assert await published(oms, CancelOrder) == []  # per-leg exits are never re-placed


async def test_a_signal_stop_makes_a_bracket_whose_exits_wait_for_the_entry_fill(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal("bracket", size="0.1", stop="97"))
        (entry,) = (await approve_last(oms, broker)).orders
        assert len(await proposals(oms)) == 1
        await deliver(broker, report(entry, ExecutionStatus.FILLED, "100"))

    exits = (await proposals(oms))[-1].orders
    assert only(exits, order_type=OrderType.LIMIT).limit_price == D("103")
    assert only(exits, order_type=OrderType.STOP_MARKET).stop_price == D("97")


# --- pyramids, exits and the queue -------------------------------------------------------------


async def test_a_pyramid_beyond_the_configured_count_is_refused(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_dca_group(oms, broker)
        first, second = signal("dca", Intent.ADD, size="0.1"), signal("dca", Intent.ADD, size="0.1")
        await deliver(broker, first)
        await deliver(broker, second)

    assert (await outcome(oms, first.signal_id))[0] == "planned"
    refused, reason = await outcome(oms, second.signal_id)
    assert refused == "refused"
    assert reason is not None and "1 of 1 pyramids" in reason
    (group,) = await groups(oms)
    assert group.pyramids == 1


async def test_an_exit_cancels_the_group_orders_first_then_closes_the_rest_reduce_only(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        entries = await open_dca_group(oms, broker)
        await approve_last(oms, broker)
        await deliver(broker, signal("dca", Intent.EXIT_LONG, size=None))

    levels = {s.order_id for s in entries.orders if s.order_type is OrderType.LIMIT}
    assert levels <= {c.order_id for c in await published(oms, CancelOrder)}
    (close,) = (await proposals(oms))[-1].orders
    assert (close.side, close.quantity, close.reduce_only) == (Side.SELL, D("0.1"), True)
    assert close.reference_price == D("100")  # the risk gate values it at the exit's price
    (group,) = await groups(oms)
    assert group.status is GroupStatus.CLOSING


async def test_beyond_the_pool_a_group_waits_and_an_exit_removes_it(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_dca_group(oms, broker)
        waiting = signal("bracket", symbol="ETH/USDT", size="0.1")
        await deliver(broker, waiting)
        assert (await outcome(oms, waiting.signal_id))[0] == "queued"
        queue = QueueView.model_validate(
            await (
                await broker.request(
                    QueryQueue(correlation_id="q", producer="operator").to_json(),
                    "query.queue.v1",
                )
            ).decode()
        )
        exit_signal = signal("bracket", Intent.EXIT_LONG, symbol="ETH/USDT", size=None)
        await deliver(broker, exit_signal)

    (entry,) = queue.entries
    assert (entry.group_id, entry.tier, entry.rank) == (entry.group_id, 4, 1)
    assert queue.pools[0].open_groups == 1
    assert (await outcome(oms, exit_signal.signal_id))[0] == "dequeued"
    assert [g.status for g in await groups(oms, symbol="ETH/USDT")] == [GroupStatus.CLOSED]
    assert all(p.signal_id != waiting.signal_id for p in await proposals(oms))


async def test_a_closed_group_releases_its_slot_to_the_waiting_group(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_dca_group(oms, broker)
        await approve_last(oms, broker)
        waiting = signal("bracket", symbol="ETH/USDT", size="0.1")
        await deliver(broker, waiting)
        await deliver(broker, signal("dca", Intent.EXIT_LONG, size=None))
        closing = await proposals(oms)
        for proposal in closing[:2]:  # the grid and the first exits: cancelled
            for spec in proposal.orders:
                if spec.order_type is not OrderType.MARKET:
                    await deliver(broker, report(spec, ExecutionStatus.CANCELED))
        (close,) = (await approve_last(oms, broker)).orders
        await deliver(broker, report(close, ExecutionStatus.FILLED, "100"))

    released = (await proposals(oms))[-1]
    assert released.signal_id == waiting.signal_id
    assert (await outcome(oms, waiting.signal_id))[0] == "planned"
    statuses = {g.symbol: g.status for g in await groups(oms)}
    assert statuses == {"BTC/USDT": GroupStatus.CLOSED, "ETH/USDT": GroupStatus.LIVE}


async def test_a_denied_grid_closes_its_group_and_frees_the_slot(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal("dca"))
        waiting = signal("bracket", symbol="ETH/USDT", size="0.1")
        await deliver(broker, waiting)
        (grid,) = await proposals(oms)
        reason = DenialReason(code="max_notional_per_order", message="too big")
        await deliver(
            broker,
            OrderDenied.caused_by(
                grid,
                producer="risk",
                proposal_id=grid.proposal_id,
                account=ACCOUNT,
                order_ids=tuple(s.order_id for s in grid.orders),
                reasons=(reason,),
            ),
        )

    statuses = {g.symbol: g.status for g in await groups(oms)}
    assert statuses == {"BTC/USDT": GroupStatus.CLOSED, "ETH/USDT": GroupStatus.LIVE}


# --- the account's trading state ---------------------------------------------------------------


def state_change(state: TradingState) -> TradingStateChanged:
    return TradingStateChanged(
        correlation_id="ops",
        producer="risk",
        account=ACCOUNT,
        state=state,
        previous=TradingState.ACTIVE,
        reason="operator",
        actor="desk",
    )


async def test_a_halted_account_refuses_new_entries_but_plans_exits(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_dca_group(oms, broker)
        await deliver(broker, state_change(TradingState.HALTED))
        entry = signal("bracket", symbol="ETH/USDT")
        plain = signal("no-plan", symbol="SOL/USDT")
        exit_signal = signal("dca", Intent.EXIT_LONG, size=None)
        for message in (entry, plain, exit_signal):
            await deliver(broker, message)

    for refused in (entry, plain):
        outcome_, reason = await outcome(oms, refused.signal_id)
        assert outcome_ == "refused"
        assert reason is not None and "is halted" in reason
    assert (await outcome(oms, exit_signal.signal_id))[0] == "planned"


async def test_a_reducing_account_refuses_a_pyramid(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await open_dca_group(oms, broker)
        await deliver(broker, state_change(TradingState.REDUCING))
        add = signal("dca", Intent.ADD, size="0.1")
        await deliver(broker, add)

    outcome_, reason = await outcome(oms, add.signal_id)
    assert outcome_ == "refused"
    assert reason is not None and "reducing" in reason


async def test_a_stop_loss_fill_cancels_the_take_profit(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal("bracket", size="0.1", stop="97"))
        (entry,) = (await approve_last(oms, broker)).orders
        await deliver(broker, report(entry, ExecutionStatus.FILLED, "100"))
        exits = await approve_last(oms, broker)
        stop = only(exits.orders, order_type=OrderType.STOP_MARKET)
        await deliver(broker, report(stop, ExecutionStatus.FILLED, "97"))

    (cancel,) = await published(oms, CancelOrder)
    assert cancel.order_id == only(exits.orders, order_type=OrderType.LIMIT).order_id
    (group,) = await groups(oms)
    assert group.status is GroupStatus.CLOSING
    assert group.reason is not None and "stop_loss" in group.reason


async def test_the_queue_waits_while_halted_and_is_released_once_active(oms: ServiceKit) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal("bracket", size="0.1"))
        (entry,) = (await approve_last(oms, broker)).orders
        await deliver(broker, report(entry, ExecutionStatus.FILLED, "100"))
        waiting = signal("bracket", symbol="ETH/USDT", size="0.1")
        await deliver(broker, waiting)
        await deliver(broker, state_change(TradingState.HALTED))
        await deliver(broker, signal("bracket", Intent.EXIT_LONG, size=None))
        exits, close = (await proposals(oms))[1:]
        for spec in exits.orders:
            await deliver(broker, report(spec, ExecutionStatus.CANCELED))
        await deliver(broker, approval(close))
        await deliver(broker, report(close.orders[0], ExecutionStatus.FILLED, "100"))
        held = {g.symbol: g.status for g in await groups(oms)}
        await deliver(broker, state_change(TradingState.ACTIVE))

    assert held == {"BTC/USDT": GroupStatus.CLOSED, "ETH/USDT": GroupStatus.WAITING}
    assert (await proposals(oms))[-1].signal_id == waiting.signal_id
    assert {g.symbol: g.status for g in await groups(oms)}["ETH/USDT"] is GroupStatus.LIVE


async def test_an_exit_with_no_group_closes_an_open_position_on_the_plain_path(
    oms: ServiceKit,
) -> None:
    # A position of a grouped strategy with no group (opened before the strategy had a plan).
    async with oms.db.session() as session, session.begin():
        position = Position.flat(ACCOUNT, "dca", VENUE, "BTC/USDT", utc_now())
        position.apply_fill(Side.BUY, D("0.3"), D(100), D(0), utc_now())
        await store.Repositories(session).positions.save(position)
    exit_signal = signal("dca", Intent.EXIT_LONG, size=None)
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, exit_signal)

    (close,) = (await proposals(oms))[-1].orders
    assert (close.side, close.quantity, close.reduce_only) == (Side.SELL, D("0.3"), True)
    assert (await outcome(oms, exit_signal.signal_id))[0] == "planned"
    assert await groups(oms) == ()


async def test_hybrid_takes_profit_on_each_dca_level_and_aggregates_the_rest(
    oms: ServiceKit,
) -> None:
    async with TestNatsBroker(oms.broker) as broker:
        await deliver(broker, signal("hybrid", size="0.2"))
        entries = await approve_last(oms, broker)
        await deliver(
            broker,
            report(
                only(entries.orders, order_type=OrderType.MARKET), ExecutionStatus.FILLED, "100"
            ),
        )
        (first_aggregate,) = (await approve_last(oms, broker)).orders
        await deliver(
            broker,
            report(only(entries.orders, order_type=OrderType.LIMIT), ExecutionStatus.FILLED, "99"),
        )

    # The base entry alone: one aggregate take-profit 1 % above it.
    assert (first_aggregate.limit_price, first_aggregate.quantity) == (D(101), D("0.1"))
    # The level filled: its own take-profit 2 % above its fill, and the aggregate one re-placed
    # for the rest (the base entry's 0.1) at 1 % above the new average 99.5.
    level_tp = only((await proposals(oms))[-1].orders, limit_price=D("100.98"))
    aggregate = only((await proposals(oms))[-1].orders, limit_price=D("100.5"))
    assert (level_tp.quantity, aggregate.quantity) == (D("0.1"), D("0.1"))
    (cancel,) = await published(oms, CancelOrder)
    assert cancel.order_id == first_aggregate.order_id
    (group,) = await groups(oms)
    roles = [leg.role for leg in group.legs]
    assert roles.count(GroupOrderRole.TAKE_PROFIT_LEG) == 1
