"""The risk gate's operator commands, over NATS as the operator user.

``ordo halt|reduce|resume`` (an account's trading state), ``ordo risk decisions`` (every decision
with its inputs), ``ordo risk audit`` (trading-state and limit changes), ``ordo risk limits show``
and ``ordo risk limits set`` (in force on every replica at once). Every change is audited, and the
commands that change something wait for the risk service's verdict. Registers itself on the CLI's
``app`` when :mod:`ordo.cli.main` imports this module.
"""

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from ordo.cli import client
from ordo.cli.errors import InvalidInput, NothingFound, RequestTimedOut
from ordo.cli.main import (
    OPERATOR,
    Account,
    AsJson,
    Operator,
    Reason,
    Timeout,
    VarDir,
    _login_name,
    app,
    build,
    out,
    print_json,
    reporting_errors,
)
from ordo.cli.views import moment
from ordo.contracts.enums import TradingState
from ordo.contracts.envelope import new_message_id
from ordo.contracts.risk import (
    DenialReason,
    LimitChangeRecord,
    LimitValue,
    QueryRiskAudit,
    QueryRiskDecisions,
    QueryRiskLimits,
    RiskAuditView,
    RiskDecisionRecord,
    RiskDecisionsView,
    RiskLimitsView,
    SetRiskLimits,
    SetTradingState,
    TradingStateRecord,
)

risk_app = typer.Typer(
    name="risk", help="The risk gate: its decisions, its audit, its limits.", no_args_is_help=True
)
limits_app = typer.Typer(
    name="limits", help="Show or change the limits an account trades under.", no_args_is_help=True
)
risk_app.add_typer(limits_app)
app.add_typer(risk_app)

OptionalAccount = Annotated[str | None, typer.Option("--account", "-a", help="The account.")]
Since = Annotated[
    datetime | None, typer.Option("--since", help="From this UTC time on (ISO 8601).")
]
Until = Annotated[datetime | None, typer.Option("--until", help="Before this UTC time.")]
Limit = Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)]
NoWait = Annotated[
    bool,
    typer.Option(
        "--no-wait", help="Print the command's message id once it is in the OPS stream; no more."
    ),
]
Record = TypeVar("Record", TradingStateRecord, LimitChangeRecord)


# -- ordo halt / reduce / resume ----------------------------------------------------------------
@app.command()
def halt(
    account: Account,
    reason: Reason,
    operator: Operator = None,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    no_wait: NoWait = False,
    timeout: Timeout = 10.0,
) -> None:
    """Halt an account: no new orders, only cancels. Waits for the risk service's verdict."""
    _set_trading_state(
        TradingState.HALTED, account, reason, operator, var_dir, as_json, no_wait, timeout
    )


@app.command()
def reduce(
    account: Account,
    reason: Reason,
    operator: Operator = None,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    no_wait: NoWait = False,
    timeout: Timeout = 10.0,
) -> None:
    """Let an account only reduce its exposure. Waits for the risk service's verdict."""
    _set_trading_state(
        TradingState.REDUCING, account, reason, operator, var_dir, as_json, no_wait, timeout
    )


@app.command()
def resume(
    account: Account,
    reason: Reason,
    operator: Operator = None,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    no_wait: NoWait = False,
    timeout: Timeout = 10.0,
) -> None:
    """Let an account trade normally again. Waits for the risk service's verdict."""
    _set_trading_state(
        TradingState.ACTIVE, account, reason, operator, var_dir, as_json, no_wait, timeout
    )


def _set_trading_state(
    state: TradingState,
    account: str,
    reason: str,
    operator: str | None,
    var_dir: Path,
    as_json: bool,
    no_wait: bool,
    timeout: float,
) -> None:
    """Publish the command; unless told not to, show what the risk service made of it.

    Waiting is the default: a command that reached the stream has not yet switched anything
    (the risk service may refuse it, or be down), and an operator halting an account must know.
    """
    with reporting_errors():
        operator = operator or _login_name()
        if not operator:
            raise InvalidInput("who asks? give --operator (USER is not set)")
        message_id = new_message_id()
        command = build(
            SetTradingState,
            message_id=message_id,
            correlation_id=message_id,  # an operator command starts its own flow
            producer=OPERATOR,
            account=account,
            state=state,
            reason=reason,
            operator=operator,
        )
        if no_wait:
            asyncio.run(client.publish_to_stack(var_dir, command, timeout))
            if as_json:
                print_json({"message_id": message_id})
            else:
                typer.echo(message_id)
            return
        change = asyncio.run(
            _publish_and_wait(var_dir, command, timeout, lambda view: view.state_changes)
        )
        if as_json:
            print_json({"message_id": message_id, **change.model_dump(mode="json")})
        else:
            out().print(state_changes_table([change]))
        if change.outcome == "refused":
            raise typer.Exit(1)


