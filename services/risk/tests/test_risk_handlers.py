"""The risk service on FastStream's in-memory broker and an SQLite file: decisions, reservations,
trading state, and what survives a restart. The last test runs on PostgreSQL too.
"""

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from faststream.nats import TestNatsBroker
from risk_factories import ACCOUNT, order, position, proposal
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.enums import OrderStatus, TradingState
from ordo.contracts.envelope import Message
from ordo.contracts.orders import (
    OrderProposed,
    OrderSpec,
    OrderUpdated,
    OrderView,
    PositionChanged,
    PositionView,
)
from ordo.contracts.risk import OrderApproved, OrderDenied, SetTradingState, TradingStateChanged
from ordo.contracts.subjects import STREAM_OF_SUBJECT, subject_of
from ordo.contracts.types import utc_now
from ordo.kit.migrations import upgrade_async
from ordo.kit.outbox import Transaction
from ordo.kit.service import ServiceKit
from ordo.kit.store import Database
from ordo.kit.testing import eventually
from ordo.risk import store
from ordo.risk.app import build
from ordo.risk.config import RiskSettings
from ordo.risk.domain.exposure import Exposure
from ordo.risk.domain.limits import AccountLimits, RiskLimits
from ordo.risk.handlers import RiskHandlers

# A BTC order of 1 at the factories' reference price of 100 is worth 100.
LIMITS = AccountLimits(
    default=RiskLimits(
        max_notional_per_order=Decimal(1000),
        max_position_quantity=Decimal(5),
        max_open_positions=3,
    )
)


AUDIT_RETENTION_DAYS = 90


def settings_for(database: Path) -> RiskSettings:
    return RiskSettings(
        database_url=f"sqlite+aiosqlite:///{database}",
        limits=LIMITS,
        audit_retention_days=AUDIT_RETENTION_DAYS,
    )


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "risk.db"


@pytest.fixture
async def risk(database: Path) -> AsyncIterator[ServiceKit]:
    kit = build(settings_for(database), telemetry=False)
    await kit.db.create_all(store.metadata)
    yield kit
    await kit.db.close()


@asynccontextmanager
async def running(kit: ServiceKit) -> AsyncIterator["Sender"]:
    async with TestNatsBroker(kit.broker) as broker:
        yield Sender(broker)


class Sender:
    def __init__(self, broker: Any) -> None:
        self._broker = broker

    async def send(self, *messages: Message) -> None:
        for message in messages:
            subject = subject_of(message)
            await self._broker.publish(
                message.to_json(), str(subject), stream=STREAM_OF_SUBJECT[subject]
            )


async def published(kit: ServiceKit) -> list[Message]:
    """What the service published, in order (from its outbox)."""
    types: dict[str, type[Message]] = {
        "risk.approved.v1": OrderApproved,
        "risk.denied.v1": OrderDenied,
        "risk.state.v1": TradingStateChanged,
    }
    outbox = store.messaging.outbox
    async with kit.db.session() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.seq))).all()
    return [types[row.subject].from_json(row.payload) for row in rows]


async def rows(kit: ServiceKit, table: Any) -> list[dict[str, Any]]:
    async with kit.db.session() as session:
        return [dict(row._mapping) for row in (await session.execute(select(table))).all()]


async def reserved(kit: ServiceKit) -> dict[str, Decimal]:
    """Order id → the quantity its reservation still counts."""
    return {row["order_id"]: row["remaining"] for row in await rows(kit, store.reservations)}


def set_state(state: TradingState, reason: str = "venue outage") -> SetTradingState:
    return SetTradingState(
        correlation_id="ops-1",
        producer="operator",
        account=ACCOUNT,
        state=state,
        reason=reason,
        operator="alice",
    )


def order_updated(
    spec: OrderSpec, *, status: OrderStatus, filled: str, version: int
) -> OrderUpdated:
    now = utc_now()
    view = OrderView(
        order_id=spec.order_id,
        signal_id="sig-1",
        account=spec.account,
        strategy=spec.strategy,
        venue=spec.venue,
        symbol=spec.symbol,
        side=spec.side,
        order_type=spec.order_type,
        quantity=spec.quantity,
        status=status,
        filled_quantity=Decimal(filled),
        version=version,
        created_at=now,
        updated_at=now,
    )
    return OrderUpdated(correlation_id="sig-1", producer="order", order=view)


