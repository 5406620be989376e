"""Storm control against a real webhook receiver: rate limits, digests of bursts, repeats told
once, outages waited out. Nothing is lost: every event is sent, or carried by a digest."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from notifier_peers import Answer, HttpPeer, http_peer
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from ordo.contracts.enums import Severity
from ordo.contracts.types import utc_now
from ordo.kit.breaker import Breakers
from ordo.kit.settings import BreakerSettings
from ordo.kit.store import Database
from ordo.notifier import store
from ordo.notifier.channels import AttachmentSupport, WebhookChannel
from ordo.notifier.dispatcher import Dispatcher
from ordo.notifier.domain.notifications import EventKind, Notification
from ordo.notifier.handlers import Notifications

WINDOW = timedelta(minutes=15)


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}")
    await database.create_all(store.metadata)
    yield database
    await database.close()


@pytest.fixture
async def receiver() -> AsyncIterator[HttpPeer]:
    async with http_peer() as peer:
        yield peer


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def dispatcher(
    db: Database,
    receiver: HttpPeer,
    client: httpx.AsyncClient,
    clock: Clock,
    *,
    rate_limit: int,
    breaker_threshold: int = 1000,
) -> Dispatcher:
    breakers = Breakers(
        BreakerSettings(failure_threshold=breaker_threshold), registry=CollectorRegistry()
    )
    await breakers.start()
    channel = WebhookChannel(f"{receiver.url}/hook/T0/B0", client, timeout_seconds=5)
    return Dispatcher(
        db,
        {"webhook": channel},
        breakers,
        rate_limits={"webhook": rate_limit},
        give_up_after=timedelta(hours=24),
        retention=timedelta(days=7),
        digest_max_lines=5,
        clock=clock,
    )


def notifications(clock: Clock) -> Notifications:
    return Notifications({"webhook": AttachmentSupport.NONE}, {}, dedupe_window=WINDOW, clock=clock)


def fill(n: int) -> Notification:
    return Notification(
        EventKind.FILL, Severity.INFO, f"Filled: BUY 0.{n} BTC/USDT", "", topic=f"fill:{n}"
    )


def halt() -> Notification:
    return Notification(
        EventKind.TRADING_STATE,
        Severity.CRITICAL,
        "Account main: active → halted",
        "daily loss limit (by risk)",
        topic="trading-state:main",
    )


async def record(db: Database, clock: Clock, *events: tuple[str, Notification]) -> None:
    router = notifications(clock)
    async with db.session() as session:
        for message_id, notification in events:
            await router.record(session, message_id, notification)
        await session.commit()


async def statuses(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(
            select(store.deliveries.c.status, func.count()).group_by(store.deliveries.c.status)
        )
        return {status: count for status, count in rows.all()}


def texts(receiver: HttpPeer) -> list[str]:
    return [request.json()["content"] for request in receiver.received]


async def test_a_burst_of_1000_events_reaches_the_webhook_as_one_digest(
    db: Database, receiver: HttpPeer, client: httpx.AsyncClient, clock: Clock
) -> None:
    burst = [(f"m-{n}", fill(n)) for n in range(999)]
    await record(db, clock, *burst[:500], ("m-halt", halt()), *burst[500:])
    sender = await dispatcher(db, receiver, client, clock, rate_limit=20)

    assert await sender.dispatch_due() == 1

    [digest] = receiver.received
    payload: dict[str, Any] = digest.json()
    assert payload["severity"] == "critical"
    lines = payload["content"].split("\n")
    assert lines[:4] == [
        "Digest of 1000 notifications (the channel's rate limit held them back)",
        "1 critical · 999 info",
        "fill 999 · trading state 1",
        "• [critical] Account main: active → halted",  # the worst first, wherever it came
    ]
    assert lines[4:8] == [f"• Filled: BUY 0.{n} BTC/USDT" for n in range(4)]
    assert lines[-1] == "… and 995 more: the notifier's delivery log keeps every one"
    # Nothing lost: every event is carried by the digest that went out.
    assert await statuses(db) == {"grouped": 1000, "sent": 1}
    assert await sender.dispatch_due() == 0


async def test_a_burst_within_the_rate_limit_goes_out_one_by_one(
    db: Database, receiver: HttpPeer, client: httpx.AsyncClient, clock: Clock
) -> None:
    await record(db, clock, *((f"m-{n}", fill(n)) for n in range(5)))
    sender = await dispatcher(db, receiver, client, clock, rate_limit=5)

    assert await sender.dispatch_due() == 5

    assert texts(receiver) == [f"Filled: BUY 0.{n} BTC/USDT" for n in range(5)]


async def test_what_comes_after_the_minutes_limit_waits_for_the_next_minute(
    db: Database, receiver: HttpPeer, client: httpx.AsyncClient, clock: Clock
) -> None:
    sender = await dispatcher(db, receiver, client, clock, rate_limit=3)
    await record(db, clock, *((f"m-{n}", fill(n)) for n in range(3)))
    assert await sender.dispatch_due() == 3

    await record(db, clock, ("m-3", fill(3)), ("m-4", fill(4)))
    assert await sender.dispatch_due() == 0  # the minute's three are spent

    clock.now += timedelta(seconds=61)
    assert await sender.dispatch_due() == 2
    assert len(receiver.received) == 5


async def test_a_repeat_on_the_same_topic_is_told_once_within_the_window(
    db: Database, receiver: HttpPeer, client: httpx.AsyncClient, clock: Clock
) -> None:
    # A discrepancy that persists is found again on every reconciliation run.
    found = Notification(
        EventKind.DISCREPANCY,
        Severity.CRITICAL,
        "Reconciliation critical: position mismatch (main/paper BTC/USDT)",
        "venue 0.5 · OMS 0.4",
        topic="discrepancy:main:paper:position_mismatch:BTC/USDT",
    )
    await record(db, clock, *((f"run-{n}", found) for n in range(200)))
    sender = await dispatcher(db, receiver, client, clock, rate_limit=20)

    assert await sender.dispatch_due() == 1
    assert await statuses(db) == {"sent": 1, "suppressed": 199}

    clock.now += WINDOW + timedelta(seconds=1)  # still there after the window: a reminder
    await record(db, clock, ("run-200", found))
    assert await sender.dispatch_due() == 1
    assert len(receiver.received) == 2


async def test_a_change_on_a_topic_is_always_told(
    db: Database, receiver: HttpPeer, client: httpx.AsyncClient, clock: Clock
) -> None:
    def breaker(state: str) -> Notification:
        return Notification(
            EventKind.BREAKER,
            Severity.CRITICAL,
            f"Venue paper (main): breaker {state}",
            "",
            topic="breaker:paper:main",
        )

    flapping = [("open", "m-1"), ("closed", "m-2"), ("open", "m-3"), ("open", "m-4")]
    await record(db, clock, *((message_id, breaker(state)) for state, message_id in flapping))
    sender = await dispatcher(db, receiver, client, clock, rate_limit=20)

    await sender.dispatch_due()

    # Open, closed, open again: each is news; the second "open" in a row is not.
    assert texts(receiver) == [
        "Venue paper (main): breaker open",
        "Venue paper (main): breaker closed",
        "Venue paper (main): breaker open",
    ]


async def test_a_digest_waits_out_an_outage_and_carries_what_came_meanwhile(
    db: Database, receiver: HttpPeer, client: httpx.AsyncClient, clock: Clock
) -> None:
    sender = await dispatcher(db, receiver, client, clock, rate_limit=10)
    receiver.answer = Answer(status=503)
    await record(db, clock, *((f"m-{n}", fill(n)) for n in range(50)))

    assert await sender.dispatch_due() == 0
    assert len(receiver.refused) == 1  # one digest tried, not fifty messages

    await receiver.stop()  # down hard: connections refused
    await record(db, clock, *((f"m-{n}", fill(n)) for n in range(50, 80)))
    clock.now += timedelta(minutes=10)
    assert await sender.dispatch_due() == 0

    await receiver.start()
    receiver.answer = Answer()
    clock.now += timedelta(minutes=10)
    assert await sender.dispatch_due() == 1

    [digest] = texts(receiver)
    assert digest.startswith("Digest of 80 notifications")
    assert await statuses(db) == {"grouped": 80, "sent": 1}
