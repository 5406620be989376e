"""The delivery log and its channels: nothing lost while a channel is down, nothing sent twice,
finished deliveries pruned, the webhook's answers told apart, texts that read well on a phone."""

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from sqlalchemy import select, update

from ordo.contracts.enums import (
    BreakerState,
    DiscrepancyKind,
    ExecutionStatus,
    Severity,
    Side,
)
from ordo.contracts.execution import ExecutionReport, Fill, VenueStatusChanged
from ordo.contracts.reconciliation import DiscrepancyFound
from ordo.contracts.types import utc_now
from ordo.kit.breaker import Breakers
from ordo.kit.settings import BreakerSettings
from ordo.kit.store import Database
from ordo.notifier import store
from ordo.notifier.channels import (
    AttachmentSupport,
    ChannelRejected,
    ChannelUnavailable,
    Outgoing,
    WebhookChannel,
    configured_channels,
    retry_after,
)
from ordo.notifier.config import NotifierSettings
from ordo.notifier.dispatcher import Dispatcher
from ordo.notifier.domain.notifications import (
    EventKind,
    Notification,
    amount,
    for_discrepancy,
    for_execution_report,
    for_venue_status,
)

HOOK = "https://hooks.example.com/T000/B000"
GIVE_UP_AFTER = timedelta(hours=24)
RETENTION = timedelta(days=7)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingChannel:
    """Sends nothing; remembers what it was given, or fails as told."""

    name: str = "log"
    attachments: AttachmentSupport = AttachmentSupport.NONE
    sent: list[str] = field(default_factory=list)
    failure: Exception | None = None
    while_sending: Callable[[], Any] | None = None

    async def send(self, message: Outgoing) -> None:
        if self.while_sending is not None:
            during, self.while_sending = self.while_sending, None
            await during()
        if self.failure is not None:
            raise self.failure
        self.sent.append(message.text)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}")
    await database.create_all(store.metadata)
    yield database
    await database.close()


async def breakers(threshold: int = 5) -> Breakers:
    breakers = Breakers(BreakerSettings(failure_threshold=threshold), registry=CollectorRegistry())
    await breakers.start()
    return breakers


def dispatcher(
    db: Database, channel: RecordingChannel, breakers: Breakers, clock: Clock
) -> Dispatcher:
    return Dispatcher(
        db,
        {channel.name: channel},
        breakers,
        rate_limits={channel.name: 100},
        give_up_after=GIVE_UP_AFTER,
        retention=RETENTION,
        clock=clock,
    )


async def enqueue(db: Database, message_id: str = "m-1", channel: str = "log") -> None:
    notification = Notification(
        EventKind.FILL, Severity.INFO, "Filled", "details", topic=f"fill:{message_id}"
    )
    async with db.session() as session:
        await store.enqueue(
            session, message_id, notification, channel, now=utc_now(), dedupe_window=timedelta(0)
        )
        await session.commit()


async def rows(db: Database) -> list[dict[str, Any]]:
    async with db.session() as session:
        query = select(store.deliveries).order_by(store.deliveries.c.id)
        return [dict(row._mapping) for row in (await session.execute(query)).all()]


# -- nothing sent twice -------------------------------------------------------------------------


async def test_two_dispatchers_sharing_the_log_send_a_delivery_once(db: Database) -> None:
    await enqueue(db)
    channel = RecordingChannel()
    shared = await breakers()
    clock = Clock(utc_now())
    first = dispatcher(db, channel, shared, clock)
    second = dispatcher(db, channel, shared, clock)
    # A second replica runs its round while the first one's send is in flight.
    channel.while_sending = second.dispatch_due

    await first.dispatch_due()

    assert channel.sent == ["Filled\ndetails"]
    [row] = await rows(db)
    assert (row["status"], row["attempts"]) == ("sent", 1)


async def test_a_delivery_claimed_by_a_dispatcher_that_died_is_sent_after_the_claim(
    db: Database,
) -> None:
    await enqueue(db)
    channel = RecordingChannel()
    clock = Clock(utc_now())
    [row] = await rows(db)
    async with db.session() as session:
        claimed = await store.claim(
            session, row["id"], "dead-dispatcher", clock.now, clock.now + timedelta(minutes=2)
        )
        assert claimed is not None
        await session.commit()
    sender = dispatcher(db, channel, await breakers(), clock)

    assert await sender.dispatch_due() == 0
    clock.now += timedelta(minutes=3)
    assert await sender.dispatch_due() == 1
    assert len(channel.sent) == 1


# -- nothing lost while a channel is down -------------------------------------------------------


async def test_a_long_outage_keeps_deliveries_pending_until_the_deadline(db: Database) -> None:
    channel = RecordingChannel(failure=ChannelUnavailable("webhook answered HTTP 503"))
    await enqueue(db)
    clock = Clock(utc_now())
    sender = dispatcher(db, channel, await breakers(threshold=1000), clock)

    for _ in range(40):  # far more attempts than a fixed attempt budget would allow
        [row] = await rows(db)
        clock.now = max(clock.now, row["next_attempt_at"])
        await sender.dispatch_due()

    [row] = await rows(db)
    assert (row["status"], row["attempts"]) == ("pending", 40)
    assert row["last_error"] == "webhook answered HTTP 503"

    channel.failure = None
    clock.now = row["next_attempt_at"]
    assert await sender.dispatch_due() == 1
    assert channel.sent == ["Filled\ndetails"]


