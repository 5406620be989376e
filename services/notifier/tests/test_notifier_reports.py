"""The end-of-day report: made from the position changes the notifier consumed, answered over
request/reply (also to `ordo report` on a real NATS server), and sent on schedule, once."""

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import nats
import pytest
from faststream.nats import TestNatsBroker
from nats.aio.msg import Msg
from sqlalchemy import select
from typer.testing import CliRunner

from ordo.cli.main import app as cli
from ordo.contracts.enums import Severity
from ordo.contracts.orders import PositionChanged, PositionView
from ordo.contracts.reports import DailyReportView, QueryDailyReport
from ordo.contracts.subjects import Service, Subject
from ordo.kit.embedded import NatsCredentials, NatsServer
from ordo.kit.service import ServiceKit
from ordo.kit.settings import NatsSettings
from ordo.kit.testing import eventually
from ordo.notifier import store
from ordo.notifier.app import build
from ordo.notifier.channels import AttachmentSupport
from ordo.notifier.config import NotifierSettings, ReportSettings
from ordo.notifier.domain.analytics import PositionKey, PositionStep, closed_trades
from ordo.notifier.domain.notifications import EventKind
from ordo.notifier.domain.report import ReportWindow, daily_report
from ordo.notifier.handlers import Notifications
from ordo.notifier.reports import Reports

DAY = date(2025, 1, 15)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# (quantity, realised P&L, fees) after each fill: three round trips of 9.57, -10.19 and 19.66
# (worked out in test_notifier_analytics.py).
LIFE = [
    ("1", "-0.10", "0.10"),
    ("2", "-0.21", "0.21"),
    ("1", "14.67", "0.33"),
    ("0", "9.57", "0.43"),
    ("1", "9.47", "0.53"),
    ("-2", "-0.80", "0.80"),
    ("0", "19.04", "0.96"),
]


def position_changes(strategy: str = "grid", day: date = DAY) -> list[PositionChanged]:
    noon = datetime.combine(day, time(12), tzinfo=UTC)
    changes = []
    for version, (quantity, realised, fees) in enumerate(LIFE, start=1):
        view = PositionView(
            account="main",
            strategy=strategy,
            venue="paper",
            symbol="BTC/USDT",
            quantity=Decimal(quantity),
            average_entry=Decimal(100) if quantity != "0" else None,
            realised_pnl=Decimal(realised),
            fees=Decimal(fees),
            version=version,
            updated_at=noon + timedelta(minutes=version),
        )
        changes.append(
            PositionChanged(
                correlation_id=f"sig-{version}",
                producer="order",
                position=view,
                order_id=f"ord-{version}",
                fill_id=f"fill-{version}",
            )
        )
    return changes


KEY = PositionKey("main", "grid", "paper", "BTC/USDT")
STEPS = [
    PositionStep(
        KEY,
        change.position.version,
        change.position.quantity,
        change.position.realised_pnl,
        change.position.fees,
        change.position.updated_at,
    )
    for change in position_changes()
]


def query(**fields: object) -> QueryDailyReport:
    return QueryDailyReport(correlation_id="ops", producer="operator", report_date=DAY, **fields)  # type: ignore[arg-type]


# -- on FastStream's in-memory broker -----------------------------------------------------------


@pytest.fixture
async def notifier(tmp_path: Path) -> AsyncIterator[ServiceKit]:
    settings = NotifierSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'n.db'}",
        # The first chart loads matplotlib, which takes seconds on a busy machine.
        nats=NatsSettings(request_timeout_seconds=60),
    )
    kit = build(settings, telemetry=False)
    await kit.db.create_all(store.metadata)
    await kit.breakers.start()
    yield kit
    await kit.db.close()


async def test_the_report_is_made_from_the_position_changes_the_notifier_consumed(
    notifier: ServiceKit,
) -> None:
    async with TestNatsBroker(notifier.broker) as broker:
        for change in position_changes():
            await broker.publish(change.to_json(), str(Subject.POSITION_CHANGED), stream="ORDERS")
        # A redelivered change counts once.
        repeat = position_changes()[3]
        await broker.publish(repeat.to_json(), str(Subject.POSITION_CHANGED), stream="ORDERS")
        asked = query()
        view = await notifier.request(asked, DailyReportView)
        without_chart = await notifier.request(query(include_chart=False), DailyReportView)

    [section] = view.sections
    assert (section.account, section.strategy, section.currency) == ("main", "grid", "USDT")
    assert (section.day.trades, section.day.wins, section.day.losses) == (3, 2, 1)
    assert section.day.realised_pnl == Decimal("19.04")
    assert section.day.largest_loss == Decimal("-10.19")
    assert view.text.startswith("End of day 2025-01-15 (UTC)\nmain · grid · USDT\nToday: 3 trades")
    assert view.causation_id == asked.message_id
    assert view.chart_png is not None and view.chart_png.startswith(PNG_SIGNATURE)
    assert without_chart.chart_png is None