def position_changed(spec: OrderSpec, view: PositionView, fill_id: str) -> PositionChanged:
    return PositionChanged(
        correlation_id="sig-1",
        producer="order",
        position=view,
        order_id=spec.order_id,
        fill_id=fill_id,
    )


def only(messages: list[Message], kind: type[Message]) -> list[Any]:
    return [message for message in messages if isinstance(message, kind)]


# -- decisions -----------------------------------------------------------------------------------


async def test_a_proposal_under_the_limits_is_approved_reserved_and_audited(
    risk: ServiceKit,
) -> None:
    buy = order("buy", "2")
    asked = proposal(buy)

    async with running(risk) as ordo:
        await ordo.send(asked)

    [approved] = await published(risk)
    assert isinstance(approved, OrderApproved)
    assert (approved.proposal_id, approved.orders) == (asked.proposal_id, (buy,))
    assert (approved.correlation_id, approved.causation_id) == ("sig-1", asked.message_id)
    assert await reserved(risk) == {buy.order_id: Decimal(2)}
    [decision] = await rows(risk, store.decisions)
    assert decision["decision_id"] == approved.message_id
    assert decision["approved"] is True
    assert decision["reasons"] == []
    assert OrderProposed.model_validate(decision["proposal"]) == asked
    assert decision["exposure"] == {"account": ACCOUNT, "positions": [], "reservations": []}
    assert decision["limits"]["max_notional_per_order"] == "1000"


async def test_an_order_over_the_notional_limit_is_denied_with_the_numbers(
    risk: ServiceKit,
) -> None:
    big = order("buy", "15", price="100")
    asked = proposal(big)

    async with running(risk) as ordo:
        await ordo.send(asked)

    [denied] = await published(risk)
    assert isinstance(denied, OrderDenied)
    assert denied.order_ids == (big.order_id,)
    [reason] = [r for r in denied.reasons if r.code == "MAX_NOTIONAL_PER_ORDER"]
    assert (reason.limit, reason.actual, reason.order_id) == (
        Decimal(1000),
        Decimal(1500),
        big.order_id,
    )
    assert await reserved(risk) == {}
    [decision] = await rows(risk, store.decisions)
    assert decision["approved"] is False
    assert "MAX_NOTIONAL_PER_ORDER" in {r["code"] for r in decision["reasons"]}


async def test_the_second_of_two_proposals_that_together_pass_the_position_limit_is_denied(
    risk: ServiceKit,
) -> None:
    first, second = order("buy", "3"), order("buy", "3")

    async with running(risk) as ordo:
        await ordo.send(proposal(first), proposal(second))

    approved, denied = await published(risk)
    assert isinstance(approved, OrderApproved)
    assert isinstance(denied, OrderDenied)
    [reason] = denied.reasons
    assert (reason.code, reason.limit, reason.actual) == (
        "MAX_POSITION_QUANTITY",
        Decimal(5),
        Decimal(6),
    )
    assert await reserved(risk) == {first.order_id: Decimal(3)}
    second_decision = (await rows(risk, store.decisions))[1]
    assert [r["order_id"] for r in second_decision["exposure"]["reservations"]] == [first.order_id]


async def test_a_proposal_sent_again_is_decided_once(risk: ServiceKit) -> None:
    asked = proposal(order("buy", "1"))
    again = asked.model_copy(update={"message_id": "another-delivery"})

    async with running(risk) as ordo:
        await ordo.send(asked, again)

    assert len(await published(risk)) == 1
    assert len(await rows(risk, store.decisions)) == 1


# -- trading state -------------------------------------------------------------------------------


