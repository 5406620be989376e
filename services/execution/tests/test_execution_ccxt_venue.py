"""The execution service through real ccxt (its own ``binance`` class) against the local Binance
test venue, with breakers shared in a real Redis: breakers, unknown outcomes, rejections, halts,
fills by polling and by websocket, snapshots, and two replicas on one durable consumer."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import httpx
import nats
import pytest
from binance_test_venue import BinanceTestVenue, Fault, SpotMarket
from execution_support import (
    deliver,
    deliver_last_attempt,
    published,
    reports,
    statuses,
    submission,
    venue_changes,
)

from ordo.contracts.enums import BreakerState, ExecutionStatus, OrderType, Side
from ordo.contracts.execution import (
    ExecutionReport,
    RequestVenueSnapshot,
    VenuePosition,
    VenueSnapshot,
)
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import OrderSpec
from ordo.contracts.risk import OrderApproved
from ordo.contracts.subjects import STREAM_OF_SUBJECT, Subject
from ordo.execution import store
from ordo.execution.app import ExecutionApp, assemble
from ordo.execution.config import CcxtAccount, ExecutionSettings, VenueMode
from ordo.execution.errors import TransientVenueError, UnknownOutcome
from ordo.execution.quotes import QuotePublisher, quote_message_id
from ordo.execution.store import SubmissionStatus
from ordo.execution.venues.ccxt_venue import CcxtVenue
from ordo.execution.venues.paper import PaperPrices, PaperVenueConfig
from ordo.kit.breaker import CircuitOpenError
from ordo.kit.embedded import NatsServer, RedisServer
from ordo.kit.outbox import OutgoingMessage
from ordo.kit.settings import BreakerSettings, NatsSettings, OutboxSettings
from ordo.kit.testing import eventually

VENUE = "ccxt:binance"
BTC = "BTC/USDT"
KEY, SECRET = "test-api-key", "test-api-secret"
# Only what a spot account needs: no futures or margin markets, no currency list.
OPTIONS = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}

MakeService = Callable[..., Awaitable[ExecutionApp]]


@pytest.fixture
async def binance() -> AsyncIterator[BinanceTestVenue]:
    venue = BinanceTestVenue(
        api_key=KEY,
        secret=SECRET,
        markets=[SpotMarket("BTCUSDT", "BTC", "USDT", Decimal(60_000))],
        balances={"USDT": "10000"},
        perpetuals=[
            SpotMarket(
                "BTCUSDT",
                "BTC",
                "USDT",
                Decimal(60_000),
                step_size=Decimal("0.001"),
                min_quantity=Decimal("0.001"),
            )
        ],
    )
    await venue.start()
    yield venue
    await venue.stop()


@pytest.fixture
def account() -> str:
    # Breakers live in the session's Redis: each test trades on an account of its own.
    return f"acct-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def make_service(
    tmp_path: Path, binance: BinanceTestVenue, redis_server: RedisServer, account: str
) -> AsyncIterator[MakeService]:
    built: list[tuple[ExecutionApp, bool]] = []

    async def make(
        *,
        watch_orders: bool = False,
        timeout_seconds: float = 2.0,
        nats_settings: NatsSettings | None = None,
        start: bool = False,
        options: dict[str, Any] = OPTIONS,
        symbols: tuple[str, ...] = (BTC,),
    ) -> ExecutionApp:
        entry = CcxtAccount(
            account=account,
            venue=VENUE,
            mode=VenueMode.LIVE,
            options=options,
            urls=binance.ccxt_urls(),
            symbols=symbols,
            timeout_seconds=timeout_seconds,
            rate_limit=False,  # the local venue has no limit to respect
            poll_interval_seconds=0.05,
            watch_orders=watch_orders,
        )
        settings = ExecutionSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'execution.db'}",
            redis_url=redis_server.url,
            breaker=BreakerSettings(failure_threshold=3, recovery_seconds=0.5),
            venue_accounts=(entry,),
            create_lease_seconds=10,
            outbox=OutboxSettings(sweep_interval_seconds=0.2, sweep_grace_seconds=0.2),
            **({"nats": nats_settings} if nats_settings else {}),
        )
        secrets = entry.credentials_name
        environ = {f"ORDO_VENUE_{secrets}_API_KEY": KEY, f"ORDO_VENUE_{secrets}_SECRET": SECRET}
        app = assemble(settings, telemetry=False, environ=environ)
        await app.kit.db.create_all(store.metadata)
        if start:
            await app.kit.start(migrate=False, serve_http=False)
        else:
            await app.kit.breakers.start()
        built.append((app, start))
        return app

    yield make
    for app, started in built:
        if started:
            await app.kit.stop()
        else:
            await app.execution.drain()
            await app.gateway.close()
            await app.kit.db.close()


def order_spec(
    account: str, order_id: str = "ord-1", *, quantity: str = "0.01", limit: str | None = None
) -> OrderSpec:
    return OrderSpec(
        order_id=order_id,
        account=account,
        strategy="trend",
        venue=VENUE,
        symbol=BTC,
        side=Side.BUY,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        quantity=Decimal(quantity),
        limit_price=Decimal(limit) if limit else None,
        reference_price=Decimal(60_000),
    )


def approval(*specs: OrderSpec) -> OrderApproved:
    return OrderApproved(
        correlation_id=f"sig-{uuid.uuid4().hex[:6]}",
        producer="risk",
        proposal_id=f"prop-{uuid.uuid4().hex[:6]}",
        account=specs[0].account,
        orders=specs,
    )


def snapshot_request(account: str) -> RequestVenueSnapshot:
    return RequestVenueSnapshot(
        correlation_id="recon-1", producer="reconciler", account=account, venue=VENUE
    )


async def breaker_changes(app: ExecutionApp) -> list[tuple[BreakerState, bool]]:
    await app.execution.drain()
    return [(change.breaker, change.halted) for change in await venue_changes(app)]


async def test_an_order_placed_through_ccxt_is_filled_and_reported_with_the_venues_trade(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()

    await deliver(app, approval(order_spec(account)))

    accepted, filled = await reports(app)
    assert (accepted.status, accepted.venue_order_id) == (ExecutionStatus.ACCEPTED, "1")
    assert filled.status is ExecutionStatus.FILLED
    assert filled.fill is not None
    assert (filled.fill.fill_id, filled.fill.price, filled.fill.quantity) == (
        "1",
        Decimal(60_000),
        Decimal("0.01"),
    )
    assert (filled.fill.fee, filled.fill.fee_currency) == (Decimal("0.6"), "USDT")
    # The client order id travelled in Binance's own parameter.
    (placed,) = binance.orders_with_client_id("ord-1")
    assert placed.status == "FILLED"


async def test_the_breaker_opens_after_the_configured_failures_then_half_opens_and_closes(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()
    binance.inject(Fault("GET", "/api/v3/account", status=503, times=3))

    # A read is tried three times; three failures reach the threshold.
    with pytest.raises(Exception, match="injected"):
        await app.execution.snapshot(snapshot_request(account))
    assert await app.gateway.breaker_state(VENUE, account) is BreakerState.OPEN
    account_reads = binance.requests[("GET", "/api/v3/account")]
    with pytest.raises(CircuitOpenError):
        await app.execution.snapshot(snapshot_request(account))
    assert binance.requests[("GET", "/api/v3/account")] == account_reads  # not even tried

    async def answered() -> VenueSnapshot | None:
        try:
            return await app.execution.snapshot(snapshot_request(account))
        except CircuitOpenError:
            return None

    # Once the recovery time has passed, one call is let through; it succeeds, and closes it.
    snapshot = await eventually(answered, timeout=10, what="the breaker letting a call through")
    assert {b.currency: b.total for b in snapshot.balances} == {"USDT": Decimal(10_000)}
    assert await app.gateway.breaker_state(VENUE, account) is BreakerState.CLOSED
    assert await breaker_changes(app) == [
        (BreakerState.OPEN, False),
        (BreakerState.HALF_OPEN, False),
        (BreakerState.CLOSED, False),
    ]


@pytest.mark.parametrize(
    "fault",
    [
        Fault("POST", "/api/v3/order", drop_after=True),
        Fault("POST", "/api/v3/order", delay_after=2.0),  # the answer comes after the timeout
    ],
    ids=["response-dropped", "response-too-late"],
)
async def test_a_create_whose_answer_is_lost_is_looked_up_and_placed_exactly_once(
    make_service: MakeService, binance: BinanceTestVenue, account: str, fault: Fault
) -> None:
    app = await make_service(timeout_seconds=1.0)
    binance.inject(fault)

    await deliver(app, approval(order_spec(account)))

    assert binance.create_requests["ord-1"] == 1
    assert len(binance.orders_with_client_id("ord-1")) == 1
    assert await statuses(app) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    recorded = await submission(app)
    assert recorded is not None
    assert (recorded.status, recorded.attempts) == (SubmissionStatus.SUBMITTED, 1)


async def test_a_create_the_venue_takes_after_it_timed_out_on_the_last_attempt_is_reported(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service(timeout_seconds=1.0)
    # The request waits at the venue past our timeout, and is then handled.
    binance.inject(Fault("POST", "/api/v3/order", delay_before=1.5))

    await deliver_last_attempt(app, approval(order_spec(account)))

    # Never REJECTED for an order the venue went on to place.
    assert await statuses(app) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    assert binance.create_requests["ord-1"] == 1
    assert len(binance.orders_with_client_id("ord-1")) == 1


@pytest.mark.parametrize("trouble", ["unreadable answer", "trades refused"])
async def test_a_create_whose_answer_cannot_be_read_is_an_unknown_outcome_not_a_refusal(
    make_service: MakeService, binance: BinanceTestVenue, account: str, trouble: str
) -> None:
    app = await make_service()
    adapter = app.venues.get(VENUE, account)
    assert isinstance(adapter, CcxtVenue)
    exchange = adapter._exchange
    create = exchange.create_order

    async def garbled(*args: Any, **kwargs: Any) -> dict[str, Any]:
        created = await create(*args, **kwargs)
        if trouble == "unreadable answer":
            return {**created, "side": "sideways"}
        return {**created, "trades": []}  # so they are fetched, and the venue refuses that

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise ccxt_async.PermissionDenied("binance: not for this key")

    exchange.create_order = garbled
    exchange.fetch_order_trades = exchange.fetch_my_trades = refused

    # The venue placed the order: it must be looked up, never taken as turned away (and
    # given up as never placed, or created again).
    with pytest.raises(UnknownOutcome, match="placed"):
        await adapter.create_order(order_spec(account))

    assert len(binance.orders_with_client_id("ord-1")) == 1


async def test_a_failed_signed_request_names_neither_its_signature_nor_ccxts_error(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service(timeout_seconds=0.5)
    adapter = app.venues.get(VENUE, account)
    binance.inject(Fault("GET", "/api/v3/order", delay_before=1.0))

    with pytest.raises(TransientVenueError) as failed:
        await adapter.fetch_order("ord-1", BTC)

    # Its message goes to logs and reports, and a logged traceback shows what it was raised from.
    assert "/api/v3/order" in str(failed.value) and "signature" not in str(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


async def test_insufficient_funds_give_a_rejected_report_and_leave_the_breaker_closed(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()
    too_large = [order_spec(account, f"big-{n}", quantity="1") for n in range(4)]  # 60,000 each

    await deliver(app, *(approval(spec) for spec in too_large))

    rejected = await reports(app)
    assert [r.status for r in rejected] == [ExecutionStatus.REJECTED] * 4
    assert all("insufficient balance" in (r.reason or "") for r in rejected)
    assert sum(binance.create_requests.values()) == 4  # each was sent, and refused
    assert await app.gateway.breaker_state(VENUE, account) is BreakerState.CLOSED
    assert await breaker_changes(app) == []


async def test_refused_credentials_halt_the_venue_until_they_work_again(
    make_service: MakeService,
    binance: BinanceTestVenue,
    account: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    app = await make_service()
    binance.api_key = "another-key"  # the exchange no longer knows ours (revoked)

    await deliver(app, approval(order_spec(account, "first")))
    await deliver(app, approval(order_spec(account, "second")))

    first, second = await reports(app)
    assert first.status is second.status is ExecutionStatus.REJECTED
    assert "Invalid API-key" in (first.reason or "")
    assert (second.reason or "").startswith("not sent: venue halted (credentials refused")
    assert binance.requests[("POST", "/api/v3/order")] == 1  # the second never left
    (halted,) = await venue_changes(app)
    assert (halted.venue, halted.account, halted.halted) == (VENUE, account, True)
    (shown,) = await venues_endpoint(app)  # what `ordo status` shows
    assert (shown["venue"], shown["account"], shown["breaker"], shown["halted"]) == (
        VENUE,
        account,
        "closed",
        True,
    )

    await app.health.probe_halted()  # still refused: nothing changes
    assert app.health.halted(VENUE, account) is not None
    binance.api_key = KEY  # an operator set things right at the exchange
    await app.health.probe_halted()

    assert app.health.halted(VENUE, account) is None
    assert [change.halted for change in await venue_changes(app)] == [True, False]
    await deliver(app, approval(order_spec(account, "third")))
    assert (await reports(app))[-1].status is ExecutionStatus.FILLED

    # The credentials are in no message and no log line, refused or not.
    messages = [
        *await published(app, Subject.EXEC_REPORT),
        *await published(app, Subject.EXEC_VENUE),
    ]
    logged = "".join(capfd.readouterr())
    assert "venue halted" in logged  # the service's log lines were captured
    for secret in (KEY, SECRET):
        assert not any(secret in message for message in messages)
        assert secret not in logged


async def test_a_resting_order_filled_later_is_reported_by_polling(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()
    await deliver(app, approval(order_spec(account, limit="59000")))
    assert await statuses(app) == [ExecutionStatus.ACCEPTED]

    await binance.set_price("BTCUSDT", "58900")
    await app.execution.follow_orders()

    _, filled = await reports(app)
    assert filled.status is ExecutionStatus.FILLED
    assert filled.fill is not None
    assert (filled.fill.price, filled.fill.liquidity) == (Decimal(59_000), "maker")


async def test_a_resting_order_filled_later_is_reported_from_the_websocket(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service(watch_orders=True)
    await deliver(app, approval(order_spec(account, limit="59000")))
    following = asyncio.create_task(app.execution.follow_pushes(VENUE, account))
    try:
        await eventually(
            _async(lambda: binance.subscribers), timeout=10, what="a user data stream subscriber"
        )

        await binance.set_price("BTCUSDT", "58900")  # no polling here: only the push tells

        async def filled() -> list[ExecutionStatus] | None:
            found = await statuses(app)
            return found if ExecutionStatus.FILLED in found else None

        assert await eventually(filled, timeout=10, what="the fill, pushed") == [
            ExecutionStatus.ACCEPTED,
            ExecutionStatus.FILLED,
        ]
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)


async def test_the_snapshot_holds_positions_open_orders_balances_and_recent_fills(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()
    await deliver(
        app,
        approval(order_spec(account, "bought"), order_spec(account, "resting", limit="50000")),
    )

    snapshot = await app.execution.snapshot(snapshot_request(account))

    assert snapshot.positions == (VenuePosition(symbol=BTC, quantity=Decimal("0.01")),)
    assert [(o.order_id, o.quantity) for o in snapshot.open_orders] == [
        ("resting", Decimal("0.01"))
    ]
    balances = {b.currency: (b.total, b.free) for b in snapshot.balances}
    assert balances["BTC"] == (Decimal("0.01"), Decimal("0.01"))
    assert balances["USDT"][0] == Decimal(10_000) - Decimal(600) - Decimal("0.6")
    (fill,) = snapshot.recent_fills
    assert (fill.order_id, fill.venue_order_id, fill.symbol, fill.side, fill.fill.fill_id) == (
        "bought",  # Binance lists the trade under its own order id: named by ours
        "1",
        BTC,
        Side.BUY,
        "1",
    )


async def test_two_replicas_on_one_durable_consumer_never_submit_an_order_twice(
    own_nats: NatsServer, make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    admin = own_nats.credentials.admin
    # The approval comes back to the other replica (ack wait) while the first is still
    # creating the order at a slow venue.
    nats_settings = NatsSettings(
        url=own_nats.url,
        user=admin.name,
        password=admin.password,
        ack_wait_seconds=1,
        backoff_seconds=(0.2,),
    )
    replicas = [
        await make_service(nats_settings=nats_settings, timeout_seconds=5, start=True)
        for _ in range(2)
    ]
    binance.inject(Fault("POST", "/api/v3/order", delay_before=2.5))
    approved = approval(order_spec(account))

    client = await nats.connect(own_nats.url, user=admin.name, password=admin.password)
    try:
        await client.jetstream().publish(
            str(Subject.RISK_APPROVED),
            approved.to_json(),
            headers={"Nats-Msg-Id": approved.message_id},
        )

        async def settled() -> Any:
            # Acknowledged, filled, and nothing on its way to the venue any more.
            durable = await _approval_consumer(client)
            acknowledged = durable.num_ack_pending == 0 and durable.num_pending == 0
            filled = ExecutionStatus.FILLED in await statuses(replicas[0])
            return durable if acknowledged and filled and binance.in_flight == 0 else None

        durable = await eventually(settled, timeout=20, what="the approval handled")
        # One approval, delivered more than once: the other replica did get it meanwhile.
        assert durable.delivered.consumer_seq >= 2
    finally:
        await client.drain()

    assert binance.create_requests["ord-1"] == 1
    assert len(binance.orders_with_client_id("ord-1")) == 1
    assert await statuses(replicas[0]) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]


async def _approval_consumer(client: Any) -> Any:
    js = client.jetstream()
    for info in await js.consumers_info(STREAM_OF_SUBJECT[Subject.RISK_APPROVED]):
        if info.config.filter_subject == str(Subject.RISK_APPROVED):
            return info
    raise AssertionError("no durable consumer of the approvals")


async def venues_endpoint(app: ExecutionApp) -> Any:
    transport = httpx.ASGITransport(app=app.kit.http_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://execution") as http:
        response = await http.get("/venues")
    assert response.status_code == 200
    return response.json()


def _async(check: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return check()

    return run


async def test_an_account_not_configured_on_the_exchange_gets_a_rejection(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()

    await deliver(app, approval(order_spec("stranger")))

    (rejected,) = await reports(app)
    assert rejected.status is ExecutionStatus.REJECTED
    assert "account 'stranger' is not configured on ccxt:binance" in (rejected.reason or "")
    assert binance.requests[("POST", "/api/v3/order")] == 0


async def test_a_rate_limited_create_was_not_placed_and_its_retry_places_it(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()
    binance.inject(Fault("POST", "/api/v3/order", status=429))
    approved = approval(order_spec(account))

    await deliver(app, approved)  # 429: turned away before the venue acted

    assert await reports(app) == []
    waiting = await submission(app)
    assert waiting is not None
    assert (waiting.status, waiting.claimed_until) == (SubmissionStatus.PENDING, None)
    assert "429" in (waiting.last_error or "")

    await deliver(app, approved)  # the retry of the message: looked up, then created

    assert await statuses(app) == [ExecutionStatus.ACCEPTED, ExecutionStatus.FILLED]
    assert binance.create_requests["ord-1"] == 1
    assert binance.requests[("POST", "/api/v3/order")] == 2


async def test_the_test_venue_answers_ccxts_public_calls(binance: BinanceTestVenue) -> None:
    exchange = ccxt_async.binance({"options": OPTIONS})
    exchange.urls["api"] = binance.ccxt_urls()
    try:
        # The server's clock: the one signed requests' timestamps are checked against.
        assert abs(await exchange.fetch_time() - time.time() * 1000) < 60_000
        await binance.set_price("BTCUSDT", "61000.5")
        ticker = await exchange.fetch_ticker(BTC)
        assert (ticker["symbol"], ticker["last"]) == (BTC, 61_000.5)
    finally:
        await exchange.close()


async def test_the_accounts_symbols_are_quoted_on_nats_from_the_venues_ticker(
    own_nats: NatsServer, make_service: MakeService, binance: BinanceTestVenue
) -> None:
    admin = own_nats.credentials.admin
    nats_settings = NatsSettings(url=own_nats.url, user=admin.name, password=admin.password)
    await binance.set_price("BTCUSDT", "61000.5")
    await make_service(nats_settings=nats_settings, start=True)

    client = await nats.connect(own_nats.url, user=admin.name, password=admin.password)
    try:
        js = client.jetstream()
        stream = STREAM_OF_SUBJECT[Subject.MARKET_QUOTE]

        async def venue_quote() -> MarketQuote | None:
            for sequence in range(1, (await js.stream_info(stream)).state.last_seq + 1):
                quote = MarketQuote.from_json((await js.get_msg(stream, sequence)).data or b"")
                if quote.venue == VENUE:
                    return quote
            return None

        quote = await eventually(venue_quote, timeout=20, what="a quote of the ccxt account")
    finally:
        await client.drain()

    assert quote.symbol == BTC
    assert (quote.last, quote.bid, quote.ask) == (Decimal("61000.5"),) * 3
    assert quote.quoted_at.tzinfo is UTC
    assert abs(quote.quoted_at - datetime.now(UTC)) < timedelta(minutes=1)  # the venue's time
    assert quote.message_id == quote_message_id(VENUE, BTC, quote.quoted_at)


async def test_quote_reads_fail_through_the_accounts_breaker_and_the_others_go_out(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()
    sent: list[OutgoingMessage] = []

    async def publish(message: OutgoingMessage) -> None:
        sent.append(message)

    quotes = QuotePublisher(
        app.gateway,
        PaperPrices(PaperVenueConfig(), 7, lambda: datetime.now(UTC)),
        lambda: [(VENUE, account, (BTC,))],
        publish,
        lambda: datetime.now(UTC),
    )
    binance.inject(Fault("GET", "/api/v3/ticker/24hr", status=503, times=3))

    await quotes.publish_quotes()  # read three times (the read retries), then given up

    assert binance.requests[("GET", "/api/v3/ticker/24hr")] == 3
    assert await app.gateway.breaker_state(VENUE, account) is BreakerState.OPEN
    published = {MarketQuote.from_json(message.payload).venue for message in sent}
    assert published == {"paper"}  # this round has no quote of the venue, and nothing failed


async def test_a_push_that_comes_while_the_last_is_being_handled_is_not_left_waiting(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service(watch_orders=True)
    await deliver(
        app,
        approval(
            order_spec(account, "first", limit="59000"),
            order_spec(account, "second", limit="58000"),
        ),
    )
    adapter = app.gateway.adapter(VENUE, account)
    assert isinstance(adapter, CcxtVenue)
    updates = adapter.order_updates()
    following = asyncio.ensure_future(anext(updates))
    await eventually(
        _async(lambda: binance.subscribers), timeout=10, what="a user data stream subscriber"
    )

    await binance.set_price("BTCUSDT", "58900")
    assert await asyncio.wait_for(following, timeout=10) == "first"
    # While "first" is being handled, no watch waits: "second" fills, and its push arrives.
    await binance.set_price("BTCUSDT", "57900")

    def cached_status(client_order_id: str) -> Any:
        cached = adapter._exchange.orders or []
        return next((o["status"] for o in cached if o["clientOrderId"] == client_order_id), None)

    await eventually(
        _async(lambda: cached_status("second") == "closed"), timeout=10, what="the push received"
    )
    # No other push comes: the next update is the one that came in between, not a wait for ever.
    assert await asyncio.wait_for(anext(updates), timeout=10) == "second"
    await updates.aclose()


async def test_orders_that_changed_while_the_websocket_was_down_are_caught_up_on_resubscribing(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service(watch_orders=True)
    await deliver(app, approval(order_spec(account, limit="59000")))
    first_run = asyncio.create_task(app.execution.follow_pushes(VENUE, account))
    await eventually(
        _async(lambda: binance.subscribers), timeout=10, what="a user data stream subscriber"
    )

    await binance.drop_subscribers()
    await binance.set_price("BTCUSDT", "58900")  # filled while nobody listens: pushed nowhere
    with pytest.raises(TransientVenueError):  # the subscription ends; the supervisor starts another
        await asyncio.wait_for(first_run, timeout=10)
    assert await statuses(app) == [ExecutionStatus.ACCEPTED]

    second_run = asyncio.create_task(app.execution.follow_pushes(VENUE, account))
    try:

        async def filled() -> list[ExecutionStatus] | None:
            found = await statuses(app)
            return found if ExecutionStatus.FILLED in found else None

        # No polling here: the new subscription looked the followed order up.
        assert await eventually(filled, timeout=10, what="the fill, caught up") == [
            ExecutionStatus.ACCEPTED,
            ExecutionStatus.FILLED,
        ]
    finally:
        second_run.cancel()
        await asyncio.gather(second_run, return_exceptions=True)


async def polled_until_filled(app: ExecutionApp) -> list[ExecutionReport]:
    """The reports once polling (each round due after the account's poll interval) found a fill."""

    async def filled() -> list[ExecutionReport] | None:
        await app.execution.follow_orders()
        found = await reports(app)
        return found if found[-1].status is ExecutionStatus.FILLED else None

    return await eventually(filled, timeout=10, what="the fill, polled")


def stop_spec(
    account: str,
    order_type: OrderType,
    *,
    order_id: str = "ord-1",
    stop: str | None = None,
    limit: str | None = None,
    trailing_percent: str | None = None,
) -> OrderSpec:
    return OrderSpec(
        order_id=order_id,
        account=account,
        strategy="trend",
        venue=VENUE,
        symbol=BTC,
        side=Side.BUY,
        order_type=order_type,
        quantity=Decimal("0.01"),
        stop_price=Decimal(stop) if stop else None,
        limit_price=Decimal(limit) if limit else None,
        trailing_percent=Decimal(trailing_percent) if trailing_percent else None,
        reference_price=Decimal(60_000),
    )


async def test_a_stop_order_rests_at_binance_as_a_stop_loss_and_fills_once_triggered(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()

    await deliver(app, approval(stop_spec(account, OrderType.STOP_MARKET, stop="61000")))

    (placed,) = binance.orders_with_client_id("ord-1")
    assert (placed.type, placed.stop_price, placed.time_in_force) == (
        "STOP_LOSS",
        Decimal(61_000),
        "",  # a market order once triggered: sent no time in force
    )
    assert await statuses(app) == [ExecutionStatus.ACCEPTED]
    await binance.set_price("BTCUSDT", "60900")  # not yet
    assert not placed.triggered

    await binance.set_price("BTCUSDT", "61500")  # a buy stop triggers at or above its stop

    _, filled = await polled_until_filled(app)
    assert filled.status is ExecutionStatus.FILLED
    assert filled.fill is not None
    assert (filled.fill.price, filled.fill.liquidity) == (Decimal(61_500), "taker")


async def test_a_stop_limit_order_becomes_its_limit_order_once_triggered(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()

    await deliver(
        app, approval(stop_spec(account, OrderType.STOP_LIMIT, stop="61000", limit="61200"))
    )

    (placed,) = binance.orders_with_client_id("ord-1")
    assert (placed.type, placed.stop_price, placed.price, placed.time_in_force) == (
        "STOP_LOSS_LIMIT",
        Decimal(61_000),
        Decimal(61_200),
        "GTC",
    )
    await binance.set_price("BTCUSDT", "61300")  # triggered, above its limit: it rests
    assert placed.triggered and placed.is_open

    await binance.set_price("BTCUSDT", "61150")

    _, filled = await polled_until_filled(app)
    assert filled.fill is not None
    assert (filled.status, filled.fill.price, filled.fill.liquidity) == (
        ExecutionStatus.FILLED,
        Decimal(61_200),
        "maker",
    )


async def test_a_stop_that_would_trigger_at_once_is_rejected_and_leaves_the_breaker_closed(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()

    await deliver(app, approval(stop_spec(account, OrderType.STOP_MARKET, stop="59000")))

    (rejected,) = await reports(app)
    assert rejected.status is ExecutionStatus.REJECTED
    assert "Stop price would trigger immediately" in (rejected.reason or "")
    assert binance.orders_with_client_id("ord-1") == []
    assert await app.gateway.breaker_state(VENUE, account) is BreakerState.CLOSED


async def test_a_trailing_stop_binance_spot_cannot_take_is_rejected_before_it_is_sent(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    app = await make_service()

    await deliver(
        app, approval(stop_spec(account, OrderType.TRAILING_STOP, trailing_percent="1.5"))
    )

    (rejected,) = await reports(app)
    assert rejected.status is ExecutionStatus.REJECTED
    assert rejected.reason == (
        f"{VENUE}: order ord-1: the venue takes no trailing_stop orders on spot markets such as "
        f"{BTC}; the OMS emulates them"
    )
    assert binance.requests[("POST", "/api/v3/order")] == 0
    assert await app.gateway.breaker_state(VENUE, account) is BreakerState.CLOSED
    assert await breaker_changes(app) == []


async def test_the_test_venue_triggers_a_take_profit_limit_in_the_orders_favour(
    binance: BinanceTestVenue,
) -> None:
    exchange = ccxt_async.binance({"apiKey": KEY, "secret": SECRET, "options": OPTIONS})
    exchange.urls["api"] = binance.ccxt_urls()
    try:
        # A buy take profit triggers when the price falls to its stop, then rests at its limit.
        created = await exchange.create_order(
            BTC, "limit", "buy", 0.01, 59_000, {"takeProfitPrice": 59_500, "timeInForce": "GTC"}
        )
        (placed,) = binance.orders.values()
        assert (placed.type, placed.stop_price) == ("TAKE_PROFIT_LIMIT", Decimal(59_500))
        await binance.set_price("BTCUSDT", "60500")  # the wrong way: nothing
        await binance.set_price("BTCUSDT", "59400")  # triggered; above its limit, it rests
        assert placed.triggered and placed.status == "NEW"
        await binance.set_price("BTCUSDT", "58900")

        order = await exchange.fetch_order(created["id"], BTC)
        assert (order["status"], order["filled"], order["triggerPrice"]) == ("closed", 0.01, 59500)
    finally:
        await exchange.close()


async def test_a_futures_accounts_positions_are_read_signed_through_ccxt(
    make_service: MakeService, binance: BinanceTestVenue, account: str
) -> None:
    perpetual = "BTC/USDT:USDT"
    futures = {**OPTIONS, "defaultType": "swap", "fetchMarkets": {"types": ["linear"]}}
    app = await make_service(options=futures, symbols=(perpetual,))
    binance.set_position("BTCUSDT", "-0.25")

    positions = await app.gateway.adapter(VENUE, account).positions()

    assert positions == [VenuePosition(symbol=perpetual, quantity=Decimal("-0.25"))]
    assert binance.requests[("GET", "/fapi/v3/positionRisk")] == 1