async def test_a_report_filtered_to_an_unknown_strategy_is_empty(notifier: ServiceKit) -> None:
    async with TestNatsBroker(notifier.broker) as broker:
        for change in position_changes():
            await broker.publish(change.to_json(), str(Subject.POSITION_CHANGED), stream="ORDERS")
        view = await notifier.request(
            query(strategy="nothing", include_chart=False), DailyReportView
        )

    assert view.sections == ()
    assert view.text.endswith("No trading recorded in the last 30 days.")


# -- on schedule --------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_the_report_goes_out_once_at_the_configured_time_with_its_chart(
    notifier: ServiceKit,
) -> None:
    async with notifier.db.session() as session:
        for change in position_changes():
            await store.record_position_change(session, change)
        await session.commit()
    clock = Clock(datetime(2025, 1, 16, 0, 5, tzinfo=UTC))
    channels = {
        "log": AttachmentSupport.NONE,
        "telegram": AttachmentSupport.APART,
        "email": AttachmentSupport.WITH_TEXT,
    }
    routes = {EventKind.REPORT: {"log": Severity.INFO, "telegram": Severity.INFO}}
    everywhere = Notifications(channels, {}, dedupe_window=timedelta(minutes=15), clock=clock)
    routed = Notifications(channels, routes, dedupe_window=timedelta(minutes=15), clock=clock)
    settings = ReportSettings(send_at="00:10")  # type: ignore[arg-type]
    replica = Reports(notifier.db, settings, routed, clock=clock)
    other_replica = Reports(notifier.db, settings, everywhere, clock=clock)

    assert replica.due_date(clock.now) == date(2025, 1, 14)  # before 00:10: the day before
    clock.now = datetime(2025, 1, 16, 0, 10, tzinfo=UTC)
    assert await replica.send_when_due() == DAY
    assert await other_replica.send_when_due() is None
    assert await replica.send_when_due() is None

    async with notifier.db.session() as session:
        rows = (await session.execute(select(store.deliveries))).mappings().all()
    by_message = {(r["channel"], r["message_id"]): r for r in rows}
    assert set(by_message) == {
        ("log", "report:2025-01-15"),
        ("telegram", "report:2025-01-15"),
        ("telegram", "report:2025-01-15:attachment"),  # a photo has a short caption
    }
    text = by_message[("log", "report:2025-01-15")]
    assert text["attachment"] is None
    assert "Today: 3 trades · P&L +19.04" in text["text"]
    photo = by_message[("telegram", "report:2025-01-15:attachment")]
    assert photo["text"] == "End of day 2025-01-15 (UTC)"
    assert photo["attachment"].startswith(PNG_SIGNATURE)
    assert photo["attachment_name"] == "equity-2025-01-15.png"


async def test_an_email_report_carries_its_chart_in_the_same_message(
    notifier: ServiceKit,
) -> None:
    clock = Clock(datetime(2025, 1, 16, 1, 0, tzinfo=UTC))
    router = Notifications(
        {"email": AttachmentSupport.WITH_TEXT}, {}, dedupe_window=timedelta(0), clock=clock
    )
    reports = Reports(notifier.db, ReportSettings(), router, clock=clock)

    assert await reports.send_when_due() == DAY

    async with notifier.db.session() as session:
        [row] = (await session.execute(select(store.deliveries))).mappings().all()
    assert row["text"].endswith("No trading recorded in the last 30 days.")
    assert row["attachment"].startswith(PNG_SIGNATURE)


# -- `ordo report` against the notifier on a real NATS server -----------------------------------


