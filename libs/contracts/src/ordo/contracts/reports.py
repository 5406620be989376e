"""The end-of-day report, asked of the notifier over request/reply (the operator CLI)."""

from datetime import date

from pydantic import ConfigDict, Field

from ordo.contracts.envelope import Contract, Message
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_, Money


class QueryDailyReport(Message):
    schema_name = "QueryDailyReport"

    report_date: date = Field(description="The UTC date to report on")
    account: Name | None = None
    strategy: Name | None = None
    include_chart: bool = Field(default=True, description="Render the equity-curve PNG")


class Performance(Contract):
    """Closed trades over a span of time.

    A trade is a round trip: from a position opening until it is flat again (or reversed); DCA
    legs, pyramids and partial take-profits are part of it. Its P&L is after every fee of both
    sides, and it counts on the day it closes.
    """

    trades: int = Field(ge=0)
    wins: int = Field(ge=0)
    losses: int = Field(ge=0)
    realised_pnl: Money = Field(description="The sum of the trades' P&L, after fees")
    win_rate: Decimal_ | None = Field(description="wins / trades (0 to 1); none without trades")
    profit_factor: Decimal_ | None = Field(
        description="Gross profit / gross loss; none without a losing trade"
    )
    average_win: Money | None
    average_loss: Money | None = Field(description="Negative, like the losses it averages")
    largest_win: Money | None
    largest_loss: Money | None
    max_drawdown: Money = Field(
        description="The deepest fall of the cumulative P&L below its running peak (>= 0)"
    )


class ReportSection(Contract):
    """One account and strategy (or the account's total) in one settlement currency."""

    account: Name
    strategy: Name | None = Field(description="None: every strategy of the account together")
    currency: Name = Field(description="What the amounts are in: the markets' settlement currency")
    day: Performance = Field(description="The trades closed on the report date")
    period: Performance = Field(description="The trades closed in the lookback window")
    sharpe: Decimal_ | None = Field(
        description="Of the daily returns over the lookback window, annualised (365 days)"
    )
    sortino: Decimal_ | None = Field(
        description="Of the daily returns over the lookback window, annualised (365 days)"
    )


class DailyReportView(Message):
    schema_name = "DailyReportView"

    # Bytes travel in JSON as (URL-safe) base64; in Python they stay the PNG's own bytes.
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    report_date: date
    lookback_days: int = Field(ge=1, description="The window of the period figures, in days")
    sections: tuple[ReportSection, ...]
    text: str = Field(description="The report as the notifier's channels send it")
    chart_png: bytes | None = Field(default=None, description="The equity curve (PNG)")
