"""E-mail and Telegram against real protocol peers: an aiosmtpd server speaking STARTTLS or TLS
and requiring a login, and an HTTP server standing in for the Telegram Bot API, with outages."""

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from notifier_peers import (
    PASSWORD,
    USER,
    Answer,
    Certificates,
    HttpPeer,
    SmtpPeer,
    http_peer,
    make_certificates,
    smtp_peer,
)
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from ordo.contracts.enums import Severity
from ordo.contracts.types import utc_now
from ordo.kit.breaker import Breakers
from ordo.kit.embedded import free_port
from ordo.kit.settings import BreakerSettings
from ordo.kit.store import Database
from ordo.notifier import store
from ordo.notifier.app import build
from ordo.notifier.channels import (
    AttachmentSupport,
    Channel,
    ChannelRejected,
    ChannelUnavailable,
    EmailChannel,
    Outgoing,
    TelegramChannel,
    configured_channels,
)
from ordo.notifier.config import (
    EmailChannelSettings,
    NotifierSettings,
    ReportSettings,
    SmtpSecurity,
)
from ordo.notifier.dispatcher import Dispatcher
from ordo.notifier.domain.notifications import Attachment, EventKind, Notification
from ordo.notifier.handlers import Notifications
from ordo.notifier.reports import Reports

TOKEN = "123456:ABC-secret-bot-token"
CHART = Attachment("equity-2025-01-15.png", b"\x89PNG\r\n\x1a\n-a-chart")


def outgoing(text: str, *, attachment: Attachment | None = None) -> Outgoing:
    return Outgoing(
        delivery_id=7,
        message_id="01J0-report",
        kind="report",
        severity="info",
        text=text,
        attachment=attachment,
    )


# -- e-mail -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(certificates: Certificates) -> Iterator[SmtpPeer]:
    with smtp_peer(certificates) as peer:
        yield peer


def email_settings(port: int, ca_file: Path | None, **overrides: object) -> EmailChannelSettings:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "sender": "ordo@example.com",
        "recipients": ("desk@example.com", "risk@example.com"),
        "ca_file": ca_file,
        **overrides,
    }
    return EmailChannelSettings.model_validate(fields)


async def test_an_email_goes_out_over_starttls_after_a_login_with_the_chart(
    smtp: SmtpPeer, certificates: Certificates
) -> None:
    channel = EmailChannel(email_settings(smtp.port, certificates.ca_file), PASSWORD)
    text = "End of day 2025-01-15 (UTC)\nmain · grid · USDT\nToday: 3 trades · P&L +19.04"

    await channel.send(outgoing(text, attachment=CHART))

    [mail] = smtp.mailbox.messages
    assert smtp.mailbox.logins == [USER]
    assert smtp.mailbox.envelopes == [
        ("ordo@example.com", ["desk@example.com", "risk@example.com"])
    ]
    assert mail["Subject"] == "[Ordo] End of day 2025-01-15 (UTC)"
    assert mail["Message-ID"] == "<ordo.01J0-report.7@example.com>"  # the same on a retry
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().splitlines() == text.splitlines()
    [chart] = list(mail.iter_attachments())
    assert (chart.get_filename(), chart.get_content()) == (CHART.filename, CHART.content)


# The peer's own warning: it needs telling that a connection TLS from its first byte is TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_an_email_goes_out_over_tls_from_the_first_byte(certificates: Certificates) -> None:
    with smtp_peer(certificates, starttls=False) as peer:
        settings = email_settings(peer.port, certificates.ca_file, security=SmtpSecurity.TLS)
        channel = EmailChannel(settings, PASSWORD)

        await channel.send(
            Outgoing(1, "m-1", "breaker", "critical", "Venue paper (main): breaker open")
        )

    [mail] = peer.mailbox.messages
    assert mail["Subject"] == "[Ordo] CRITICAL: Venue paper (main): breaker open"


async def test_a_wrong_smtp_password_is_a_refusal(
    smtp: SmtpPeer, certificates: Certificates
) -> None:
    channel = EmailChannel(email_settings(smtp.port, certificates.ca_file), "wrong")

    with pytest.raises(ChannelRejected, match="refused the login") as refused:
        await channel.send(outgoing("x"))

    assert "wrong" not in str(refused.value)
    assert smtp.mailbox.messages == []


async def test_a_mailbox_that_defers_is_unavailable_for_now(
    smtp: SmtpPeer, certificates: Certificates
) -> None:
    smtp.mailbox.defer = True
    channel = EmailChannel(email_settings(smtp.port, certificates.ca_file), PASSWORD)

    with pytest.raises(ChannelUnavailable, match="deferred the mail: 451"):
        await channel.send(outgoing("x"))