async def test_a_delivery_still_failing_at_the_deadline_is_given_up(db: Database) -> None:
    channel = RecordingChannel(failure=ChannelUnavailable("webhook answered HTTP 503"))
    await enqueue(db)
    clock = Clock(utc_now())
    sender = dispatcher(db, channel, await breakers(), clock)

    clock.now += GIVE_UP_AFTER
    await sender.dispatch_due()

    [row] = await rows(db)
    assert row["status"] == "failed"


async def test_a_rate_limited_delivery_waits_as_long_as_the_channel_asks(db: Database) -> None:
    channel = RecordingChannel(
        failure=ChannelUnavailable("webhook answered HTTP 429", retry_after=timedelta(seconds=90))
    )
    await enqueue(db)
    clock = Clock(utc_now())

    await dispatcher(db, channel, await breakers(), clock).dispatch_due()

    [row] = await rows(db)
    assert row["status"] == "pending"
    assert row["next_attempt_at"] == clock.now + timedelta(seconds=90)


async def test_a_refused_delivery_is_given_up_at_once(db: Database) -> None:
    channel = RecordingChannel(failure=ChannelRejected("webhook refused the message: HTTP 404"))
    await enqueue(db)
    clock = Clock(utc_now())

    await dispatcher(db, channel, await breakers(), clock).dispatch_due()

    [row] = await rows(db)
    assert (row["status"], row["attempts"]) == ("failed", 1)


# -- bounded growth -----------------------------------------------------------------------------


async def test_finished_deliveries_are_pruned_after_the_retention(db: Database) -> None:
    clock = Clock(utc_now())
    for message_id in ("sent-old", "failed-old", "pending-old", "sent-recent"):
        await enqueue(db, message_id)
    statuses = {
        "sent-old": "sent",
        "failed-old": "failed",
        "pending-old": "pending",
        "sent-recent": "sent",
    }
    async with db.session() as session:
        for message_id, status in statuses.items():
            age = timedelta(hours=1) if message_id.endswith("recent") else RETENTION + timedelta(1)
            await session.execute(
                update(store.deliveries)
                .where(store.deliveries.c.message_id == message_id)
                .values(status=status, created_at=clock.now - age)
            )
        await session.commit()
    sender = dispatcher(db, RecordingChannel(), await breakers(), clock)

    assert await sender.prune_history() == 2

    assert [row["message_id"] for row in await rows(db)] == ["pending-old", "sent-recent"]


# -- the webhook channel ------------------------------------------------------------------------


def outgoing(text: str, *, kind: str = "fill", severity: str = "info") -> Outgoing:
    return Outgoing(delivery_id=1, message_id="m-1", kind=kind, severity=severity, text=text)


def webhook(
    answer: Callable[[httpx.Request], httpx.Response], timeout: float = 5.0
) -> WebhookChannel:
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return WebhookChannel(HOOK, client, timeout_seconds=timeout)


async def test_the_webhook_waits_no_longer_than_its_configured_timeout() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    settings = NotifierSettings(
        channels={"webhook": {"timeout_seconds": 2.5}},  # type: ignore[arg-type]
        webhook_url=HOOK,  # type: ignore[arg-type]
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    channel = configured_channels(settings, client)["webhook"]

    await channel.send(outgoing("Filled"))

    [request] = seen
    assert request.extensions["timeout"] == {
        "connect": 2.5,
        "read": 2.5,
        "write": 2.5,
        "pool": 2.5,
    }


async def test_the_webhook_sends_slack_and_discord_fields() -> None:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(204)

    await webhook(answer).send(
        outgoing("notional 150 > limit 100 & more", kind="denial", severity="warning")
    )

    [body] = bodies
    assert body["content"] == "notional 150 > limit 100 & more"
    assert body["text"] == "notional 150 &gt; limit 100 &amp; more"
    assert (body["kind"], body["severity"]) == ("denial", "warning")


async def test_a_webhook_timeout_is_unavailable_with_a_clear_reason() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ChannelUnavailable, match=r"did not answer within 2\.5s"):
        await webhook(answer, timeout=2.5).send(outgoing("x"))


async def test_an_unreachable_webhook_is_unavailable() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ChannelUnavailable, match="unreachable: ConnectError"):
        await webhook(answer).send(outgoing("x"))


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_errors_are_worth_retrying(status: int) -> None:
    with pytest.raises(ChannelUnavailable, match=f"HTTP {status}"):
        await webhook(lambda _: httpx.Response(status)).send(outgoing("x"))


