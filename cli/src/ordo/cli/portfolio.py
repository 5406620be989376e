"""``ordo orders``, ``ordo positions``, ``ordo signals`` and ``ordo rebalance``: what the order
service knows (request/reply), and the one portfolio command it takes (a JetStream command).

The commands register themselves on the CLI's ``app`` when :mod:`ordo.cli.main` imports this
module (last, after the options it shares).
"""

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from ordo.cli import client, views
from ordo.cli.errors import InvalidInput
from ordo.cli.main import (
    OPERATOR,
    Account,
    AsJson,
    Timeout,
    VarDir,
    app,
    build,
    out,
    print_json,
    reporting_errors,
)
from ordo.contracts.enums import OrderStatus, SignalOutcome
from ordo.contracts.envelope import new_message_id
from ordo.contracts.orders import RebalancePortfolio, TargetWeight
from ordo.contracts.queries import (
    OrdersView,
    PositionsView,
    QueryOrders,
    QueryPositions,
    QueryRebalances,
    QuerySignals,
    RebalancesView,
    SignalsView,
)


@app.command()
def orders(
    account: Annotated[str | None, typer.Option("--account", "-a")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", "-s")] = None,
    signal_id: Annotated[str | None, typer.Option("--signal", help="A signal id.")] = None,
    order_id: Annotated[str | None, typer.Option("--order", help="An order id.")] = None,
    order_status: Annotated[OrderStatus | None, typer.Option("--status")] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only orders that are not finished.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 100,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """Orders as the order service knows them: by account, strategy, symbol, signal, order or
    status. Held (emulated) orders are marked "held"."""
    with reporting_errors():
        query = build(
            QueryOrders,
            correlation_id=new_message_id(),
            producer=OPERATOR,
            account=account,
            strategy=strategy,
            symbol=symbol,
            order_id=order_id,
            signal_id=signal_id,
            status=order_status,
            open_only=open_only,
            limit=limit,
        )
        view = asyncio.run(client.ask_stack(var_dir, query, OrdersView, timeout))
        if as_json:
            print_json([order.model_dump(mode="json") for order in view.orders])
        else:
            out().print(views.orders_table(view.orders))


@app.command()
def positions(
    account: Annotated[str | None, typer.Option("--account", "-a")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy")] = None,
    venue: Annotated[str | None, typer.Option("--venue")] = None,
    include_flat: Annotated[bool, typer.Option("--all", help="Include flat positions.")] = False,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """Positions per account, strategy and symbol at their marks, with P&L (realised after fees,
    unrealised at the newest quote) and totals per account and per strategy."""
    with reporting_errors():
        query = build(
            QueryPositions,
            correlation_id=new_message_id(),
            producer=OPERATOR,
            account=account,
            strategy=strategy,
            venue=venue,
            include_flat=include_flat,
        )
        view = asyncio.run(client.ask_stack(var_dir, query, PositionsView, timeout))
        if as_json:
            print_json(
                {
                    "positions": [p.model_dump(mode="json") for p in view.positions],
                    "totals": [t.model_dump(mode="json") for t in view.totals],
                }
            )
        else:
            out().print(views.positions_table(view.positions))
            if view.totals:
                out().print(views.totals_table(view.totals))


@app.command()
def signals(
    account: Annotated[str | None, typer.Option("--account", "-a")] = None,
    signal_id: Annotated[str | None, typer.Option("--signal", help="A signal id.")] = None,
    outcome: Annotated[SignalOutcome | None, typer.Option("--outcome")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=2000)] = 100,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """What the order service made of accepted signals, newest first: planned, queued, or why
    not (unplannable, refused by the order service, dequeued, denied by the risk gate)."""
    with reporting_errors():
        query = build(
            QuerySignals,
            correlation_id=new_message_id(),
            producer=OPERATOR,
            account=account,
            signal_id=signal_id,
            outcome=outcome,
            limit=limit,
        )
        view = asyncio.run(client.ask_stack(var_dir, query, SignalsView, timeout))
        if as_json:
            print_json([signal.model_dump(mode="json") for signal in view.signals])
        else:
            out().print(views.signals_table(view.signals))


@app.command()
def rebalance(
    targets: Annotated[
        list[str],
        typer.Argument(help="SYMBOL=WEIGHT for each symbol, e.g. BTC/USDT=0.5 ETH/USDT=0.3"),
    ],
    account: Account = "main",
    strategy: Annotated[str, typer.Option("--strategy")] = "manual",
    venue: Annotated[str, typer.Option("--venue")] = "paper",
    reserve: Annotated[
        str, typer.Option("--reserve", help="The fraction of the value kept in cash (0 to <1).")
    ] = "0",
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 10.0,
) -> None:
    """Bring a strategy's holdings to target weights: the order service sells first, then buys
    once the sells have filled. Prints the rebalance id ID: follow it with
    'ordo rebalances --id ID', its orders with 'ordo orders --signal rebalance:ID'."""
    with reporting_errors():
        rebalance_id = new_message_id()
        command = build(
            RebalancePortfolio,
            message_id=rebalance_id,
            correlation_id=rebalance_id,  # an operator command starts its own flow
            producer=OPERATOR,
            rebalance_id=rebalance_id,
            account=account,
            strategy=strategy,
            venue=venue,
            targets=tuple(_target(text) for text in targets),
            reserve=_fraction(reserve),
        )
        problem = command.allocation_problem()
        if problem is not None:
            raise InvalidInput(problem)
        ack = asyncio.run(client.publish_to_stack(var_dir, command, timeout))
        if as_json:
            print_json(
                {
                    "rebalance_id": rebalance_id,
                    "stream": ack.stream,
                    "sequence": ack.seq,
                    "duplicate": bool(ack.duplicate),
                }
            )
        else:
            typer.echo(rebalance_id)


@app.command()
def rebalances(
    account: Annotated[str | None, typer.Option("--account", "-a")] = None,
    rebalance_id: Annotated[str | None, typer.Option("--id", help="A rebalance id.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """Rebalances and how far each got: selling, buying, done, or refused (with why)."""
    with reporting_errors():
        query = build(
            QueryRebalances,
            correlation_id=new_message_id(),
            producer=OPERATOR,
            account=account,
            rebalance_id=rebalance_id,
            limit=limit,
        )
        view = asyncio.run(client.ask_stack(var_dir, query, RebalancesView, timeout))
        if as_json:
            print_json([rebalance.model_dump(mode="json") for rebalance in view.rebalances])
        else:
            out().print(views.rebalances_table(view.rebalances))


def _target(text: str) -> TargetWeight:
    symbol, separator, weight = text.partition("=")
    if not separator or not symbol:
        raise InvalidInput(f"{text!r}: give each target as SYMBOL=WEIGHT, e.g. BTC/USDT=0.5")
    return build(TargetWeight, symbol=symbol, weight=_fraction(weight, what=symbol))


def _fraction(text: str, *, what: str = "--reserve") -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"{what}: {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{what}: {text!r} must be a fraction of at least 0")
    return value