async def test_an_smtp_server_that_is_down_is_unavailable(certificates: Certificates) -> None:
    channel = EmailChannel(email_settings(free_port(), certificates.ca_file), PASSWORD)

    with pytest.raises(ChannelUnavailable):
        await channel.send(outgoing("x"))


async def test_a_certificate_the_channel_does_not_trust_is_never_given_the_password(
    smtp: SmtpPeer,
) -> None:
    channel = EmailChannel(email_settings(smtp.port, ca_file=None), PASSWORD)

    with pytest.raises(ChannelUnavailable, match="certificate verify failed"):
        await channel.send(outgoing("x"))

    assert smtp.mailbox.logins == []


# -- Telegram -----------------------------------------------------------------------------------


@pytest.fixture
async def bot_api() -> AsyncIterator[HttpPeer]:
    async with http_peer() as peer:
        yield peer


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def telegram(bot_api: HttpPeer, client: httpx.AsyncClient) -> TelegramChannel:
    return TelegramChannel(bot_api.url, TOKEN, "-1001234", client, timeout_seconds=5)


async def test_telegram_sends_plain_text_to_the_chat(
    bot_api: HttpPeer, client: httpx.AsyncClient
) -> None:
    await telegram(bot_api, client).send(outgoing("Filled: BUY 0.5 BTC/USDT @ 60000 <b>"))

    [request] = bot_api.received
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.json() == {"chat_id": "-1001234", "text": "Filled: BUY 0.5 BTC/USDT @ 60000 <b>"}


async def test_telegram_sends_the_chart_as_a_photo_with_a_caption(
    bot_api: HttpPeer, client: httpx.AsyncClient
) -> None:
    await telegram(bot_api, client).send(outgoing("x" * 2000, attachment=CHART))

    [request] = bot_api.received
    assert request.path == f"/bot{TOKEN}/sendPhoto"
    form = request.form()
    assert form["chat_id"] == b"-1001234"
    assert form["caption"].decode() == "x" * 1023 + "…"  # Telegram's captions stop at 1024
    assert form["photo"] == CHART.content


async def test_telegram_rate_limiting_waits_as_long_as_the_bot_api_asks(
    bot_api: HttpPeer, client: httpx.AsyncClient
) -> None:
    bot_api.answer = Answer(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        },
    )

    with pytest.raises(ChannelUnavailable, match="HTTP 429: Too Many Requests") as limited:
        await telegram(bot_api, client).send(outgoing("x"))

    assert limited.value.retry_after == timedelta(seconds=7)


async def test_a_telegram_refusal_says_why_and_never_shows_the_token(
    bot_api: HttpPeer, client: httpx.AsyncClient
) -> None:
    bot_api.answer = Answer(
        403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked"}
    )

    with pytest.raises(ChannelRejected, match="HTTP 403 Forbidden: bot was kicked") as refused:
        await telegram(bot_api, client).send(outgoing("x"))

    assert TOKEN not in str(refused.value)


async def test_an_unreachable_telegram_never_shows_the_token(client: httpx.AsyncClient) -> None:
    channel = TelegramChannel(
        f"http://127.0.0.1:{free_port()}", TOKEN, "-1", client, timeout_seconds=5
    )

    with pytest.raises(ChannelUnavailable, match="Telegram unreachable") as down:
        await channel.send(outgoing("x"))

    assert TOKEN not in str(down.value)


async def test_the_notifier_never_logs_the_bot_token(
    bot_api: HttpPeer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = NotifierSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'n.db'}",
        channels={"telegram": {"chat_id": "-1", "api_url": bot_api.url}},  # type: ignore[arg-type]
        telegram_bot_token=TOKEN,  # type: ignore[arg-type]
    )
    build(settings, telemetry=False)  # sets up the notifier's logging
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        await configured_channels(settings, http)["telegram"].send(outgoing("x"))

    assert len(bot_api.received) == 1
    assert TOKEN not in caplog.text


# -- a Telegram outage, end to end through the dispatcher -----------------------------------------


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


async def telegram_dispatcher(
    db: Database, channel: TelegramChannel, clock: Clock, *, breaker_threshold: int
) -> Dispatcher:
    breakers = Breakers(
        BreakerSettings(failure_threshold=breaker_threshold, recovery_seconds=3600),
        registry=CollectorRegistry(),
    )
    await breakers.start()
    return Dispatcher(
        db,
        {"telegram": channel},
        breakers,
        rate_limits={"telegram": 20},
        give_up_after=timedelta(hours=24),
        retention=timedelta(days=7),
        clock=clock,
    )


