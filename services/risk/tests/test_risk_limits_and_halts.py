"""Governing the risk gate at run time, on FastStream's in-memory broker and an SQLite file:
limits changed by an operator command, automatic halts on critical reconciliation mismatches,
and the audit's queries.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from faststream.nats import TestNatsBroker
from risk_factories import ACCOUNT, order, proposal
from sqlalchemy import select, update

from ordo.contracts.enums import DiscrepancyKind, Severity, TradingState
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.reconciliation import DiscrepancyFound
from ordo.contracts.risk import (
    LimitValue,
    OrderApproved,
    OrderDenied,
    QueryRiskAudit,
    QueryRiskDecisions,
    QueryRiskLimits,
    SetRiskLimits,
    SetTradingState,
    TradingStateChanged,
)
from ordo.contracts.subjects import STREAM_OF_SUBJECT, subject_of
from ordo.contracts.types import utc_now
from ordo.kit.service import ServiceKit
from ordo.risk import store
from ordo.risk.app import build
from ordo.risk.audit import RiskQueries
from ordo.risk.config import RiskSettings
from ordo.risk.domain.limits import AccountLimits, RiskLimits
from ordo.risk.governance import check_stored_limits, with_overrides

# A BTC order of 1 at the factories' reference price of 100 is worth 100.
LIMITS = AccountLimits(
    default=RiskLimits(max_notional_per_order=Decimal(1000), max_open_positions=3),
    accounts={"capped": RiskLimits(max_notional_per_order=Decimal(200))},
)


def settings_for(database: Path) -> RiskSettings:
    return RiskSettings(database_url=f"sqlite+aiosqlite:///{database}", limits=LIMITS)


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
    types: dict[str, type[Message]] = {
        "risk.approved.v1": OrderApproved,
        "risk.denied.v1": OrderDenied,
        "risk.state.v1": TradingStateChanged,
    }
    outbox = store.messaging.outbox
    async with kit.db.session() as session:
        found = (await session.execute(select(outbox).order_by(outbox.c.seq))).all()
    return [types[row.subject].from_json(row.payload) for row in found]


async def rows(kit: ServiceKit, table: Any) -> list[dict[str, Any]]:
    async with kit.db.session() as session:
        return [dict(row._mapping) for row in (await session.execute(select(table))).all()]


def set_limits(
    account: str | None = ACCOUNT,
    *,
    reset: tuple[str, ...] = (),
    reason: str = "desk decision",
    **changes: LimitValue,
) -> SetRiskLimits:
    return SetRiskLimits(
        correlation_id=new_message_id(),
        producer="operator",
        account=account,
        changes=changes,
        reset=reset,
        reason=reason,
        operator="alice",
    )


def discrepancy(severity: Severity, account: str = ACCOUNT) -> DiscrepancyFound:
    return DiscrepancyFound(
        correlation_id="run-1",
        producer="reconciler",
        run_id="run-1",
        account=account,
        venue="paper",
        kind=DiscrepancyKind.POSITION_MISMATCH,
        severity=severity,
        symbol="BTC/USDT",
        venue_value=Decimal("2"),
        oms_value=Decimal("1"),
        detail="the venue holds 2, the OMS 1",
    )


def verdicts(messages: list[Message]) -> list[str]:
    return [
        "approved" if isinstance(m, OrderApproved) else "denied"
        for m in messages
        if isinstance(m, OrderApproved | OrderDenied)
    ]


# -- run-time limits -----------------------------------------------------------------------------


async def test_a_lower_limit_set_at_run_time_denies_the_next_proposal_and_is_audited(
    risk: ServiceKit,
) -> None:
    async with running(risk) as ordo:
        await ordo.send(proposal(order("buy", "5")))  # 500: under the configured 1000
        await ordo.send(set_limits(max_notional_per_order="400", reason="volatile market"))
        await ordo.send(proposal(order("buy", "5")))

    first, second = [m for m in await published(risk)]
    assert isinstance(first, OrderApproved)
    assert isinstance(second, OrderDenied)
    [reason] = second.reasons
    assert (reason.code, reason.limit, reason.actual) == (
        "MAX_NOTIONAL_PER_ORDER",
        Decimal(400),
        Decimal(500),
    )
    [change] = await rows(risk, store.limit_changes)
    assert (change["scope"], change["outcome"], change["actor"], change["reason"]) == (
        ACCOUNT,
        "applied",
        "alice",
        "volatile market",
    )
    assert (change["before"], change["after"]) == ({}, {"max_notional_per_order": "400"})


async def test_a_limit_reset_falls_back_to_the_configured_one(risk: ServiceKit) -> None:
    async with running(risk) as ordo:
        await ordo.send(set_limits(max_notional_per_order="400", max_open_positions=1))
        await ordo.send(set_limits(reset=("max_notional_per_order",)))
        await ordo.send(proposal(order("buy", "5")))

    assert verdicts(await published(risk)) == ["approved"]
    [overrides] = await rows(risk, store.limit_overrides)
    assert overrides["limits"] == {"max_open_positions": 1}


async def test_a_limit_set_to_null_is_lifted_for_the_account(risk: ServiceKit) -> None:
    async with running(risk) as ordo:
        await ordo.send(set_limits(max_notional_per_order=None))
        await ordo.send(proposal(order("buy", "50")))  # 5000: five times the configured limit

    assert verdicts(await published(risk)) == ["approved"]


async def test_the_default_changes_every_account_without_a_limit_of_its_own(
    risk: ServiceKit,
) -> None:
    async with running(risk) as ordo:
        await ordo.send(set_limits(None, max_notional_per_order="150"))
        # 180: over the new default; "capped" has its own configured 200, which still applies.
        await ordo.send(proposal(order("buy", "1.8")))
        await ordo.send(proposal(order("buy", "1.8", account="capped"), account="capped"))

    assert verdicts(await published(risk)) == ["denied", "approved"]


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"max_notional_per_orders": "1"}, "max_notional_per_orders: Extra inputs"),
        ({"max_notional_per_order": "-5"}, "must be greater than zero"),
        ({"max_open_positions": "2.5"}, "max_open_positions"),
    ],
    ids=["unknown-limit", "negative", "not-a-count"],
)
async def test_a_bad_limit_is_refused_audited_and_changes_nothing(
    risk: ServiceKit, changes: dict[str, LimitValue], complaint: str
) -> None:
    async with running(risk) as ordo:
        await ordo.send(set_limits(**changes))
        await ordo.send(proposal(order("buy", "5")))

    assert verdicts(await published(risk)) == ["approved"]
    [change] = await rows(risk, store.limit_changes)
    assert change["outcome"] == "refused"
    assert complaint in change["error"]
    assert change["after"] == change["before"] == {}


@pytest.mark.parametrize(
    ("command", "complaint"),
    [
        (set_limits(), "names no limit"),
        (set_limits(reset=("max_open_positions",), max_open_positions=2), "not both"),
    ],
    ids=["nothing", "set-and-reset"],
)
async def test_a_request_that_changes_nothing_clearly_is_refused(
    risk: ServiceKit, command: SetRiskLimits, complaint: str
) -> None:
    async with running(risk) as ordo:
        await ordo.send(command)

    [change] = await rows(risk, store.limit_changes)
    assert (change["outcome"], change["after"]) == ("refused", {})
    assert complaint in change["error"]


async def test_a_limit_that_needs_a_companion_is_refused_without_it(risk: ServiceKit) -> None:
    companion_needed = "max_leverage" in RiskLimits.model_fields
    if not companion_needed:
        pytest.skip("these limits have no companion rules")
    async with running(risk) as ordo:
        await ordo.send(set_limits(max_leverage="3"))

    [change] = await rows(risk, store.limit_changes)
    assert change["outcome"] == "refused"
    assert "starting_capital" in change["error"]


async def test_a_limit_changed_through_one_replica_applies_on_another_at_once(
    risk: ServiceKit, database: Path
) -> None:
    other = build(settings_for(database), telemetry=False)
    try:
        async with running(risk) as first, running(other) as second:
            await second.send(proposal(order("buy", "5")))
            await first.send(set_limits(max_notional_per_order="100"))
            await second.send(proposal(order("buy", "5")))
        assert verdicts(await published(other)) == ["approved", "denied"]
    finally:
        await other.db.close()


# -- automatic halts -----------------------------------------------------------------------------


async def test_a_critical_reconciliation_mismatch_halts_the_account_and_raises_the_alert(
    risk: ServiceKit,
) -> None:
    found = discrepancy(Severity.CRITICAL)
    async with running(risk) as ordo:
        await ordo.send(found)
        await ordo.send(proposal(order("buy", "1")))

    changed, denied = await published(risk)
    assert isinstance(changed, TradingStateChanged)
    assert (changed.account, changed.state, changed.previous, changed.actor) == (
        ACCOUNT,
        TradingState.HALTED,
        TradingState.ACTIVE,
        "risk",
    )
    assert "critical reconciliation mismatch (position_mismatch)" in changed.reason
    assert "BTC/USDT at paper" in changed.reason
    assert changed.causation_id == found.message_id
    assert isinstance(denied, OrderDenied)
    assert [r.code for r in denied.reasons] == ["TRADING_HALTED"]
    [audit] = await rows(risk, store.state_changes)
    assert (audit["to_state"], audit["outcome"], audit["command_id"]) == (
        "halted",
        "applied",
        found.message_id,
    )


async def test_a_warning_mismatch_changes_nothing(risk: ServiceKit) -> None:
    async with running(risk) as ordo:
        await ordo.send(discrepancy(Severity.WARNING), proposal(order("buy", "1")))

    assert verdicts(await published(risk)) == ["approved"]
    assert await rows(risk, store.state_changes) == []


async def test_a_mismatch_on_a_halted_account_is_audited_but_announces_nothing(
    risk: ServiceKit,
) -> None:
    halt = SetTradingState(
        correlation_id="ops-1",
        producer="operator",
        account=ACCOUNT,
        state=TradingState.HALTED,
        reason="maintenance",
        operator="alice",
    )
    async with running(risk) as ordo:
        await ordo.send(halt, discrepancy(Severity.CRITICAL))

    [announced] = await published(risk)
    assert announced.causation_id == halt.message_id
    outcomes = [(a["actor"], a["outcome"]) for a in await rows(risk, store.state_changes)]
    assert outcomes == [("alice", "applied"), ("risk", "unchanged")]
    [account] = await rows(risk, store.trading_states)
    assert account["reason"] == "maintenance"  # the operator's halt stays the account's reason


# -- the audit, asked ----------------------------------------------------------------------------


def ask_decisions(**filters: Any) -> QueryRiskDecisions:
    return QueryRiskDecisions(correlation_id="q-1", producer="operator", **filters)


async def test_decisions_are_found_by_order_proposal_signal_account_and_time(
    risk: ServiceKit,
) -> None:
    buy, big = order("buy", "1"), order("buy", "50")
    small_one, big_one = proposal(buy), proposal(big)
    elsewhere = proposal(order("buy", "1", account="other"), account="other")
    async with running(risk) as ordo:
        await ordo.send(small_one, big_one, elsewhere)
    queries = RiskQueries(risk.db, LIMITS)

    [by_order] = (await queries.decisions(ask_decisions(order_id=big.order_id))).decisions
    assert (by_order.proposal_id, by_order.approved) == (big_one.proposal_id, False)
    assert [r.code for r in by_order.reasons] == ["MAX_NOTIONAL_PER_ORDER"]
    assert by_order.orders == (big,)
    assert by_order.limits["max_notional_per_order"] == "1000"
    assert by_order.exposure["reservations"][0]["order_id"] == buy.order_id
    assert by_order.trading_state is TradingState.ACTIVE
    assert "today" in by_order.inputs  # and the rest it read

    view = await queries.decisions(ask_decisions(proposal_id=small_one.proposal_id))
    assert [d.orders for d in view.decisions] == [(buy,)]
    mine = await queries.decisions(ask_decisions(account=ACCOUNT))
    assert [d.proposal_id for d in mine.decisions] == [big_one.proposal_id, small_one.proposal_id]
    assert len((await queries.decisions(ask_decisions(signal_id="sig-1"))).decisions) == 3
    later = utc_now() + timedelta(seconds=1)
    assert (await queries.decisions(ask_decisions(since=later))).decisions == ()
    assert len((await queries.decisions(ask_decisions(until=later, limit=2))).decisions) == 2


async def test_the_audit_lists_state_and_limit_changes_of_the_account_and_the_default(
    risk: ServiceKit,
) -> None:
    async with running(risk) as ordo:
        await ordo.send(
            set_limits(max_open_positions=2),
            set_limits(None, max_open_positions=5, reason="more room for all"),
            set_limits("other", max_open_positions=1),
            discrepancy(Severity.CRITICAL),
        )
    query = QueryRiskAudit(correlation_id="q-1", producer="operator", account=ACCOUNT)

    view = await RiskQueries(risk.db, LIMITS).audit(query)

    assert [(c.account, c.after) for c in view.limit_changes] == [
        (None, {"max_open_positions": 5}),
        (ACCOUNT, {"max_open_positions": 2}),
    ]
    [halted] = view.state_changes
    assert (halted.to_state, halted.actor) == (TradingState.HALTED, "risk")


async def test_the_limits_view_shows_what_is_in_force_and_where_it_comes_from(
    risk: ServiceKit,
) -> None:
    async with running(risk) as ordo:
        await ordo.send(set_limits("capped", max_open_positions=1))
    query = QueryRiskLimits(correlation_id="q-1", producer="operator", account="capped")

    view = await RiskQueries(risk.db, LIMITS).limits(query)

    assert view.configured["max_notional_per_order"] == "200"
    assert view.configured["max_open_positions"] == 3
    assert view.overrides == {"max_open_positions": 1}
    assert (view.effective["max_notional_per_order"], view.effective["max_open_positions"]) == (
        "200",
        1,
    )
    assert view.trading_state is TradingState.ACTIVE


async def test_stored_limits_that_no_longer_fit_the_configuration_are_named(
    risk: ServiceKit,
) -> None:
    async with running(risk) as ordo:
        await ordo.send(set_limits(max_open_positions=2), set_limits("other", max_open_positions=1))
    async with risk.db.session() as session:
        # As if a limit had been renamed in the code since it was set.
        await session.execute(
            update(store.limit_overrides)
            .where(store.limit_overrides.c.scope == "other")
            .values(limits={"max_open_posiitons": 1})
        )
        await session.commit()
        problems = await check_stored_limits(session, LIMITS)

    [problem] = problems
    assert problem.startswith("other: ") and "max_open_posiitons" in problem


def test_overrides_never_change_the_configured_limits() -> None:
    in_force = with_overrides(LIMITS, {"*": {"max_open_positions": 9}, "new": {}})

    assert in_force.limits_for("new").max_open_positions == 9
    assert LIMITS.default.max_open_positions == 3
    assert with_overrides(LIMITS, {}) is LIMITS