# -- ordo risk decisions ------------------------------------------------------------------------
@risk_app.command()
def decisions(
    order_id: Annotated[str | None, typer.Option("--order", help="An order id.")] = None,
    proposal_id: Annotated[str | None, typer.Option("--proposal", help="A proposal id.")] = None,
    signal_id: Annotated[str | None, typer.Option("--signal", help="A signal id.")] = None,
    account: OptionalAccount = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """The risk gate's decisions, newest first, with the reasons, limits and exposure."""
    with reporting_errors():
        query = build(
            QueryRiskDecisions,
            correlation_id=new_message_id(),
            producer=OPERATOR,
            order_id=order_id,
            proposal_id=proposal_id,
            signal_id=signal_id,
            account=account,
            since=_utc(since),
            until=_utc(until),
            limit=limit,
        )
        view = asyncio.run(client.ask_stack(var_dir, query, RiskDecisionsView, timeout))
        if as_json:
            print_json([decision.model_dump(mode="json") for decision in view.decisions])
            return
        if not view.decisions and order_id is not None:
            raise NothingFound(f"the risk gate has no decision about order {order_id}")
        out().print(decisions_table(view.decisions))


def decisions_table(found: Sequence[RiskDecisionRecord]) -> Table:
    table = Table(title=f"Risk decisions ({len(found)})", title_justify="left")
    for column in ("decided (UTC)", "account", "proposal", "orders", "verdict", "state"):
        table.add_column(column, no_wrap=column in ("proposal", "orders"))
    table.add_column("reasons (actual vs limit)")
    for decision in found:
        orders = "\n".join(
            f"{spec.order_id} {spec.side} {spec.quantity} {spec.symbol}" for spec in decision.orders
        )
        verdict = (
            Text("approved", style="green") if decision.approved else Text("denied", style="red")
        )
        reasons = "\n".join(_reason(reason) for reason in decision.reasons)
        table.add_row(
            moment(decision.decided_at),
            decision.account,
            decision.proposal_id,
            orders,
            verdict,
            str(decision.trading_state),
            reasons,
        )
    return table


def _reason(reason: DenialReason) -> str:
    # The number may be below its limit too (stops covering less than the entry): no "<" or ">".
    numbers = [] if reason.actual is None else [str(reason.actual)]
    if reason.limit is not None:
        numbers.append(f"(limit {reason.limit})")
    return " ".join([reason.code, *numbers])


# -- ordo risk audit ----------------------------------------------------------------------------
@risk_app.command()
def audit(
    account: OptionalAccount = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """Trading-state and limit changes, applied or refused, newest first.

    An account's audit includes the changes of the default.
    """
    with reporting_errors():
        query = build(
            QueryRiskAudit,
            correlation_id=new_message_id(),
            producer=OPERATOR,
            account=account,
            since=_utc(since),
            until=_utc(until),
            limit=limit,
        )
        view = asyncio.run(client.ask_stack(var_dir, query, RiskAuditView, timeout))
        if as_json:
            print_json(
                {
                    "state_changes": [c.model_dump(mode="json") for c in view.state_changes],
                    "limit_changes": [c.model_dump(mode="json") for c in view.limit_changes],
                }
            )
            return
        console = out()
        console.print(state_changes_table(view.state_changes))
        console.print(limit_changes_table(view.limit_changes))


def state_changes_table(changes: Sequence[TradingStateRecord]) -> Table:
    table = Table(title=f"Trading-state changes ({len(changes)})", title_justify="left")
    for column in ("at (UTC)", "account", "from", "to", "outcome", "actor", "reason"):
        table.add_column(column)
    for change in changes:
        table.add_row(
            moment(change.at),
            change.account,
            str(change.from_state),
            str(change.to_state),
            _outcome(change.outcome),
            change.actor,
            change.reason,
        )
    return table


def limit_changes_table(changes: Sequence[LimitChangeRecord]) -> Table:
    table = Table(title=f"Limit changes ({len(changes)})", title_justify="left")
    for column in ("at (UTC)", "account", "outcome", "actor", "reason", "before", "after"):
        table.add_column(column)
    for change in changes:
        table.add_row(
            moment(change.at),
            change.account or "(default)",
            _outcome(change.outcome) + (f"\n{change.error}" if change.error else ""),
            change.actor,
            change.reason,
            _pairs(change.before),
            _pairs(change.after),
        )
    return table


# -- ordo risk limits show / set ----------------------------------------------------------------
@limits_app.command("show")
def show_limits(
    account: Annotated[
        str | None, typer.Option("--account", "-a", help="The account (default: the default).")
    ] = None,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 5.0,
) -> None:
    """The limits in force, the configured ones, and what was changed at run time."""
    with reporting_errors():
        query = build(
            QueryRiskLimits, correlation_id=new_message_id(), producer=OPERATOR, account=account
        )
        view = asyncio.run(client.ask_stack(var_dir, query, RiskLimitsView, timeout))
        if as_json:
            print_json(view.model_dump(mode="json", include=_VIEW_FIELDS))
            return
        out().print(limits_table(view))


_VIEW_FIELDS = {"account", "effective", "configured", "overrides", "trading_state"}


def limits_table(view: RiskLimitsView) -> Table:
    whose = f"account {view.account}" if view.account else "the default"
    state = f", trading state {view.trading_state}" if view.trading_state else ""
    table = Table(title=f"Risk limits of {whose}{state}", title_justify="left")
    for column in ("limit", "in force", "configured", "set at run time"):
        table.add_column(column, justify="left" if column == "limit" else "right")
    for name, value in view.effective.items():
        changed = name in view.overrides
        table.add_row(
            name,
            Text(_value(value), style="bold yellow" if changed else ""),
            _value(view.configured.get(name)),
            _value(view.overrides[name]) if changed else "",
        )
    return table


@limits_app.command("set")
def set_limits(
    reason: Reason,
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="LIMIT=VALUE...",
            help="e.g. max_notional_per_order=1000; VALUE none lifts the limit.",
        ),
    ] = None,
    account: OptionalAccount = None,
    default: Annotated[
        bool, typer.Option("--default", help="Change the default of every account.")
    ] = False,
    reset: Annotated[
        list[str] | None,
        typer.Option("--reset", help="Drop a run-time value: the configured one applies again."),
    ] = None,
    operator: Operator = None,
    var_dir: VarDir = client.DEFAULT_VAR_DIR,
    as_json: AsJson = False,
    timeout: Timeout = 10.0,
) -> None:
    """Change limits at run time (audited; in force on every replica for the next decision).

    Waits until the risk service has applied or refused the change, and says which.
    """
    with reporting_errors():
        if (account is None) == (not default):
            raise InvalidInput("give --account A, or --default to change every account's default")
        changes, dropped = parse_assignments(assignments or []), tuple(reset or ())
        _require_a_change(changes, dropped)
        operator = operator or _login_name()
        if not operator:
            raise InvalidInput("who asks? give --operator (USER is not set)")
        message_id = new_message_id()
        command = build(
            SetRiskLimits,
            message_id=message_id,
            correlation_id=message_id,  # an operator command starts its own flow
            producer=OPERATOR,
            account=account,
            changes=changes,
            reset=dropped,
            reason=reason,
            operator=operator,
        )
        change = asyncio.run(
            _publish_and_wait(var_dir, command, timeout, lambda view: view.limit_changes)
        )
        if as_json:
            print_json({"message_id": message_id, **change.model_dump(mode="json")})
        else:
            out().print(limit_changes_table([change]))
        if change.outcome == "refused":
            raise typer.Exit(1)