async def test_a_halted_account_denies_every_proposal_and_announces_the_halt(
    risk: ServiceKit,
) -> None:
    async with running(risk) as ordo:
        await ordo.send(set_state(TradingState.HALTED), proposal(order("buy", "1")))

    changed, denied = await published(risk)
    assert isinstance(changed, TradingStateChanged)
    assert (changed.account, changed.state, changed.previous) == (
        ACCOUNT,
        TradingState.HALTED,
        TradingState.ACTIVE,
    )
    assert (changed.reason, changed.actor) == ("venue outage", "alice")
    assert isinstance(denied, OrderDenied)
    assert [r.code for r in denied.reasons] == ["TRADING_HALTED"]
    [audit] = await rows(risk, store.state_changes)
    assert (audit["from_state"], audit["to_state"], audit["outcome"], audit["actor"]) == (
        "active",
        "halted",
        "applied",
        "alice",
    )


async def test_resuming_a_halted_account_approves_again(risk: ServiceKit) -> None:
    async with running(risk) as ordo:
        await ordo.send(
            set_state(TradingState.HALTED),
            set_state(TradingState.ACTIVE, reason="outage over"),
            proposal(order("buy", "1")),
        )

    _halted, resumed, approved = await published(risk)
    assert isinstance(resumed, TradingStateChanged)
    assert (resumed.state, resumed.previous) == (TradingState.ACTIVE, TradingState.HALTED)
    assert isinstance(approved, OrderApproved)
    [account] = await rows(risk, store.trading_states)
    assert (account["state"], account["reason"], account["version"]) == ("active", "outage over", 3)


async def test_asking_for_the_current_state_or_without_a_reason_is_audited_not_announced(
    risk: ServiceKit,
) -> None:
    async with running(risk) as ordo:
        await ordo.send(set_state(TradingState.ACTIVE), set_state(TradingState.HALTED, reason=" "))

    assert await published(risk) == []
    audits = await rows(risk, store.state_changes)
    assert [(a["to_state"], a["outcome"]) for a in audits] == [
        ("active", "unchanged"),
        ("halted", "refused"),
    ]
    [account] = await rows(risk, store.trading_states)
    assert account["state"] == "active"


# -- reservations end with their orders ----------------------------------------------------------


async def test_a_filled_order_releases_its_reservation_once_its_position_arrives(
    risk: ServiceKit,
) -> None:
    buy = order("buy", "2")
    async with running(risk) as ordo:
        await ordo.send(proposal(buy))
        await ordo.send(order_updated(buy, status=OrderStatus.FILLED, filled="2", version=3))
        # The order says filled, the position does not hold it yet: the fill still counts here.
        assert await reserved(risk) == {buy.order_id: Decimal(2)}

        await ordo.send(position_changed(buy, position("2", version=1), "f-1"))

    assert await reserved(risk) == {}
    [held] = await rows(risk, store.positions)
    assert (held["quantity"], held["version"]) == (Decimal(2), 1)


async def test_a_fill_seen_in_the_position_first_counts_twice_until_the_order_update(
    risk: ServiceKit,
) -> None:
    buy = order("buy", "2")
    async with running(risk) as ordo:
        await ordo.send(proposal(buy))
        await ordo.send(position_changed(buy, position("1", version=1), "f-1"))
        assert await reserved(risk) == {buy.order_id: Decimal(2)}  # conservative, briefly

        await ordo.send(
            order_updated(buy, status=OrderStatus.PARTIALLY_FILLED, filled="1", version=3)
        )
        assert await reserved(risk) == {buy.order_id: Decimal(1)}

        await ordo.send(order_updated(buy, status=OrderStatus.CANCELED, filled="1", version=4))

    assert await reserved(risk) == {}


async def test_an_unfilled_canceled_order_releases_its_reservation_at_once(
    risk: ServiceKit,
) -> None:
    buy = order("buy", "3")
    async with running(risk) as ordo:
        await ordo.send(proposal(buy))
        await ordo.send(order_updated(buy, status=OrderStatus.CANCELED, filled="0", version=2))
        # The room is free again: a new 3 fits under the limit of 5 with nothing held.
        await ordo.send(proposal(order("buy", "3")))

    assert only(await published(risk), OrderDenied) == []


