"""``ordo``: the operator CLI. Tables for people, ``--json`` for scripts.

Exit codes: 0 success, 1 failure, 2 bad usage, 3 stack not running / unreachable, 4 timed out,
5 nothing found.
"""

import asyncio
import contextlib
import getpass
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape

from ordo.cli import client, jaeger, spans, venues, views
from ordo.cli.errors import CliError, InvalidInput, NothingFound
from ordo.contracts.enums import Intent, OrderType, Side, SizeUnit, TimeInForce
from ordo.contracts.signals import OrderRequest, SignalRequest, Size
from ordo.contracts.subjects import DEAD_LETTER_STREAM, Service

OPERATOR = str(Service.OPERATOR)
ModelT = TypeVar("ModelT", bound=BaseModel)

app = typer.Typer(
    name="ordo",
    help="Operate Ordo: start the embedded stack, send signals, inspect orders, positions and "
    "traces, halt or resume trading.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    # A traceback with locals would print the NATS password and the API token.
    pretty_exceptions_show_locals=False,
)


# -- shared options -----------------------------------------------------------------------------
def _decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a decimal number") from None
    if not number.is_finite() or number <= 0:
        raise typer.BadParameter(f"{value!r} must be a positive number")
    return number


VarDir = Annotated[
    Path,
    typer.Option(
        "--var-dir",
        envvar="ORDO_VAR_DIR",
        help="The stack's state directory; the stack file is <var-dir>/run/stack.json.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Timeout = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for an answer.")
]
Account = Annotated[str, typer.Option("--account", "-a", help="The trading account.")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the audit log).")]
Operator = Annotated[
    str | None,
    typer.Option("--operator", envvar="USER", help="Who asks (default: $USER)."),
]


def out() -> Console:
    # Made per command, not at import, so that COLUMNS and the terminal are read when it runs.
    return Console()


def err() -> Console:
    return Console(stderr=True)


@contextlib.contextmanager
def reporting_errors() -> Iterator[None]:
    """A CliError becomes one red line on stderr and its exit code; nothing else is swallowed."""
    try:
        yield
    except CliError as error:
        err().print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(error.exit_code) from None


def build(model: type[ModelT], **fields: Any) -> ModelT:
    """A contract from options; a validation error is the operator's, reported as bad usage."""
    try:
        return model(**fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['msg']}"
            for item in error.errors()
        )
        raise InvalidInput(f"invalid {model.__name__}: {problems}") from None


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


# -- ordo up ------------------------------------------------------------------------------------
@app.command()
def up(
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="ORDO_CONFIG",
            help="The engine's configuration (default: config/ordo.yaml if it exists).",
        ),
    ] = None,
) -> None:
    """Start NATS, Redis and the six services here, and keep them running until Ctrl-C."""
    from ordo.cli import up as launcher  # the launcher loads Redis; the queries do not need it

    with reporting_errors():
        if config is None:
            default = Path("config/ordo.yaml")
            config = default if default.exists() else None
        elif not config.exists():
            raise InvalidInput(f"the configuration file {config} does not exist")
        launcher.run(var_dir, config, out())