async def record_alerts(db: Database, clock: Clock, count: int) -> None:
    router = Notifications(
        {"telegram": AttachmentSupport.APART}, {}, dedupe_window=timedelta(0), clock=clock
    )
    async with db.session() as session:
        for n in range(count):
            notification = Notification(
                EventKind.DENIAL, Severity.WARNING, f"Order denied #{n}", "", topic=f"denial:{n}"
            )
            await router.record(session, f"m-{n}", notification)
        await session.commit()


async def delivery_rows(db: Database) -> list[dict[str, object]]:
    async with db.session() as session:
        query = select(store.deliveries).order_by(store.deliveries.c.id)
        return [dict(row._mapping) for row in (await session.execute(query)).all()]


async def test_deliveries_wait_out_a_telegram_outage_and_go_out_when_it_returns(
    db: Database, bot_api: HttpPeer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    sender = await telegram_dispatcher(db, telegram(bot_api, client), clock, breaker_threshold=1000)
    await record_alerts(db, clock, 3)

    bot_api.answer = Answer(502, {"ok": False, "description": "Bad Gateway"})
    assert await sender.dispatch_due() == 0
    await bot_api.stop()  # then down hard: connections refused
    clock.now += timedelta(minutes=1)
    assert await sender.dispatch_due() == 0
    rows = await delivery_rows(db)
    assert [(r["status"], r["attempts"]) for r in rows] == [("pending", 2)] * 3
    assert "Telegram unreachable" in str(rows[0]["last_error"])

    await bot_api.start()
    bot_api.answer = Answer()
    clock.now += timedelta(minutes=1)
    assert await sender.dispatch_due() == 3

    assert [r.json()["text"] for r in bot_api.received] == [f"Order denied #{n}" for n in range(3)]
    assert {r["status"] for r in await delivery_rows(db)} == {"sent"}


async def test_an_open_breaker_stops_calling_telegram_and_counts_no_attempt(
    db: Database, bot_api: HttpPeer, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    sender = await telegram_dispatcher(db, telegram(bot_api, client), clock, breaker_threshold=2)
    await record_alerts(db, clock, 5)
    bot_api.answer = Answer(503, {"ok": False, "description": "Service Unavailable"})

    await sender.dispatch_due()

    assert len(bot_api.refused) == 2  # then the breaker opened: the other three were not tried
    rows = await delivery_rows(db)
    assert [r["attempts"] for r in rows] == [1, 1, 0, 0, 0]
    assert all(r["status"] == "pending" for r in rows)
    assert "circuit breaker 'channel:telegram' is open" in str(rows[-1]["last_error"])


# -- the end-of-day report, from the schedule to the peers --------------------------------------


async def test_the_scheduled_report_reaches_email_with_its_chart_and_telegram_as_a_photo(
    db: Database,
    bot_api: HttpPeer,
    client: httpx.AsyncClient,
    smtp: SmtpPeer,
    certificates: Certificates,
) -> None:
    clock = Clock()
    channels: dict[str, Channel] = {
        "telegram": telegram(bot_api, client),
        "email": EmailChannel(email_settings(smtp.port, certificates.ca_file), PASSWORD),
    }
    router = Notifications(
        {name: channel.attachments for name, channel in channels.items()},
        {},
        dedupe_window=timedelta(minutes=15),
        clock=clock,
    )
    breakers = Breakers(BreakerSettings(), registry=CollectorRegistry())
    await breakers.start()
    sender = Dispatcher(
        db,
        channels,
        breakers,
        rate_limits={"telegram": 20, "email": 6},
        give_up_after=timedelta(hours=24),
        retention=timedelta(days=7),
        clock=clock,
    )
    reports = Reports(db, ReportSettings(), router, clock=clock)

    report_date = await reports.send_when_due()
    assert await sender.dispatch_due() == 3

    title = f"End of day {report_date} (UTC)"
    [mail] = smtp.mailbox.messages
    assert mail["Subject"] == f"[Ordo] {title}"
    [chart] = list(mail.iter_attachments())
    assert chart.get_content_type() == "image/png"
    text, photo = bot_api.received
    assert text.path.endswith("/sendMessage") and text.json()["text"].startswith(title)
    assert photo.path.endswith("/sendPhoto")
    assert photo.form()["caption"].decode() == title
    assert photo.form()["photo"] == chart.get_content()