async def test_an_older_order_update_changes_nothing(risk: ServiceKit) -> None:
    buy = order("buy", "4")
    async with running(risk) as ordo:
        await ordo.send(proposal(buy))
        await ordo.send(position_changed(buy, position("3", version=1), "f-1"))
        await ordo.send(
            order_updated(buy, status=OrderStatus.PARTIALLY_FILLED, filled="3", version=5)
        )
        await ordo.send(
            order_updated(buy, status=OrderStatus.PARTIALLY_FILLED, filled="1", version=4)
        )

    assert await reserved(risk) == {buy.order_id: Decimal(1)}


async def test_a_skipped_position_version_leaves_the_reservation_to_the_order_updates(
    risk: ServiceKit,
) -> None:
    buy = order("buy", "4")
    async with running(risk) as ordo:
        await ordo.send(proposal(buy))
        await ordo.send(
            order_updated(buy, status=OrderStatus.PARTIALLY_FILLED, filled="3", version=3)
        )
        # Version 2 is still on its way: version 3's change cannot be split between fills.
        await ordo.send(position_changed(buy, position("3", version=3), "f-2"))
        assert await reserved(risk) == {buy.order_id: Decimal(1)}
        await ordo.send(position_changed(buy, position("1", version=2), "f-1"))  # late: ignored

    [held] = await rows(risk, store.positions)
    assert (held["quantity"], held["version"]) == (Decimal(3), 3)
    assert await reserved(risk) == {buy.order_id: Decimal(1)}


async def test_held_positions_count_against_the_limits(risk: ServiceKit) -> None:
    earlier = order("buy", "1")
    async with running(risk) as ordo:
        await ordo.send(position_changed(earlier, position("4", version=1), "f-1"))
        await ordo.send(proposal(order("buy", "2")))

    [denied] = await published(risk)
    assert isinstance(denied, OrderDenied)
    assert [(r.code, r.actual) for r in denied.reasons] == [("MAX_POSITION_QUANTITY", Decimal(6))]


# -- restarts ------------------------------------------------------------------------------------


async def test_state_and_reservations_survive_a_new_service_on_the_same_database(
    risk: ServiceKit, database: Path
) -> None:
    async with running(risk) as ordo:
        await ordo.send(proposal(order("buy", "3")), set_state(TradingState.REDUCING, "drawdown"))
    await risk.db.close()

    restarted = build(settings_for(database), telemetry=False)
    try:
        async with running(restarted) as ordo:
            # Reducing takes sells that shrink the position; 3 bought counts as held in the worst
            # case, so a buy is refused and the reservation still counts against the limits.
            await ordo.send(proposal(order("buy", "1")), set_state(TradingState.ACTIVE, "ok"))
            await ordo.send(proposal(order("buy", "3")))
        messages = await published(restarted)
    finally:
        await restarted.db.close()

    reducing_denial, resumed, limit_denial = messages[2:]
    assert [r.code for r in reducing_denial.reasons] == ["TRADING_REDUCING"]
    assert isinstance(resumed, TradingStateChanged)
    assert resumed.previous is TradingState.REDUCING
    assert [r.code for r in limit_denial.reasons] == ["MAX_POSITION_QUANTITY"]


# -- concurrency, on SQLite and PostgreSQL -------------------------------------------------------


@pytest.fixture
def handlers() -> RiskHandlers:
    return RiskHandlers(LIMITS)


@pytest.fixture
async def migrated(database_url: str) -> AsyncIterator[Database]:
    await upgrade_async("risk", database_url)
    db = Database(database_url)
    yield db
    await db.close()


async def decide(db: Database, handlers: RiskHandlers, asked: OrderProposed) -> None:
    async with db.session() as session:
        await handlers.order_proposed(asked, Transaction(session))
        await session.commit()


async def lock_is_contended(db: Database) -> bool:
    """PostgreSQL: a transaction waits for a lock. SQLite: the single write lock is taken."""
    if db.is_sqlite:
        return await asyncio.to_thread(_sqlite_write_lock_taken, str(db.engine.url.database))
    async with db.session() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


