"""The risk service with everything a decision reads besides the exposure: quotes, the day's
activity, the equity peak and the order-rate window. Automatic halts on the daily loss and the
drawdown, and the same decisions from a service restarted on the same store."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from faststream.nats import TestNatsBroker
from risk_factories import ACCOUNT, SYMBOL, VENUE, order, position, proposal
from sqlalchemy import select

from ordo.contracts.enums import TradingState
from ordo.contracts.envelope import Message
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import OrderSpec, PositionChanged, PositionView
from ordo.contracts.queries import PositionsView, QueryPositions
from ordo.contracts.risk import (
    OrderApproved,
    OrderDenied,
    SetRiskLimits,
    SetTradingState,
    TradingStateChanged,
)
from ordo.contracts.subjects import STREAM_OF_SUBJECT, Subject, subject_of
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.risk import store
from ordo.risk.app import build
from ordo.risk.config import RiskSettings
from ordo.risk.domain.exposure import Instrument
from ordo.risk.domain.limits import AccountLimits
from ordo.risk.handlers import RiskHandlers
from ordo.risk.startup import PositionSync, sync_positions


def settings_for(database: Path, **limits: object) -> RiskSettings:
    return RiskSettings(
        database_url=f"sqlite+aiosqlite:///{database}",
        limits=AccountLimits.model_validate({"default": limits}),
    )


@asynccontextmanager
async def service(database: Path, **limits: object) -> AsyncIterator["Running"]:
    kit = build(settings_for(database, **limits), telemetry=False)
    await kit.db.create_all(store.metadata)
    try:
        async with TestNatsBroker(kit.broker) as broker:
            yield Running(kit, broker)
    finally:
        await kit.db.close()


class Running:
    def __init__(self, kit: ServiceKit, broker: Any) -> None:
        self.kit = kit
        self._broker = broker

    async def send(self, *messages: Message) -> None:
        for message in messages:
            subject = subject_of(message)
            await self._broker.publish(
                message.to_json(), str(subject), stream=STREAM_OF_SUBJECT[subject]
            )

    async def published(self) -> list[Message]:
        types: dict[str, type[Message]] = {
            "risk.approved.v1": OrderApproved,
            "risk.denied.v1": OrderDenied,
            "risk.state.v1": TradingStateChanged,
        }
        outbox = store.messaging.outbox
        async with self.kit.db.session() as session:
            found = (await session.execute(select(outbox).order_by(outbox.c.seq))).all()
        return [types[row.subject].from_json(row.payload) for row in found]

    async def decisions(self) -> list[OrderApproved | OrderDenied]:
        return [m for m in await self.published() if isinstance(m, OrderApproved | OrderDenied)]

    async def halts(self) -> list[TradingStateChanged]:
        return [m for m in await self.published() if isinstance(m, TradingStateChanged)]

    async def state(self) -> TradingState:
        async with self.kit.db.session() as session:
            found = await session.scalar(
                select(store.trading_states.c.state).where(
                    store.trading_states.c.account == ACCOUNT
                )
            )
        return TradingState(found) if found else TradingState.ACTIVE


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "risk.db"


def market_quote(last: str, *, age_seconds: float = 0, symbol: str = SYMBOL) -> MarketQuote:
    return MarketQuote(
        correlation_id="market",
        producer="execution",
        venue=VENUE,
        symbol=symbol,
        last=Decimal(last),
        quoted_at=utc_now() - timedelta(seconds=age_seconds),
    )


def moved(
    view: PositionView, *, realised: str = "0", spec: OrderSpec | None = None
) -> PositionChanged:
    fill_of = spec or order()
    return PositionChanged(
        correlation_id="sig-1",
        producer="order",
        position=view.model_copy(update={"realised_pnl": Decimal(realised)}),
        order_id=fill_of.order_id,
        fill_id=f"f-{view.version}",
    )


def codes(decision: OrderApproved | OrderDenied) -> list[str]:
    return [] if isinstance(decision, OrderApproved) else [r.code for r in decision.reasons]


# -- quotes --------------------------------------------------------------------------------------


async def test_the_newest_quote_wins_and_an_older_one_is_ignored(database: Path) -> None:
    newest = market_quote("101", age_seconds=1)
    async with service(database) as risk:
        await risk.send(newest, market_quote("99", age_seconds=5))
        async with risk.kit.db.session() as session:
            held = await store.load_quotes(session, [newest_instrument()])
    assert held[newest_instrument()].last == Decimal(101)
    assert held[newest_instrument()].quoted_at == newest.quoted_at


def newest_instrument() -> Instrument:
    return Instrument(VENUE, SYMBOL)


async def test_the_collar_uses_the_quote_the_service_received(database: Path) -> None:
    limits = {"price_collar_percent": "5", "quote_max_age_seconds": "30"}
    async with service(database, **limits) as risk:
        await risk.send(proposal(order(price="100")))
        await risk.send(market_quote("100"))
        await risk.send(proposal(order(price="105")), proposal(order(price="105.01")))
        decisions = await risk.decisions()
        async with risk.kit.db.session() as session:
            audited = (
                await session.execute(
                    select(store.decisions.c.inputs).order_by(store.decisions.c.decided_at)
                )
            ).scalars()
            inputs = list(audited)

    assert [codes(d) for d in decisions] == [
        ["QUOTE_MISSING"],
        [],
        ["PRICE_OUTSIDE_COLLAR"],
    ]
    # The audit keeps the quote each decision was made on (none, then the one received).
    assert [[q["last"] for q in row["quotes"]] for row in inputs] == [[], ["100"], ["100"]]


# -- automatic halts -----------------------------------------------------------------------------


async def test_the_daily_realised_loss_past_its_limit_halts_the_account(database: Path) -> None:
    held = position("1", version=1)
    async with service(database, max_daily_realised_loss="100") as risk:
        await risk.send(moved(held, realised="-60"))
        await risk.send(moved(held.model_copy(update={"version": 2}), realised="-100"))
        assert await risk.halts() == []  # a loss of exactly 100 is within the limit
        await risk.send(moved(held.model_copy(update={"version": 3}), realised="-100.01"))
        await risk.send(moved(held.model_copy(update={"version": 4}), realised="-150"))
        await risk.send(proposal(order("buy", "1")))
        halts = await risk.halts()
        [denied] = await risk.decisions()
        assert await risk.state() is TradingState.HALTED

    [halt] = halts  # the second breach finds the account halted already
    assert (halt.state, halt.previous, halt.actor) == (
        TradingState.HALTED,
        TradingState.ACTIVE,
        "risk",
    )
    assert "daily realised loss 100.01" in halt.reason
    assert codes(denied) == ["TRADING_HALTED", "MAX_DAILY_REALISED_LOSS"]


@pytest.mark.parametrize(("last", "halted"), [("99", False), ("98.99", True)])
async def test_a_quote_that_takes_equity_past_the_drawdown_limit_halts(
    database: Path, last: str, halted: bool
) -> None:
    # 10 held at 100 on a capital of 1000: at 110 the equity peaks at 1100; 10 % down is 990.
    limits = {
        "starting_capital": "1000",
        "max_drawdown_percent": "10",
        "quote_max_age_seconds": "600",
    }
    async with service(database, **limits) as risk:
        await risk.send(moved(position("10", average_entry="100")))
        await risk.send(market_quote("110"), market_quote(last))
        halts = await risk.halts()
        async with risk.kit.db.session() as session:
            peak = await store.load_equity_peak(session, ACCOUNT)

    assert peak == Decimal(1100)
    assert [h.state for h in halts] == ([TradingState.HALTED] if halted else [])
    if halted:
        assert "below its peak of 1100" in halts[0].reason


def operator_sets(state: TradingState) -> SetTradingState:
    return SetTradingState(
        correlation_id="desk",
        producer="operator",
        account=ACCOUNT,
        state=state,
        reason="closing out the drawdown by hand",
        operator="alice",
    )


async def test_an_operator_may_reduce_an_account_halted_for_drawdown_until_it_breaches_again(
    database: Path,
) -> None:
    # 10 held at 100 on a capital of 1000, peak 1100 at 110: below 990 (98.99) is a breach.
    limits = {
        "starting_capital": "1000",
        "max_drawdown_percent": "10",
        "quote_max_age_seconds": "600",
    }
    async with service(database, **limits) as risk:
        await risk.send(moved(position("10", average_entry="100")))
        await risk.send(market_quote("110"), market_quote("98"))
        await risk.send(operator_sets(TradingState.REDUCING))
        # Still in the same breach: automation does not overrule the operator's audited choice.
        await risk.send(market_quote("97.5"), market_quote("97"))
        await risk.send(proposal(order("sell", "5", price="97")))
        reducing = await risk.state()
        # Recovered to the peak, then a new breach: a new halt.
        await risk.send(market_quote("110"), market_quote("98"))
        automatic = [h for h in await risk.halts() if h.actor == "risk"]
        [exit_] = await risk.decisions()

    assert reducing is TradingState.REDUCING
    assert codes(exit_) == []
    assert [(h.previous, h.state) for h in automatic] == [
        (TradingState.ACTIVE, TradingState.HALTED),
        (TradingState.REDUCING, TradingState.HALTED),
    ]


async def test_an_operator_may_reduce_an_account_halted_for_its_daily_loss(
    database: Path,
) -> None:
    held = position("3", version=1)
    async with service(database, max_daily_realised_loss="100") as risk:
        await risk.send(moved(held, realised="-150"))
        await risk.send(operator_sets(TradingState.REDUCING))
        # Closing out realises more of the day's loss: the account stays as the operator set it.
        await risk.send(moved(held.model_copy(update={"version": 2}), realised="-180"))
        state = await risk.state()
        automatic = [h for h in await risk.halts() if h.actor == "risk"]

    assert state is TradingState.REDUCING
    assert len(automatic) == 1


async def test_a_starting_capital_changed_at_run_time_starts_the_equity_peak_afresh(
    database: Path,
) -> None:
    # 10 held at 100 on a capital of 1000: the peak is 1100 at 110. Half the capital is then
    # withdrawn: 600 against the old peak would be a 45 % drawdown that nobody lost.
    limits = {
        "starting_capital": "1000",
        "max_drawdown_percent": "10",
        "quote_max_age_seconds": "600",
    }
    withdrawal = SetRiskLimits(
        correlation_id="desk",
        producer="operator",
        account=ACCOUNT,
        changes={"starting_capital": "500"},
        reason="500 withdrawn",
        operator="alice",
    )
    async with service(database, **limits) as risk:
        await risk.send(moved(position("10", average_entry="100")))
        await risk.send(market_quote("110"), withdrawal, market_quote("110"))
        await risk.send(proposal(order("buy", "0.1", price="110")))
        halts = await risk.halts()
        [decision] = await risk.decisions()
        async with risk.kit.db.session() as session:
            peak = await store.load_equity_peak(session, ACCOUNT)

    assert halts == []
    assert codes(decision) == []
    assert peak == Decimal(600)


# -- restarts ------------------------------------------------------------------------------------


async def test_a_restarted_service_decides_as_the_first_one_would(database: Path) -> None:
    limits = {
        "max_daily_traded_notional": "1000",
        "order_rate_window_seconds": 3600,
        "max_orders_per_account": 3,
        "price_collar_percent": "5",
        "quote_max_age_seconds": "600",
        "starting_capital": "10000",
        "max_drawdown_percent": "50",
    }
    async with service(database, **limits) as risk:
        await risk.send(market_quote("100"))
        await risk.send(proposal(order("buy", "4")), proposal(order("buy", "4")))
        before = await risk.decisions()

    # A new service on the same store: the quote, the day's 800 traded and the 2 orders in the
    # window are still there. 3 more would pass the rate but not the 1000 traded; 2 pass both,
    # and then both the day's notional and the rate window are full.
    async with service(database, **limits) as risk:
        await risk.send(proposal(order("buy", "3")), proposal(order("buy", "2")))
        await risk.send(proposal(order("buy", "0.01")))
        after = (await risk.decisions())[len(before) :]

    assert [codes(d) for d in before] == [[], []]
    assert [codes(d) for d in after] == [
        ["MAX_DAILY_TRADED_NOTIONAL"],
        [],
        ["MAX_DAILY_TRADED_NOTIONAL", "ORDER_RATE_ACCOUNT"],
    ]


# -- start-up: the OMS's positions ----------------------------------------------------------------


async def test_start_up_takes_the_oms_positions_the_projection_lacks(database: Path) -> None:
    kit = build(settings_for(database, max_position_quantity="5"), telemetry=False)
    await kit.db.create_all(store.metadata)
    oms_view = PositionsView(
        correlation_id="q",
        producer="order",
        positions=(position("4", version=7), position("0", symbol="ETH/USDT", version=2)),
    )

    async def oms(query: QueryPositions) -> PositionsView:
        return oms_view

    kit.reply(Subject.QUERY_POSITIONS, QueryPositions, oms)  # the OMS's side, in this test

    handlers = RiskHandlers(AccountLimits.model_validate({"default": {}}))
    try:
        async with TestNatsBroker(kit.broker) as broker:
            taken = await sync_positions(kit, handlers, deadline_seconds=5)
            again = await sync_positions(kit, handlers, deadline_seconds=5)
            running = Running(kit, broker)
            await running.send(proposal(order("buy", "1")), proposal(order("buy", "1.01")))
            decisions = await running.decisions()
    finally:
        await kit.db.close()

    assert (taken, again) == (2, 0)  # the second time, nothing is newer than the projection
    assert [codes(d) for d in decisions] == [[], ["MAX_POSITION_QUANTITY"]]


async def test_start_up_goes_on_without_the_oms_and_says_so(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = build(settings_for(database), telemetry=False)
    await kit.db.create_all(store.metadata)
    handlers = RiskHandlers(AccountLimits.model_validate({"default": {}}))
    try:
        async with TestNatsBroker(kit.broker):
            taken = await sync_positions(kit, handlers, deadline_seconds=0.2)
    finally:
        await kit.db.close()

    assert taken is None
    assert "positions not synced from the OMS" in capsys.readouterr().out


async def test_positions_missed_at_start_up_are_synced_once_the_oms_answers(
    database: Path,
) -> None:
    # The store was replaced and the OMS was down at start-up: the projection lacks a position of
    # 4, so a buy of 2 under a limit of 5 would pass, until the sync is retried.
    kit = build(settings_for(database, max_position_quantity="5"), telemetry=False)
    await kit.db.create_all(store.metadata)
    handlers = RiskHandlers(AccountLimits.model_validate({"default": {}}))
    sync = PositionSync(kit, handlers, deadline_seconds=0.2)
    oms_view = PositionsView(correlation_id="q", producer="order", positions=(position("4"),))
    oms_is_up = False

    async def oms(query: QueryPositions) -> PositionsView:
        if not oms_is_up:
            raise ConnectionError("the OMS's store is down")
        return oms_view

    kit.reply(Subject.QUERY_POSITIONS, QueryPositions, oms)
    try:
        async with TestNatsBroker(kit.broker) as broker:
            await sync.at_start()
            oms_is_up = True
            await sync.until_synced()
            await sync.until_synced()  # once synced, it asks no more
            running = Running(kit, broker)
            await running.send(proposal(order("buy", "2")))
            decisions = await running.decisions()
    finally:
        await kit.db.close()

    assert sync.attempts == 2
    assert [codes(d) for d in decisions] == [["MAX_POSITION_QUANTITY"]]
