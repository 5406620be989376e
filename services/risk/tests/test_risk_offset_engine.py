"""The offset engine on an SQLite store: it values the groups at their quotes, proposes the closes
as signals through the outbox, once per loser, and leaves halted accounts and working groups alone.
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.nats import TestNatsBroker
from pydantic import ValidationError
from risk_factories import ACCOUNT, order, position
from sqlalchemy import select

from ordo.contracts.enums import Intent, SignalSource, SizeUnit, TradingState
from ordo.contracts.signals import SubmitSignal
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.risk import store
from ordo.risk.app import build
from ordo.risk.config import RiskSettings
from ordo.risk.domain.limits import AccountLimits, RiskLimits
from ordo.risk.domain.offset import OffsetSettings
from ordo.risk.domain.quotes import Quote
from ordo.risk.offset import OffsetEngine

OFFSET = OffsetSettings(
    enabled=True,
    interval_seconds=3600,
    loss_percent=Decimal(10),
    loss_amount=Decimal(50),
    quantity_steps={"ETH/USDT": Decimal("0.01")},
)
LIMITS = AccountLimits(default=RiskLimits(max_open_positions=10, quote_max_age_seconds=Decimal(60)))


@pytest.fixture
async def risk(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = RiskSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}", limits=LIMITS, offset=OFFSET
    )
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    async with TestNatsBroker(kit.broker):
        yield kit
    await kit.db.close()


@pytest.fixture
def engine(risk: ServiceKit) -> OffsetEngine:
    return OffsetEngine(risk.db, risk.outbox, LIMITS, OFFSET)


async def hold(
    kit: ServiceKit, strategy: str, symbol: str, quantity: str, entry: str, version: int = 1
) -> None:
    view = position(
        quantity, strategy=strategy, symbol=symbol, average_entry=entry, version=version
    )
    async with kit.db.session() as session:
        held = await store.held_position(session, view)
        await store.save_position(session, view, held)
        await session.commit()


async def quote(kit: ServiceKit, symbol: str, last: str, age_seconds: float = 0) -> None:
    quoted_at = utc_now() - timedelta(seconds=age_seconds)
    async with kit.db.session() as session:
        await store.save_quote(
            session, Quote("paper", symbol, None, None, Decimal(last), quoted_at)
        )
        await session.commit()


async def proposed(kit: ServiceKit) -> list[SubmitSignal]:
    outbox = store.messaging.outbox
    async with kit.db.session() as session:
        found = await session.execute(
            select(outbox.c.payload)
            .where(outbox.c.subject == "signal.submit.v1")
            .order_by(outbox.c.seq)
        )
        return [SubmitSignal.from_json(payload) for payload in found.scalars()]


async def a_loser_and_a_winner(kit: ServiceKit) -> None:
    # At the quotes below: -40 (under the amount), -60 (the loser), and a short winning +100.
    await hold(kit, "dip", "BTC/USDT", "2", "100")
    await hold(kit, "dip-2", "BTC/USDT", "3", "100")
    await hold(kit, "trend", "ETH/USDT", "-10", "50")
    await quote(kit, "BTC/USDT", "80")
    await quote(kit, "ETH/USDT", "40")


async def test_the_loser_is_closed_and_the_winner_reduced_through_signals(
    risk: ServiceKit, engine: OffsetEngine
) -> None:
    await a_loser_and_a_winner(risk)

    await engine.run()

    loser, winner = await proposed(risk)
    assert (loser.signal.strategy, loser.signal.intent) == ("dip-2", Intent.EXIT_LONG)
    assert loser.signal.size is not None and loser.signal.size.value == Decimal(3)
    assert (winner.signal.strategy, winner.signal.intent) == ("trend", Intent.REDUCE)
    assert winner.signal.size is not None
    assert (winner.signal.size.unit, winner.signal.size.value) == (SizeUnit.QUANTITY, Decimal(6))
    assert winner.signal.reference_price == Decimal(40)
    for signal in (loser, winner):
        assert (signal.source, signal.producer, signal.signal.account) == (
            SignalSource.STRATEGY,
            "risk",
            ACCOUNT,
        )
    assert loser.correlation_id == winner.correlation_id
    assert loser.idempotency_key != winner.idempotency_key
    async with risk.db.session() as session:
        [recorded] = (await session.execute(select(store.offsets))).all()
    assert (recorded.loss, recorded.covered) == (Decimal(60), Decimal(60))


async def test_a_loser_is_offset_once_however_often_the_engine_runs(
    risk: ServiceKit, engine: OffsetEngine
) -> None:
    await a_loser_and_a_winner(risk)
    other_replica = OffsetEngine(risk.db, risk.outbox, LIMITS, OFFSET)

    await engine.run()
    await other_replica.run()
    await engine.run()

    assert len(await proposed(risk)) == 2


async def test_a_halted_account_gets_no_offset(risk: ServiceKit, engine: OffsetEngine) -> None:
    await a_loser_and_a_winner(risk)
    async with risk.db.session() as session:
        account = await store.lock_account(session, ACCOUNT, utc_now())
        await store.save_trading_state(
            session, account, TradingState.HALTED, reason="test", actor="alice", now=utc_now()
        )
        await session.commit()

    await engine.run()

    assert await proposed(risk) == []


async def test_a_group_with_an_order_working_is_left_out(
    risk: ServiceKit, engine: OffsetEngine
) -> None:
    await a_loser_and_a_winner(risk)
    # The loser's own close is on its way: judging it now could close the winner twice.
    closing = order("sell", "3", strategy="dip-2", reduce_only=True, price="80")
    async with risk.db.session() as session:
        await store.reserve(session, [closing], utc_now())
        await session.commit()

    await engine.run()

    # The shallower loser (-40) is not deep enough alone, so nothing is proposed.
    assert await proposed(risk) == []


async def test_a_group_without_a_quote_is_neither_loser_nor_winner(
    risk: ServiceKit, engine: OffsetEngine
) -> None:
    await hold(risk, "dip", "BTC/USDT", "3", "100")
    await hold(risk, "trend", "SOL/USDT", "10", "10")
    await quote(risk, "BTC/USDT", "80")

    await engine.run()

    assert await proposed(risk) == []


async def test_a_group_whose_quote_is_too_old_is_neither_loser_nor_winner(
    risk: ServiceKit, engine: OffsetEngine
) -> None:
    await hold(risk, "dip", "BTC/USDT", "3", "100")
    await hold(risk, "trend", "ETH/USDT", "-10", "50")
    # The feed stopped a while ago: the loss these prices show may be long gone.
    await quote(risk, "BTC/USDT", "80", age_seconds=61)
    await quote(risk, "ETH/USDT", "40", age_seconds=61)

    await engine.run()

    assert await proposed(risk) == []


async def test_an_account_without_a_maximum_quote_age_gets_no_offset(risk: ServiceKit) -> None:
    await a_loser_and_a_winner(risk)
    # Limits changed at run time may lift the quote age: a quote of any age is then no mark.
    ageless = AccountLimits(default=RiskLimits(max_open_positions=10))

    await OffsetEngine(risk.db, risk.outbox, ageless, OFFSET).run()

    assert await proposed(risk) == []


def test_the_offset_cannot_be_enabled_for_limits_without_a_maximum_quote_age() -> None:
    limits = {
        "default": {"quote_max_age_seconds": "10"},
        "accounts": {"bare": {"quote_max_age_seconds": None}},
    }
    with pytest.raises(ValidationError, match=r"accounts\.bare: the offset needs quote_max_age"):
        RiskSettings(limits=limits, offset=OFFSET)


async def test_a_winner_already_being_reduced_is_not_reduced_again_for_the_next_loser(
    risk: ServiceKit, engine: OffsetEngine
) -> None:
    await a_loser_and_a_winner(risk)
    await engine.run()  # dip-2 closed against 6 of trend's 10, neither order approved yet
    # Another loser, before the first plan's closes reach the gate: trend's 10 are not all there.
    # -70 (14 %), which trend could cover if it still held 10 (it holds 4 once reduced).
    await hold(risk, "sol-dip", "SOL/USDT", "5", "100")
    await quote(risk, "SOL/USDT", "86")

    await engine.run()

    assert [s.signal.strategy for s in await proposed(risk)] == ["dip-2", "trend"]
