"""``ordo groups`` and ``ordo queue``: position groups and the execution pool's waiting queue, as
the order service knows them (request/reply).

The commands register themselves on the CLI's ``app`` when :mod:`ordo.cli.main` imports this
module (last, after the options it shares).
"""

import asyncio
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ordo.cli import client
from ordo.cli.main import (
    OPERATOR,
    AsJson,
    Timeout,
    VarDir,
    app,
    build,
    out,
    print_json,
    reporting_errors,
)
from ordo.cli.views import amount, moment
from ordo.contracts.enums import GroupStatus
from ordo.contracts.envelope import new_message_id
from ordo.contracts.groups import (
    GroupsView,
    GroupView,
    PoolView,
    QueryGroups,
    QueryQueue,
    QueueEntryView,
    QueueView,
)

_GROUP_STYLES = {
    GroupStatus.WAITING: "yellow",
    GroupStatus.LIVE: "green",
    GroupStatus.CLOSING: "magenta",
    GroupStatus.CLOSED: "dim",
}
_TIER_NAMES = {1: "continuation", 2: "deepest loss", 3: "replacement", 4: "FIFO"}


@app.command()
def groups(
    account: Annotated[str | None, typer.Option("--account", "-a")] = None,
    group_status: Annotated[GroupStatus | None, typer.Option("--status")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 100,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """Position groups: each strategy's position per symbol, with its entries and exits."""
    with reporting_errors():
        query = build(
            QueryGroups,
            correlation_id=new_message_id(),
            producer=OPERATOR,
            account=account,
            status=group_status,
            symbol=symbol,
            limit=limit,
        )
        view = asyncio.run(client.ask_stack(var_dir, query, GroupsView, timeout))
        if as_json:
            print_json([group.model_dump(mode="json") for group in view.groups])
        else:
            out().print(groups_table(view.groups))


@app.command()
def queue(
    account: Annotated[str | None, typer.Option("--account", "-a")] = None,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """The execution pool per account, and the groups waiting for a slot: next first, each with
    its priority tier and why."""
    with reporting_errors():
        query = build(
            QueryQueue, correlation_id=new_message_id(), producer=OPERATOR, account=account
        )
        view = asyncio.run(client.ask_stack(var_dir, query, QueueView, timeout))
        if as_json:
            print_json(
                {
                    "pools": [pool.model_dump(mode="json") for pool in view.pools],
                    "entries": [entry.model_dump(mode="json") for entry in view.entries],
                }
            )
        else:
            out().print(Group(pools_table(view.pools), queue_table(view.entries)))


def groups_table(found: Sequence[GroupView]) -> Table:
    table = Table(title=f"Position groups ({len(found)})", title_justify="left")
    for column in ("group", "account", "strategy", "symbol", "side", "status"):
        table.add_column(column, no_wrap=column == "group")
    for column in ("quantity", "avg entry", "pyramids"):
        table.add_column(column, justify="right")
    table.add_column("orders (role status qty @ price)")
    table.add_column("updated (UTC)")
    for group in found:
        status = str(group.status) + (f" ({group.reason})" if group.reason else "")
        table.add_row(
            group.group_id,
            group.account,
            group.strategy,
            group.symbol,
            Text(str(group.side), style="green" if group.side == "buy" else "red"),
            Text(status, style=_GROUP_STYLES[group.status]),
            amount(group.quantity),
            amount(group.average_entry),
            f"{group.pyramids}/{group.max_pyramids}",
            "\n".join(
                f"{leg.role} {leg.status} {amount(leg.quantity)}"
                + (
                    f" @ {amount(leg.limit_price or leg.stop_price)}"
                    if leg.limit_price or leg.stop_price
                    else ""
                )
                for leg in group.legs
            ),
            moment(group.updated_at),
        )
    return table


def pools_table(pools: Sequence[PoolView]) -> Table:
    table = Table(title="Execution pools", title_justify="left")
    table.add_column("account")
    for column in ("open groups", "max", "waiting"):
        table.add_column(column, justify="right")
    table.add_column("trading")
    for pool in pools:
        full = pool.open_groups >= pool.max_open_groups
        table.add_row(
            pool.account,
            Text(str(pool.open_groups), style="red" if full else "green"),
            str(pool.max_open_groups),
            str(pool.waiting),
            Text(str(pool.trading_state), style="" if pool.trading_state == "active" else "red"),
        )
    return table


def queue_table(entries: Sequence[QueueEntryView]) -> Table:
    table = Table(title=f"Waiting queue ({len(entries)})", title_justify="left")
    table.add_column("#", justify="right")
    for column in ("group", "account", "strategy", "symbol", "side", "tier", "why"):
        table.add_column(column, no_wrap=column == "group")
    table.add_column("waiting since (UTC)")
    for entry in entries:
        table.add_row(
            str(entry.rank),
            entry.group_id,
            entry.account,
            entry.strategy,
            entry.symbol,
            str(entry.side),
            f"{entry.tier} {_TIER_NAMES[entry.tier]}",
            entry.why,
            moment(entry.enqueued_at),
        )
    return table