@pytest.fixture
async def running_notifier(
    nats_server: NatsServer, nats_credentials: NatsCredentials, tmp_path: Path
) -> AsyncIterator[ServiceKit]:
    user = nats_credentials.for_service(Service.NOTIFIER)
    settings = NotifierSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
        nats=NatsSettings(url=nats_server.url, user=user.name, password=user.password),
        report=ReportSettings(scheduled=False),
    )
    kit = build(settings, telemetry=False)
    await kit.start(migrate=True, serve_http=False)
    yield kit
    await kit.stop()


async def test_ordo_report_prints_the_report_and_writes_the_chart(
    running_notifier: ServiceKit,
    nats_server: NatsServer,
    nats_credentials: NatsCredentials,
    tmp_path: Path,
) -> None:
    # Recent: the notifier forgets position changes older than its history.
    day = datetime.now(UTC).date() - timedelta(days=1)
    admin = nats_credentials.admin
    nc = await nats.connect(nats_server.url, user=admin.name, password=admin.password)
    try:
        js = nc.jetstream()
        for change in position_changes(strategy="cli-grid", day=day):
            await js.publish(
                str(Subject.POSITION_CHANGED),
                change.to_json(),
                stream="ORDERS",
                headers={"Nats-Msg-Id": change.message_id},
            )
    finally:
        await nc.close()

    async def consumed() -> bool:
        async with running_notifier.db.session() as session:
            rows = await session.execute(select(store.position_changes))
            return len(rows.all()) == len(LIFE)

    await eventually(consumed, what="the position changes consumed")
    operator = nats_credentials.for_service(Service.OPERATOR)
    env = {
        "ORDO_VAR_DIR": str(tmp_path),  # no stack file: found through ORDO_NATS_URL
        "ORDO_NATS_URL": nats_server.url,
        "ORDO_NATS_USER": operator.name,
        "ORDO_NATS_PASSWORD": operator.password,
    }
    chart = tmp_path / "equity.png"

    printed = await ordo(
        ["report", "--date", day.isoformat(), "--strategy", "cli-grid", "--chart", str(chart)], env
    )

    assert printed.startswith(f"End of day {day.isoformat()} (UTC)\nmain · cli-grid · USDT\n")
    assert "Today: 3 trades · P&L +19.04" in printed
    assert chart.read_bytes().startswith(PNG_SIGNATURE)


async def ordo(arguments: list[str], env: dict[str, str]) -> str:
    """The operator's command, as a person runs it, in a process of its own; its stdout."""
    command = Path(sys.executable).with_name("ordo")
    process = await asyncio.create_subprocess_exec(
        str(command),
        *arguments,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_ordo_report_json_is_the_notifiers_answer(
    nats_server: NatsServer, nats_credentials: NatsCredentials, tmp_path: Path
) -> None:
    """As scripts read it; answered here by a stand-in for the notifier."""
    asked: list[QueryDailyReport] = []
    admin = nats_credentials.admin
    nc = await nats.connect(nats_server.url, user=admin.name, password=admin.password)

    async def notifier(msg: Msg) -> None:
        query = QueryDailyReport.from_json(msg.data)
        asked.append(query)
        report = daily_report(ReportWindow(DAY, 30), closed_trades(STEPS), {KEY: STEPS[0].at})
        view = DailyReportView.caused_by(
            query,
            producer="notifier",
            report_date=query.report_date,
            lookback_days=30,
            sections=report.sections,
            text=report.text,
        )
        await msg.respond(view.to_json())

    subscription = await nc.subscribe(str(Subject.QUERY_REPORT), cb=notifier)
    await nc.flush()
    operator = nats_credentials.for_service(Service.OPERATOR)
    env = {
        "ORDO_VAR_DIR": str(tmp_path),
        "ORDO_NATS_URL": nats_server.url,
        "ORDO_NATS_USER": operator.name,
        "ORDO_NATS_PASSWORD": operator.password,
    }
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["report", "-d", "2025-01-15", "-a", "main", "--no-chart", "--json"],
            env=env,
        )
    finally:
        await subscription.unsubscribe()
        await nc.close()

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    [section] = answer["sections"]
    assert (section["strategy"], section["day"]["trades"], section["day"]["realised_pnl"]) == (
        "grid",
        3,
        "19.04",
    )
    assert (answer["report_date"], answer["chart"]) == ("2025-01-15", None)
    [query] = asked
    assert (query.report_date, query.account, query.include_chart) == (DAY, "main", False)