# -- ordo status --------------------------------------------------------------------------------
@app.command()
def status(
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 3.0,
) -> None:
    """Each service's readiness and PID, the venues' breakers, the streams and dead letters."""
    with reporting_errors():
        info = client.find_stack(var_dir)
        with httpx.Client(timeout=timeout) as http:
            ready = {s.name: client.readiness(http, s.url) for s in info.services}
            venue_report = venues.venue_health(http, info.services)
        alive = {s.name: client.process_alive(s.pid) for s in info.services}

        async def streams() -> list[client.StreamCount]:
            async with client.nats_session(info.nats, timeout=timeout) as session:
                return await client.stream_counts(session, timeout)

        try:
            counts: list[client.StreamCount] | None = asyncio.run(streams())
            nats_error: CliError | None = None
        except CliError as error:
            counts, nats_error = None, error
        dead = next((c.messages for c in counts or [] if c.name == DEAD_LETTER_STREAM), None)

        if as_json:
            print_json(
                {
                    "source": info.source,
                    "nats": {"url": info.nats.url, "error": nats_error and str(nats_error)},
                    "services": {
                        s.name: {
                            "url": s.url,
                            "pid": s.pid,
                            "alive": alive[s.name],
                            "ready": ready[s.name].ready,
                            "failing": list(ready[s.name].failing),
                            "error": ready[s.name].error,
                        }
                        for s in info.services
                    },
                    "streams": {
                        c.name: {"messages": c.messages, "consumers": c.consumers}
                        for c in counts or []
                    },
                    "dead_letters": dead,
                    "venues": None
                    if venue_report is None
                    else {
                        "venues": [health.as_json() for health in venue_report.venues],
                        "error": venue_report.error,
                    },
                }
            )
        else:
            console = out()
            console.print(f"[dim]stack: {escape(info.source)}[/]")
            if info.services:
                console.print(views.services_table(info.services, ready, alive))
            if venue_report is not None:
                console.print(venues.venues_table(venue_report))
            if counts is not None:
                console.print(views.streams_table(counts))
                if dead:
                    console.print(
                        f"[bold red]{dead} dead-lettered message(s)[/] in {DEAD_LETTER_STREAM}"
                    )
        if nats_error is not None:
            raise nats_error
        if not all(r.ready for r in ready.values()):
            raise typer.Exit(1)


# -- ordo signal --------------------------------------------------------------------------------
def signal_body(
    *,
    idempotency_key: str,
    account: str,
    strategy: str,
    venue: str,
    symbol: str,
    intent: Intent,
    quantity: Decimal | None,
    price: Decimal | None,
    comment: str | None,
    order: OrderRequest | None = None,
) -> dict[str, Any]:
    """The ``POST /v1/signals`` body; an exit without a quantity closes what is open, and a
    signal without an ``order`` block trades at market."""
    size = build(Size, unit=SizeUnit.QUANTITY, value=quantity) if quantity is not None else None
    request = build(
        SignalRequest,
        account=account,
        strategy=strategy,
        venue=venue,
        symbol=symbol,
        intent=intent,
        size=size,
        reference_price=price,
        comment=comment,
        order=order,
    )
    return {
        "idempotency_key": idempotency_key,
        "signal": request.model_dump(mode="json", exclude_none=True),
    }


def order_request(**terms: Any) -> OrderRequest | None:
    """The signal's order block from the options given (unset ones are None or False); None
    when none is given. An impossible combination is refused with the contracts' reason."""
    given = {
        name: value for name, value in terms.items() if value is not None and value is not False
    }
    return build(OrderRequest, **given) if given else None


def intent_of(side: Side | None, intent: Intent | None) -> Intent:
    if side is not None and intent is not None:
        raise InvalidInput("give --side or --intent, not both (--side buy is --intent enter_long)")
    if intent is not None:
        return intent
    if side is None:
        raise InvalidInput("give --side buy|sell (or --intent)")
    return Intent.ENTER_LONG if side is Side.BUY else Intent.ENTER_SHORT