async def test_rate_limiting_is_worth_retrying_after_what_the_webhook_asks() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "30"})

    with pytest.raises(ChannelUnavailable) as raised:
        await webhook(lambda _: limited).send(outgoing("x"))

    assert raised.value.retry_after == timedelta(seconds=30)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
async def test_client_errors_are_refusals(status: int) -> None:
    with pytest.raises(ChannelRejected, match=f"HTTP {status}"):
        await webhook(lambda _: httpx.Response(status, text="no_text")).send(outgoing("x"))


async def test_a_redirect_is_a_refusal_that_names_the_new_address() -> None:
    moved = httpx.Response(301, headers={"Location": "https://hooks.example.com/new"})

    with pytest.raises(ChannelRejected, match=r"redirect to https://hooks\.example\.com/new"):
        await webhook(lambda _: moved).send(outgoing("x"))


def test_retry_after_reads_seconds_and_dates_and_caps_them() -> None:
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

    def delay(value: str) -> timedelta | None:
        return retry_after(httpx.Response(429, headers={"Retry-After": value}), now)

    assert delay("120") == timedelta(seconds=120)
    assert delay("Wed, 15 Jan 2025 12:01:00 GMT") == timedelta(minutes=1)
    assert delay("Wed, 15 Jan 2025 11:00:00 GMT") == timedelta(0)
    assert delay("86400") == timedelta(hours=1)
    assert delay("soon") is None
    assert retry_after(httpx.Response(429), now) is None


# -- configuration ------------------------------------------------------------------------------


def test_a_route_to_a_channel_that_is_not_configured_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"denial: slack.*configured channels: log"):
        NotifierSettings(routes={EventKind.DENIAL: ["slack"]})  # type: ignore[dict-item]


def test_routes_to_configured_channels_are_accepted() -> None:
    settings = NotifierSettings(
        channels={"log": {}, "webhook": {}},  # type: ignore[arg-type]
        routes={EventKind.FILL: ["log"], EventKind.DISCREPANCY: ["log", "webhook"]},  # type: ignore[dict-item]
        webhook_url=HOOK,  # type: ignore[arg-type]
    )

    assert settings.routes[EventKind.DISCREPANCY] == {
        "log": Severity.INFO,
        "webhook": Severity.INFO,
    }


# -- texts for a phone --------------------------------------------------------------------------


def test_amounts_are_written_without_exponents_or_trailing_zeros() -> None:
    assert amount(Decimal("5E-8")) == "0.00000005"
    assert amount(Decimal("6E+4")) == "60000"
    assert amount(Decimal("0.50000000")) == "0.5"
    assert amount(Decimal("-0.000")) == "0"
    assert amount(Decimal("12345678901234567890123456789.5")) == "12345678901234567890123456789.5"


def test_a_fill_with_a_tiny_fee_reads_as_plain_numbers() -> None:
    report = ExecutionReport(
        correlation_id="sig-1",
        producer="execution",
        order_id="ord-1",
        account="main",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        status=ExecutionStatus.FILLED,
        cumulative_quantity=Decimal("0.00100000"),
        fill=Fill(
            fill_id="f-1",
            quantity=Decimal("0.00100000"),
            price=Decimal("6E+4"),
            fee=Decimal("1E-7"),
            fee_currency="BTC",
            filled_at=utc_now(),
        ),
    )

    notification = for_execution_report(report)

    assert notification is not None
    assert notification.text == (
        "Filled: BUY 0.001 BTC/USDT @ 60000\n"
        "account main · paper · order ord-1\n"
        "fee 0.0000001 BTC · filled 0.001"
    )


def test_a_breaker_change_without_a_reason_is_one_line() -> None:
    changed = VenueStatusChanged(
        correlation_id="c",
        producer="execution",
        venue="paper",
        account="main",
        breaker=BreakerState.OPEN,
    )

    assert for_venue_status(changed).text == "Venue paper (main): breaker open"


def test_a_discrepancy_shows_only_the_values_it_has() -> None:
    found = DiscrepancyFound(
        correlation_id="run-1",
        producer="reconciler",
        run_id="run-1",
        account="main",
        venue="paper",
        kind=DiscrepancyKind.POSITION_MISMATCH,
        severity=Severity.CRITICAL,
        symbol="BTC/USDT",
        venue_value=Decimal("1E-8"),
        detail="the venue holds 0.00000001 BTC/USDT and the OMS has no position",
    )

    assert for_discrepancy(found).text == (
        "Reconciliation critical: position mismatch (main/paper BTC/USDT)\n"
        "venue 0.00000001\n"
        "the venue holds 0.00000001 BTC/USDT and the OMS has no position"
    )


def test_a_halted_venue_is_critical_even_with_its_breaker_closed() -> None:
    changed = VenueStatusChanged(
        correlation_id="c",
        producer="execution",
        venue="paper",
        account="main",
        breaker=BreakerState.CLOSED,
        halted=True,
        reason="the venue refused our credentials",
    )

    notification = for_venue_status(changed)
    assert notification.severity is Severity.CRITICAL
    assert notification.text.startswith("Venue paper (main): HALTED")