def _sqlite_write_lock_taken(path: str) -> bool:
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    finally:
        connection.close()
    return False


@pytest.fixture
def decisions_overlap(migrated: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the first decision right after it has read the exposure, until the second one has
    read its own too (nothing serialises them: both decide on the same room) or is held back by
    the account lock. Without this the two could simply happen to run one after the other."""
    read_exposure = store.load_exposure
    readers: list[str] = []
    second_has_read = asyncio.Event()

    async def load_exposure(session: AsyncSession, account: str) -> Exposure:
        exposure = await read_exposure(session, account)
        readers.append(account)
        if len(readers) > 1:
            second_has_read.set()
            return exposure

        async def second_read_or_locked_out() -> bool:
            return second_has_read.is_set() or await lock_is_contended(migrated)

        await eventually(second_read_or_locked_out, what="the second decision to overlap")
        return exposure

    monkeypatch.setattr(store, "load_exposure", load_exposure)


@pytest.mark.parametrize("account_known", [False, True], ids=["new-account", "known-account"])
async def test_two_concurrent_proposals_cannot_both_use_the_same_room(
    migrated: Database, handlers: RiskHandlers, account_known: bool, request: pytest.FixtureRequest
) -> None:
    if account_known:
        await decide(migrated, handlers, proposal(order("buy", "1")))
    request.getfixturevalue("decisions_overlap")
    # Each fits under the position limit of 5 alone (with the 1 above too); not both together.
    first, second = proposal(order("buy", "3")), proposal(order("buy", "3"))

    await asyncio.gather(decide(migrated, handlers, first), decide(migrated, handlers, second))

    async with migrated.session() as session:
        found = (await session.execute(select(store.decisions))).all()
        held = (await session.execute(select(store.reservations.c.remaining))).scalars().all()
    verdicts = {row.proposal_id: row.approved for row in found}
    assert sorted([verdicts[first.proposal_id], verdicts[second.proposal_id]]) == [False, True]
    assert sum(held, Decimal(0)) <= Decimal(5)


def test_decimals_in_the_audit_are_exact_strings() -> None:
    exposure = Exposure(ACCOUNT)
    exposure.apply_position(position("0.30000000000000004", version=2))
    exposure.reserve(order("sell", "0.1", order_id="o-x"), remaining=Decimal("0.05"))

    snapshot = json.loads(json.dumps(store.exposure_snapshot(exposure)))

    assert snapshot["positions"][0]["quantity"] == "0.30000000000000004"
    assert snapshot["reservations"][0]["remaining"] == "0.05"


def test_the_audit_leaves_out_flat_positions() -> None:
    # The projection keeps every position ever held; a flat one counts towards no limit.
    exposure = Exposure(ACCOUNT)
    exposure.apply_position(position("0", strategy="closed-long-ago", version=7))
    exposure.apply_position(position("2", strategy="trend"))

    snapshot = store.exposure_snapshot(exposure)

    assert [held["strategy"] for held in snapshot["positions"]] == ["trend"]


# -- housekeeping --------------------------------------------------------------------------------


async def test_decisions_and_state_changes_past_the_retention_are_pruned(risk: ServiceKit) -> None:
    long_ago = utc_now() - timedelta(days=AUDIT_RETENTION_DAYS + 1)
    back_then = RiskHandlers(LIMITS, clock=lambda: long_ago)
    async with risk.db.session() as session:
        await back_then.order_proposed(proposal(order("buy", "1")), Transaction(session))
        await back_then.set_trading_state(set_state(TradingState.HALTED), Transaction(session))
        await session.commit()
    recent = proposal(order("buy", "1"))
    async with running(risk) as ordo:
        await ordo.send(recent)

    [prune] = [job for name, _, job in risk._periodic if name == "audit-pruner"]
    await prune()

    [kept] = await rows(risk, store.decisions)
    assert kept["proposal_id"] == recent.proposal_id
    assert await rows(risk, store.state_changes) == []
    [account] = await rows(risk, store.trading_states)
    assert account["state"] == "halted"  # the state itself is never pruned
