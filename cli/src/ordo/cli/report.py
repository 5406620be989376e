"""``ordo report``: the end-of-day report, as the notifier computes it (request/reply).

The command registers itself on the CLI's ``app`` when :mod:`ordo.cli.main` imports this module
(last, after the options it shares).
"""

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ordo.cli import client
from ordo.cli.errors import CliError
from ordo.cli.main import (
    OPERATOR,
    AsJson,
    Timeout,
    VarDir,
    app,
    build,
    err,
    print_json,
    reporting_errors,
)
from ordo.contracts.envelope import new_message_id
from ordo.contracts.reports import DailyReportView, QueryDailyReport


@app.command()
def report(
    report_date: Annotated[
        datetime | None,
        typer.Option(
            "--date", "-d", formats=["%Y-%m-%d"], help="The UTC day (default: yesterday)."
        ),
    ] = None,
    account: Annotated[str | None, typer.Option("--account", "-a")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy")] = None,
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            dir_okay=False,
            help="Where to write the equity-curve PNG (default: ordo-report-<date>.png here).",
        ),
    ] = None,
    no_chart: Annotated[bool, typer.Option("--no-chart", help="Write no chart.")] = False,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    # The notifier draws the chart on request: its first drawing loads matplotlib.
    timeout: Timeout = 20.0,
) -> None:
    """The end-of-day report per account and strategy: trades, P&L after fees, win rate, profit
    factor, average and largest win and loss, drawdown, Sharpe and Sortino; and the equity curve.
    """
    with reporting_errors():
        day = report_date.date() if report_date is not None else _yesterday()
        query = build(
            QueryDailyReport,
            correlation_id=new_message_id(),
            producer=OPERATOR,
            report_date=day,
            account=account,
            strategy=strategy,
            include_chart=not no_chart,
        )
        view = asyncio.run(client.ask_stack(var_dir, query, DailyReportView, timeout))
        written = None
        if not no_chart:
            written = _write_chart(view, chart or Path(f"ordo-report-{day.isoformat()}.png"))
        if as_json:
            print_json(
                {
                    "report_date": day.isoformat(),
                    "lookback_days": view.lookback_days,
                    "sections": [section.model_dump(mode="json") for section in view.sections],
                    "chart": str(written) if written is not None else None,
                }
            )
            return
        typer.echo(view.text)
        if written is not None:
            err().print(f"[dim]chart: {escape(str(written))}[/]")


def _yesterday() -> date:
    return (datetime.now(UTC) - timedelta(days=1)).date()


def _write_chart(view: DailyReportView, path: Path) -> Path:
    if view.chart_png is None:
        raise CliError("the notifier sent no chart (is it older than this CLI?)")
    try:
        path.write_bytes(view.chart_png)
    except OSError as error:
        raise CliError(f"cannot write the chart to {path}: {error.strerror}") from None
    return path
