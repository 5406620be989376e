"""The end-of-day report: answered on request (``ordo report``) and sent on schedule.

It is computed from the position changes the notifier itself recorded, never from another
service's store.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from ordo.contracts.reports import DailyReportView, QueryDailyReport
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.store import Database
from ordo.notifier import store
from ordo.notifier.chart import equity_chart
from ordo.notifier.config import ReportSettings
from ordo.notifier.domain.analytics import closed_trades
from ordo.notifier.domain.report import DailyReport, ReportWindow, daily_report
from ordo.notifier.handlers import Notifications

log = get_logger(__name__)
PRODUCER = "notifier"


class Reports:
    def __init__(
        self,
        db: Database,
        settings: ReportSettings,
        notifications: Notifications,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._settings = settings
        self._notifications = notifications
        self._clock = clock

    async def daily_report(
        self, report_date: date, account: str | None = None, strategy: str | None = None
    ) -> DailyReport:
        window = ReportWindow(report_date, self._settings.lookback_days)
        async with self._db.session() as session:
            active = await store.active_positions(
                session, window.period_start, window.end, account, strategy
            )
            steps = [
                step
                for key in sorted(active)
                for step in await store.position_steps(
                    session, key, window.period_start, window.end
                )
            ]
        return daily_report(window, closed_trades(steps), active)

    async def answer(self, query: QueryDailyReport) -> DailyReportView:
        """The responder of ``query.report.v1``."""
        report = await self.daily_report(query.report_date, query.account, query.strategy)
        chart = await chart_of(report) if query.include_chart else None
        return DailyReportView.caused_by(
            query,
            producer=PRODUCER,
            report_date=query.report_date,
            lookback_days=report.window.lookback_days,
            sections=report.sections,
            text=report.text,
            chart_png=chart,
        )

    def due_date(self, now: datetime) -> date:
        """The last day whose report is due: a day's report goes out at ``send_at`` next day."""
        today = now.astimezone(UTC).date()
        send_today = datetime.combine(today, self._settings.send_at, tzinfo=UTC)
        return today - timedelta(days=1 if now >= send_today else 2)

    async def send_when_due(self) -> date | None:
        """Hand the last due report to its channels, once (replicas agree through the store).

        After a stop that spans several send times, only the last due report is sent.
        """
        now = self._clock()
        report_date = self.due_date(now)
        async with self._db.session() as session:
            if await store.report_scheduled(session, report_date):
                return None
        report = await self.daily_report(report_date)
        chart = await chart_of(report)
        async with self._db.session() as session:
            if not await store.mark_report_scheduled(session, report_date, now):
                return None  # another replica did
            await self._notifications.record(
                session, f"report:{report_date.isoformat()}", report.notification(chart)
            )
            await session.commit()
        log.info("end-of-day report handed to the channels", report_date=report_date.isoformat())
        return report_date

    async def prune_history(self) -> int:
        """Forget position changes older than the history the reports need."""
        cutoff = self._clock() - timedelta(days=self._settings.history_days)
        async with self._db.session() as session:
            pruned = await store.prune_position_changes(session, cutoff)
            await store.prune_scheduled_reports(session, cutoff.date())
            await session.commit()
        if pruned:
            log.info("old position changes pruned", changes=pruned)
        return pruned


async def chart_of(report: DailyReport) -> bytes:
    """The report's equity curves as a PNG, drawn off the event loop."""
    window = report.window
    title = f"Equity, {window.lookback_days} days to {window.report_date.isoformat()} (UTC)"
    return await asyncio.to_thread(
        equity_chart, title, report.curves, window.period_start, window.end
    )