def parse_assignments(assignments: Sequence[str]) -> dict[str, LimitValue]:
    """``name=value`` pairs; the risk service validates names and values against its limits."""
    changes: dict[str, LimitValue] = {}
    for assignment in assignments:
        name, sign, value = (part.strip() for part in assignment.partition("="))
        if not sign or not name or not value:
            raise InvalidInput(f"{assignment!r} is not LIMIT=VALUE (e.g. max_open_positions=5)")
        if name in changes:
            raise InvalidInput(f"{name} is given twice")
        changes[name] = None if value.lower() in ("none", "null") else value
    return changes


def _require_a_change(changes: dict[str, LimitValue], reset: tuple[str, ...]) -> None:
    if not changes and not reset:
        raise InvalidInput("name a limit to change (LIMIT=VALUE) or to --reset")
    both = sorted(set(changes) & set(reset))
    if both:
        raise InvalidInput(f"a limit is either set or reset, not both: {', '.join(both)}")


async def _publish_and_wait(
    var_dir: Path,
    command: SetTradingState | SetRiskLimits,
    timeout: float,
    records_of: Callable[[RiskAuditView], Sequence[Record]],
) -> Record:
    """Publish the command, then ask the audit until the command shows there (or time is up)."""
    info = client.find_stack(var_dir)
    deadline = time.monotonic() + timeout
    async with client.nats_session(info.nats, timeout=min(timeout, 3.0)) as session:
        await client.publish_command(session, command, timeout)
        while time.monotonic() < deadline:
            query = QueryRiskAudit(
                correlation_id=command.correlation_id,
                producer=OPERATOR,
                account=command.account,
                limit=50,
            )
            view = await client.ask(session, query, RiskAuditView, timeout)
            for record in records_of(view):
                if record.command_id == command.message_id:
                    return record
            await asyncio.sleep(0.2)
    raise RequestTimedOut(
        f"the command {command.message_id} is in the OPS stream, but the risk service has not "
        f"handled it within {timeout:g}s: see `ordo risk audit` later, or `ordo status`"
    )


# -- helpers ------------------------------------------------------------------------------------
def _utc(moment_given: datetime | None) -> datetime | None:
    """Typer parses ISO times without a zone as naive; the operator means UTC."""
    if moment_given is None or moment_given.tzinfo is not None:
        return moment_given
    return moment_given.replace(tzinfo=UTC)


def _outcome(outcome: str) -> Text:
    style = {"applied": "green", "refused": "red"}.get(outcome, "dim")
    return Text(outcome, style=style)


def _pairs(limits: dict[str, LimitValue]) -> str:
    return "\n".join(f"{name}={_value(value)}" for name, value in sorted(limits.items())) or "-"


def _value(value: LimitValue) -> str:
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)
