"""Rich tables for people; the ``--json`` forms live beside the commands."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ordo.cli.client import Readiness, ServiceEntry, StreamCount
from ordo.cli.spans import Trace, bar_cells
from ordo.contracts.enums import OrderStatus, SignalOutcome
from ordo.contracts.orders import OrderView, PositionView
from ordo.contracts.queries import PnlTotals, RebalanceView, SignalOutcomeView
from ordo.contracts.subjects import DEAD_LETTER_STREAM

SERVICE_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan")
TIMELINE_WIDTH = 40

_STATUS_STYLES = {
    OrderStatus.FILLED: "green",
    OrderStatus.PARTIALLY_FILLED: "cyan",
    OrderStatus.DENIED: "red",
    OrderStatus.REJECTED: "red",
    OrderStatus.CANCELED: "dim",
    OrderStatus.EXPIRED: "dim",
}


def amount(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def orders_table(orders: Sequence[OrderView]) -> Table:
    table = Table(title=f"Orders ({len(orders)})", title_justify="left")
    for column in ("order", "signal", "account", "venue", "symbol", "side", "type"):
        table.add_column(column, no_wrap=column in ("order", "signal"))
    for column in ("quantity", "filled", "avg price"):
        table.add_column(column, justify="right")
    table.add_column("status")
    table.add_column("updated (UTC)")
    for order in orders:
        style = _STATUS_STYLES.get(order.status, "")
        table.add_row(
            order.order_id,
            order.signal_id,
            order.account,
            order.venue,
            order.symbol,
            Text(str(order.side), style="green" if order.side == "buy" else "red"),
            _order_type(order),
            amount(order.quantity),
            amount(order.filled_quantity),
            amount(order.average_fill_price),
            Text(str(order.status) + (f" ({order.reason})" if order.reason else ""), style=style),
            moment(order.updated_at),
        )
    return table


def _order_type(order: OrderView) -> str:
    text = str(order.order_type)
    if order.time_in_force is not None:
        text += f" {order.time_in_force.upper()}"
    if order.reduce_only:
        text += " reduce-only"
    if order.post_only:
        text += " post-only"
    if order.emulated:
        # Held by the OMS until its trigger; released as a plain order after.
        text += " (held)" if order.is_held else " (emulated)"
    return text


def _pnl(value: Decimal | None) -> Text:
    if value is None:
        return Text("no mark", style="dim")
    return Text(amount(value), style="green" if value > 0 else "red" if value < 0 else "")


def positions_table(positions: Sequence[PositionView]) -> Table:
    table = Table(title=f"Positions ({len(positions)})", title_justify="left")
    for column in ("account", "strategy", "venue", "symbol"):
        table.add_column(column)
    for column in ("quantity", "avg entry", "mark", "unrealised", "realised pnl", "fees"):
        table.add_column(column, justify="right")
    table.add_column("updated (UTC)")
    for position in positions:
        side_style = "green" if position.quantity > 0 else "red" if position.quantity < 0 else "dim"
        table.add_row(
            position.account,
            position.strategy,
            position.venue,
            position.symbol,
            Text(amount(position.quantity), style=side_style),
            amount(position.average_entry),
            amount(position.mark_price),
            _pnl(position.unrealised_pnl) if position.quantity else Text(""),
            _pnl(position.realised_pnl),
            amount(position.fees),
            moment(position.updated_at),
        )
    return table


def totals_table(totals: Sequence[PnlTotals]) -> Table:
    table = Table(title="P&L totals", title_justify="left")
    table.add_column("account")
    table.add_column("strategy")
    for column in ("realised (after fees)", "unrealised", "fees", "unmarked"):
        table.add_column(column, justify="right")
    for total in totals:
        table.add_row(
            total.account,
            total.strategy or Text("(all)", style="bold"),
            _pnl(total.realised_pnl),
            _pnl(total.unrealised_pnl),
            amount(total.fees),
            Text(str(total.unmarked_positions), style="yellow" if total.unmarked_positions else ""),
        )
    return table


_OUTCOME_STYLES = {
    SignalOutcome.PLANNED: "green",
    SignalOutcome.UNPLANNABLE: "red",
    SignalOutcome.REFUSED: "red",
    SignalOutcome.DENIED: "red",
    SignalOutcome.QUEUED: "yellow",
}


def signals_table(signals: Sequence[SignalOutcomeView]) -> Table:
    table = Table(title=f"Signals ({len(signals)})", title_justify="left")
    for column in ("signal", "account", "strategy", "venue", "symbol", "intent", "outcome"):
        table.add_column(column, no_wrap=column == "signal")
    table.add_column("reason")
    table.add_column("recorded (UTC)")
    for signal in signals:
        table.add_row(
            signal.signal_id,
            signal.account,
            signal.strategy,
            signal.venue,
            signal.symbol,
            signal.intent.value,
            Text(signal.outcome.value, style=_OUTCOME_STYLES.get(signal.outcome, "")),
            signal.reason or "",
            moment(signal.recorded_at),
        )
    return table


_PHASE_STYLES = {"done": "green", "refused": "red", "selling": "yellow", "buying": "cyan"}


def rebalances_table(rebalances: Sequence[RebalanceView]) -> Table:
    table = Table(title=f"Rebalances ({len(rebalances)})", title_justify="left")
    for column in ("rebalance", "account", "strategy", "venue", "targets", "reserve", "phase"):
        table.add_column(column, no_wrap=column == "rebalance")
    table.add_column("detail")
    table.add_column("updated (UTC)")
    for rebalance in rebalances:
        table.add_row(
            rebalance.rebalance_id,
            rebalance.account,
            rebalance.strategy,
            rebalance.venue,
            " ".join(f"{t.symbol}={amount(t.weight)}" for t in rebalance.targets),
            amount(rebalance.reserve),
            Text(rebalance.phase, style=_PHASE_STYLES.get(rebalance.phase, "")),
            rebalance.detail or "",
            moment(rebalance.updated_at),
        )
    return table


def services_table(
    services: Sequence[ServiceEntry], readiness: dict[str, Readiness], alive: dict[str, bool]
) -> Table:
    table = Table(title="Services", title_justify="left")
    for column in ("service", "url", "pid", "readiness"):
        table.add_column(column)
    for service in services:
        ready = readiness[service.name]
        pid = "" if service.pid is None else str(service.pid)
        if service.pid is not None and not alive[service.name]:
            pid += " (gone)"
        table.add_row(
            service.name,
            service.url,
            pid,
            Text(ready.summary, style="green" if ready.ready else "red"),
        )
    return table


def streams_table(counts: Sequence[StreamCount]) -> Table:
    table = Table(title="JetStream streams", title_justify="left")
    table.add_column("stream")
    table.add_column("messages", justify="right")
    table.add_column("consumers", justify="right")
    table.add_column("holds")
    for count in counts:
        if count.messages is None:
            table.add_row(count.name, Text("missing", style="red"), "", count.description)
            continue
        dead = count.name == DEAD_LETTER_STREAM and count.messages > 0
        table.add_row(
            count.name,
            Text(str(count.messages), style="bold red" if dead else ""),
            str(count.consumers),
            count.description,
        )
    return table


def waterfall(trace: Trace, width: int = TIMELINE_WIDTH) -> Table:
    """One trace: spans indented under their parents, offsets and durations, a scaled bar."""
    colours = {
        service: SERVICE_COLOURS[i % len(SERVICE_COLOURS)]
        for i, service in enumerate(trace.services)
    }
    total = trace.duration_ms
    status = Text(" FAILED", style="bold red") if trace.failed else Text("")
    title = Text.assemble(
        ("trace ", "bold"),
        (trace.trace_id, "bold"),
        f"  {len(trace.rows)} spans, {len(trace.services)} services, {total:.1f} ms, "
        f"started {trace.start.isoformat(timespec='milliseconds')}",
        status,
    )
    table = Table(title=title, title_justify="left")
    table.add_column("span", no_wrap=True)
    table.add_column("service", no_wrap=True)
    table.add_column("start ms", justify="right", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("timeline", no_wrap=True, min_width=width)
    for row in trace.rows:
        span = row.span
        colour = colours[span.service]
        label = Text("  " * row.depth + ("└ " if row.depth else ""))
        label.append(span.name, style="bold red" if span.failed else "")
        if span.failed and span.status_message:
            label.append(f"  ✗ {span.status_message}", style="red")
        start, length = bar_cells(row.offset_ms, span.duration_ms, total, width)
        bar = Text(" " * start)
        bar.append("█" * length, style="red" if span.failed else colour)
        bar.append(" " * (width - start - length))
        table.add_row(
            label,
            Text(span.service, style=colour),
            f"{row.offset_ms:.1f}",
            f"{span.duration_ms:.1f}",
            bar,
        )
    return table


def waterfalls(traces: Sequence[Trace]) -> Group:
    return Group(*(waterfall(trace) for trace in traces))
