"""``ordo up``: run the embedded stack in the foreground, restart what dies, stop on Ctrl-C."""

import contextlib
import json
import shlex
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ordo.cli.client import load_stack_file, process_alive, stack_file_path
from ordo.cli.errors import CliError
from ordo.cli.stack import ServiceProcess, Stack
from ordo.contracts.subjects import Service

CHECK_INTERVAL_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0

TRADINGVIEW_EXAMPLE = {
    "secret": "",  # filled from the secret file by the shell
    "ticker": "BINANCE:BTCUSDT",
    "action": "buy",
    "contracts": "0.01",
    "market_position": "long",
    "prev_market_position": "flat",
    "account": "main",
    "strategy": "demo",
    "close": "60000",
}


class StopRequested(Exception):
    """SIGINT (Ctrl-C) or SIGTERM: stop the stack."""


def run(var_dir: Path, config_file: Path | None, console: Console) -> None:
    """Start the stack, print where everything is, supervise it until Ctrl-C or SIGTERM."""
    refuse_second_stack(var_dir)
    stack = Stack(var_dir, config_file=config_file)
    # Both signals get an explicit handler: a process started in the background by a script
    # inherits SIGINT as ignored, and Python would then never raise KeyboardInterrupt.
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            with console.status("Starting NATS, Redis and the services..."):
                stack.start()
        except (RuntimeError, TimeoutError, OSError) as error:
            raise CliError(f"the stack did not start: {error}") from None
        print_banner(console, stack.info())
        supervisor = Supervisor(
            stack,
            say=console.print,
            # The stack file lists the PIDs `ordo status` shows; a restart changes one.
            on_restart=stack.write_stack_file,
        )
        while True:
            time.sleep(CHECK_INTERVAL_SECONDS)
            supervisor.check()
    except (KeyboardInterrupt, StopRequested):
        console.print("\nStopping the stack...")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_quietly(stack)
    console.print("[green]Stopped.[/]")


def refuse_second_stack(var_dir: Path) -> None:
    """Two stacks on one var dir would share SQLite files and secrets: refuse the second."""
    path = stack_file_path(var_dir)
    if not path.exists():
        return
    try:
        running = [s for s in load_stack_file(path).services if process_alive(s.pid)]
    except CliError:
        return  # an unreadable leftover: the new stack overwrites it
    if running:
        pids = ", ".join(f"{s.name} {s.pid}" for s in running)
        raise CliError(
            f"a stack is already running from {var_dir} ({pids}): stop it first, "
            "or use another --var-dir"
        )


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested


def _stop_quietly(stack: Stack) -> None:
    # A second Ctrl-C must not interrupt the shutdown half-way: NATS and Redis run in their
    # own sessions and would outlive us.
    with _signals_ignored():
        stack.stop()


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- supervision -------------------------------------------------------------------------------
class SupervisedStack(Protocol):
    processes: dict[Service, ServiceProcess]

    def start_service(self, service: Service, *, wait: bool = True) -> None: ...


@dataclass
class Supervisor:
    """Restarts services that exited; one that keeps failing is retried less and less often."""

    stack: SupervisedStack
    say: Callable[[str], None]
    on_restart: Callable[[], None] | None = None
    clock: Callable[[], float] = time.monotonic
    failures: dict[Service, int] = field(default_factory=dict)
    next_attempt: dict[Service, float] = field(default_factory=dict)

    def check(self) -> list[Service]:
        """Restart every service that is not running; the ones restarted."""
        restarted = []
        for service, proc in self.stack.processes.items():
            if proc.running or self.clock() < self.next_attempt.get(service, 0.0):
                continue
            if self._restart(service, proc):
                restarted.append(service)
        if restarted and self.on_restart is not None:
            self.on_restart()
        return restarted

    def _restart(self, service: Service, proc: ServiceProcess) -> bool:
        code = proc.process.returncode if proc.process is not None else None
        self.say(
            f"[yellow]{service} exited unexpectedly (code {code}); restarting.[/] "
            f"Log: {escape(str(proc.log_path))}"
        )
        try:
            self.stack.start_service(service)
        except (RuntimeError, TimeoutError, OSError) as error:
            failures = self.failures.get(service, 0) + 1
            self.failures[service] = failures
            delay = min(2.0**failures, MAX_RESTART_DELAY_SECONDS)
            self.next_attempt[service] = self.clock() + delay
            self.say(
                f"[red]{service} did not come back:[/] {escape(str(error))}\n"
                f"Next attempt in {delay:.0f}s."
            )
            return False
        self.failures.pop(service, None)
        self.next_attempt.pop(service, None)
        pid = proc.process.pid if proc.process is not None else "?"
        self.say(f"[green]{service} restarted[/] (pid {pid}).")
        return True


# -- what to print -----------------------------------------------------------------------------
def tradingview_curl(webhook_url: str, secret_file: Path) -> str:
    """A curl command that posts the TradingView alert template, secret read from its file."""
    body = json.dumps({**TRADINGVIEW_EXAMPLE, "secret": "@SECRET@"})
    # Inside double quotes so that the shell substitutes the secret; JSON's quotes are escaped.
    quoted = body.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    quoted = quoted.replace("@SECRET@", f"$(cat {shlex.quote(str(secret_file))})")
    return (
        f"curl -sS -X POST {shlex.quote(webhook_url)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f'  -d "{quoted}"'
    )


def print_banner(console: Console, info: Mapping[str, Any]) -> None:
    """Where everything is: services, NATS, webhook, API, logs, and a first signal to send."""
    var_dir = Path(info["var_dir"])
    services = Table(title="Ordo is running", title_justify="left", title_style="bold green")
    for column in ("service", "url", "pid", "log"):
        services.add_column(column, no_wrap=True)
    for name, entry in info["services"].items():
        services.add_row(name, entry["url"], str(entry["pid"]), entry["log"])
    console.print(services)

    places = Table.grid(padding=(0, 2))
    places.add_column(style="bold")
    places.add_column(no_wrap=True)
    nats = info["nats"]
    rows = [
        ("NATS", f"{nats['url']}  (user {nats['user']}; password in the stack file)"),
        ("Redis", info["redis"]["url"]),
        ("Webhook", info["webhook"]["url"]),
        ("Webhook secret", f"in {info['webhook']['secret_file']}"),
        ("Signal API", info["api"]["url"]),
        ("API token", f"in {info['api']['token_file']}"),
        ("Logs", str(var_dir / "logs")),
        ("Spans", info["spans_dir"]),
        ("Stack file", str(stack_file_path(var_dir))),
    ]
    for label, value in rows:
        places.add_row(label, escape(str(value)))
    console.print(places)

    console.print("\n[bold]Send a TradingView alert:[/]")
    curl = tradingview_curl(info["webhook"]["url"], Path(info["webhook"]["secret_file"]))
    # soft_wrap: a command wrapped by the console would not paste.
    console.print(curl, markup=False, highlight=False, soft_wrap=True)
    console.print(
        "\n[bold]Or:[/] ordo signal --symbol BTC/USDT --side buy --quantity 0.01\n"
        "[bold]Then:[/] ordo orders · ordo positions · ordo trace <signal-id> · ordo status\n"
        "[dim]Ctrl-C stops everything. Services that die are restarted.[/]",
        soft_wrap=True,
    )
