"""The end-of-day report: sections per account and strategy, and a text for a phone. Pure."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal

from ordo.contracts.enums import Severity
from ordo.contracts.reports import Performance, ReportSection
from ordo.notifier.domain.analytics import (
    ZERO,
    PositionKey,
    Trade,
    performance,
    sharpe_ratio,
    sortino_ratio,
)
from ordo.notifier.domain.notifications import Attachment, EventKind, Notification

CENTS = Decimal("0.01")
SMALL = Decimal("1e-8")
TENTH = Decimal("0.1")
_WIDE = Context(prec=60, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class ReportWindow:
    """The report date (a UTC day) and the lookback window that ends with it."""

    report_date: date
    lookback_days: int

    @property
    def day_start(self) -> datetime:
        return datetime.combine(self.report_date, time(0), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.day_start + timedelta(days=1)

    @property
    def period_start(self) -> datetime:
        return self.end - timedelta(days=self.lookback_days)

    def days_since(self, first_activity: datetime) -> list[date]:
        """The window's days from the first one with any activity: a day without a closed
        trade is a day of zero P&L, but the days before the first activity are not days of the
        strategy at all."""
        first = max(self.period_start.date(), first_activity.astimezone(UTC).date())
        return [first + timedelta(days=n) for n in range((self.report_date - first).days + 1)]


@dataclass(frozen=True)
class EquityCurve:
    """Cumulative P&L of closed trades over the window: (period start, 0), then one point per
    trade."""

    label: str
    points: tuple[tuple[datetime, Decimal], ...]


@dataclass(frozen=True)
class DailyReport:
    window: ReportWindow
    sections: tuple[ReportSection, ...]
    curves: tuple[EquityCurve, ...]

    @property
    def title(self) -> str:
        return f"End of day {self.window.report_date.isoformat()} (UTC)"

    @property
    def body(self) -> str:
        if not self.sections:
            return f"No trading recorded in the last {self.window.lookback_days} days."
        return "\n\n".join(section_text(s, self.window.lookback_days) for s in self.sections)

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"

    def notification(self, chart: bytes | None) -> Notification:
        day = self.window.report_date.isoformat()
        return Notification(
            kind=EventKind.REPORT,
            severity=Severity.INFO,
            title=self.title,
            body=self.body,
            topic=f"report:{day}",
            attachment=Attachment(f"equity-{day}.png", chart) if chart is not None else None,
        )


def daily_report(
    window: ReportWindow, trades: Sequence[Trade], active: Mapping[PositionKey, datetime]
) -> DailyReport:
    """Sections per account and settlement currency: one per strategy, and the account's total
    when it has several. ``active`` maps each position that changed in the window to the time
    of its first change ever; ``trades`` are the round trips they closed."""
    groups: dict[tuple[str, str], dict[str, list[PositionKey]]] = {}
    for key in active:
        groups.setdefault((key.account, key.currency), {}).setdefault(key.strategy, []).append(key)
    sections: list[ReportSection] = []
    curves: list[EquityCurve] = []
    for (account, currency), strategies in sorted(groups.items()):
        members: list[tuple[str | None, list[PositionKey]]] = [
            (name, strategies[name]) for name in sorted(strategies)
        ]
        if len(strategies) > 1:
            members.append((None, [key for _, keys in members for key in keys]))
        for strategy, keys in members:
            section, curve = _section(window, account, currency, strategy, keys, trades, active)
            sections.append(section)
            curves.append(curve)
    return DailyReport(window, tuple(sections), tuple(curves))


def _section(
    window: ReportWindow,
    account: str,
    currency: str,
    strategy: str | None,
    keys: Sequence[PositionKey],
    trades: Sequence[Trade],
    active: Mapping[PositionKey, datetime],
) -> tuple[ReportSection, EquityCurve]:
    members = set(keys)
    period = [
        t for t in trades if t.key in members and window.period_start <= t.closed_at < window.end
    ]
    today = [t for t in period if t.closed_at >= window.day_start]
    pnl_by_day: dict[date, Decimal] = {}
    for trade in period:
        day = trade.closed_at.astimezone(UTC).date()
        pnl_by_day[day] = pnl_by_day.get(day, ZERO) + trade.pnl
    days = window.days_since(min(active[key] for key in keys))
    daily = [pnl_by_day.get(day, ZERO) for day in days]
    section = ReportSection(
        account=account,
        strategy=strategy,
        currency=currency,
        day=performance([t.pnl for t in today]),
        period=performance([t.pnl for t in period]),
        sharpe=sharpe_ratio(daily),
        sortino=sortino_ratio(daily),
    )
    return section, _curve(section_label(section), window.period_start, period)


def _curve(label: str, start: datetime, trades: Sequence[Trade]) -> EquityCurve:
    points = [(start, ZERO)]
    for trade in trades:
        points.append((trade.closed_at, points[-1][1] + trade.pnl))
    return EquityCurve(label, tuple(points))


# -- the text -------------------------------------------------------------------------------


def section_label(section: ReportSection) -> str:
    strategy = section.strategy or "all strategies"
    return f"{section.account} · {strategy} · {section.currency}"


def section_text(section: ReportSection, lookback_days: int) -> str:
    day, period = section.day, section.period
    lines = [section_label(section)]
    if day.trades:
        lines.append(f"Today: {_trades(day.trades)} · P&L {money(day.realised_pnl, signed=True)}")
        lines.append(f"Win rate {percent(day.win_rate)} · profit factor {ratio(day.profit_factor)}")
        lines.extend(_wins_and_losses(day))
        lines.append(f"Max drawdown {money(day.max_drawdown)}")
    else:
        lines.append("Today: no closed trades")
    lines.append(
        f"Last {lookback_days} days: {_trades(period.trades)} · "
        f"P&L {money(period.realised_pnl, signed=True)}"
    )
    lines.append(
        f"Max drawdown {money(period.max_drawdown)} · Sharpe {ratio(section.sharpe)} · "
        f"Sortino {ratio(section.sortino)}"
    )
    return "\n".join(lines)


def _trades(count: int) -> str:
    return f"{count} trade" if count == 1 else f"{count} trades"


def _wins_and_losses(day: Performance) -> list[str]:
    lines = []
    if day.average_win is not None and day.largest_win is not None:
        lines.append(
            f"Wins {day.wins}: avg {money(day.average_win, signed=True)} · "
            f"largest {money(day.largest_win, signed=True)}"
        )
    if day.average_loss is not None and day.largest_loss is not None:
        lines.append(
            f"Losses {day.losses}: avg {money(day.average_loss)} · "
            f"largest {money(day.largest_loss)}"
        )
    return lines


def money(value: Decimal, *, signed: bool = False) -> str:
    """An amount rounded for reading: to cents, or to 8 places when below one unit (BTC)."""
    small = value != ZERO and abs(value) < 1
    text = format(value.quantize(SMALL if small else CENTS, context=_WIDE), ",f")
    if small:
        text = text.rstrip("0")
    return f"+{text}" if signed and value > ZERO else text


def ratio(value: Decimal | None) -> str:
    return "n/a" if value is None else format(value.quantize(CENTS, context=_WIDE), "f")


def percent(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    text = format((value * 100).quantize(TENTH, context=_WIDE), "f")
    return f"{text.removesuffix('.0')}%"