@app.command("signal")
def send_signal(
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="e.g. BTC/USDT")],
    side: Annotated[
        Side | None, typer.Option("--side", help="buy = enter_long, sell = enter_short.")
    ] = None,
    intent: Annotated[
        Intent | None, typer.Option("--intent", help="Any intent, instead of --side.")
    ] = None,
    quantity: Annotated[
        Decimal | None,
        typer.Option(
            "--quantity",
            "-q",
            parser=_decimal,
            metavar="QTY",
            help="Base-asset quantity (exits may omit it).",
        ),
    ] = None,
    account: Account = "main",
    strategy: Annotated[str, typer.Option("--strategy")] = "manual",
    venue: Annotated[str, typer.Option("--venue")] = "paper",
    price: Annotated[
        Decimal | None,
        typer.Option(
            "--price", parser=_decimal, metavar="PRICE", help="Your reference price, if any."
        ),
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    order_type: Annotated[
        OrderType | None, typer.Option("--type", help="Order type (default: market).")
    ] = None,
    limit_price: Annotated[
        Decimal | None, typer.Option("--limit-price", parser=_decimal, metavar="PRICE")
    ] = None,
    stop_price: Annotated[
        Decimal | None,
        typer.Option("--stop-price", parser=_decimal, metavar="PRICE", help="A stop's trigger."),
    ] = None,
    trailing_amount: Annotated[
        Decimal | None, typer.Option("--trailing-amount", parser=_decimal, metavar="PRICE")
    ] = None,
    trailing_percent: Annotated[
        Decimal | None, typer.Option("--trailing-percent", parser=_decimal, metavar="PCT")
    ] = None,
    time_in_force: Annotated[
        TimeInForce | None, typer.Option("--tif", help="Time in force (default: gtc).")
    ] = None,
    expire_at: Annotated[
        str | None, typer.Option("--expire-at", help="GTD expiry, ISO 8601 with a timezone.")
    ] = None,
    post_only: Annotated[bool, typer.Option("--post-only")] = False,
    reduce_only: Annotated[bool, typer.Option("--reduce-only")] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Default: a new UUID (every call is new)."),
    ] = None,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 10.0,
) -> None:
    """Send a signal through the signal service's API; prints its signal id."""
    with reporting_errors():
        order = order_request(
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            trailing_amount=trailing_amount,
            trailing_percent=trailing_percent,
            time_in_force=time_in_force,
            expire_at=expire_at,
            post_only=post_only,
            reduce_only=reduce_only,
        )
        body = signal_body(
            idempotency_key=idempotency_key or str(uuid.uuid4()),
            account=account,
            strategy=strategy,
            venue=venue,
            symbol=symbol,
            intent=intent_of(side, intent),
            quantity=quantity,
            price=price,
            comment=comment,
            order=order,
        )
        answer = client.post_signal(client.find_api(var_dir), body, timeout)
        if as_json:
            print_json(answer)
        elif "signal_id" in answer:
            typer.echo(answer["signal_id"])
        else:
            typer.echo(json.dumps(answer, default=str))


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no USER and no passwd entry (a bare container)
        return None


# -- ordo trace ---------------------------------------------------------------------------------
@app.command()
def trace(
    wanted: Annotated[
        str, typer.Argument(metavar="ID", help="A signal id, an order id or a trace id.")
    ],
    spans_dir: Annotated[
        Path | None,
        typer.Option("--spans-dir", help="Where the *.jsonl span files are (default: var/spans)."),
    ] = None,
    jaeger_url: Annotated[
        str | None,
        typer.Option(
            "--jaeger", help="Read from a Jaeger query API instead, e.g. http://localhost:16686."
        ),
    ] = None,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 10.0,
) -> None:
    """Draw the waterfall of every trace that carries a signal or order id."""
    with reporting_errors():
        if jaeger_url:
            with httpx.Client(timeout=timeout) as http:
                found = jaeger.fetch_spans(http, jaeger_url, wanted)
            where = f"Jaeger at {jaeger_url}"
            unreadable = 0
        else:
            directory = spans_dir or client.spans_dir_for(var_dir)
            if not directory.is_dir():
                raise NothingFound(f"no spans directory at {directory} (give --spans-dir)")
            files = spans.read_span_files(directory)
            found, unreadable = list(files.spans), files.unreadable_lines
            where = f"{files.files} span file(s) in {directory}"
        traces = spans.find_traces(found, wanted)
        if not traces:
            raise NothingFound(
                f"no trace mentions {wanted!r} in {where} ({len(found)} spans read). "
                "Spans are exported every half second: try again in a moment."
            )
        if as_json:
            print_json([spans.trace_as_json(t) for t in traces])
            return
        console = out()
        console.print(views.waterfalls(traces))
        if unreadable:
            err().print(f"[dim]{unreadable} unreadable line(s) skipped[/]")


# Commands in modules of their own: each registers itself on `app` and uses the options above,
# hence imported last.
from ordo.cli import groups as _groups  # noqa: E402, F401
from ordo.cli import portfolio as _portfolio  # noqa: E402, F401
from ordo.cli import report as _report  # noqa: E402, F401
from ordo.cli import risk as _risk  # noqa: E402, F401
