"""``ordo up``: run the embedded stack in the foreground, restart what dies, stop on Ctrl-C."""

import contextlib
import functools
import json
import shlex
import signal
import subprocess
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
        # Stop first (signals ignored), then give the handlers back: restored first, a second
        # Ctrl-C would interrupt before the stop began.
        _stop_quietly(stack)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
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
class Server(Protocol):
    """NATS or Redis as the stack runs them."""

    @property
    def process(self) -> subprocess.Popen[bytes] | None: ...

    def start(self) -> object: ...

    def stop(self, *, kill: bool = False) -> None: ...


class SupervisedStack(Protocol):
    processes: dict[Service, ServiceProcess]

    @property
    def servers(self) -> Mapping[str, Server]: ...

    def start_service(self, service: Service, *, wait: bool = True) -> None: ...

    def stop_service(self, service: Service) -> None: ...


@dataclass
class Supervisor:
    """Restarts what exited: NATS and Redis first (every service needs them), then the services.

    One that does not come back (it exits again, or is not ready in time) is stopped, and
    retried less and less often.
    """

    stack: SupervisedStack
    say: Callable[[str], None]
    on_restart: Callable[[], None] | None = None
    clock: Callable[[], float] = time.monotonic
    failures: dict[str, int] = field(default_factory=dict)
    next_attempt: dict[str, float] = field(default_factory=dict)

    def check(self) -> list[str]:
        """Restart every server and service that is not running; the names of those restarted."""
        restarted: list[str] = []
        for name, server in self.stack.servers.items():
            if not _running(server.process) and self._due(name):
                self._exited(name, server.process, log=None)
                if self._started(name, server.start, server.stop):
                    restarted.append(name)
        for service, proc in self.stack.processes.items():
            if not proc.running and self._due(service):
                self._exited(service, proc.process, log=proc.log_path)
                start = functools.partial(self.stack.start_service, service)
                stop = functools.partial(self.stack.stop_service, service)
                if self._started(service, start, stop):
                    restarted.append(service)
        if restarted and self.on_restart is not None:
            self.on_restart()
        return restarted

    def _due(self, name: str) -> bool:
        return self.clock() >= self.next_attempt.get(name, 0.0)

    def _exited(self, name: str, process: subprocess.Popen[bytes] | None, log: Path | None) -> None:
        code = process.returncode if process is not None else None
        where = f" Log: {escape(str(log))}" if log is not None else ""
        self.say(f"[yellow]{name} exited unexpectedly (code {code}); restarting.[/]{where}")

    def _started(self, name: str, start: Callable[[], object], stop: Callable[[], None]) -> bool:
        try:
            start()
        except (RuntimeError, TimeoutError, OSError) as error:
            stop()  # not ready in time: the next attempt starts afresh, not beside it
            failures = self.failures.get(name, 0) + 1
            self.failures[name] = failures
            delay = min(2.0**failures, MAX_RESTART_DELAY_SECONDS)
            self.next_attempt[name] = self.clock() + delay
            self.say(
                f"[red]{name} did not come back:[/] {escape(str(error))}\n"
                f"Next attempt in {delay:.0f}s."
            )
            return False
        self.failures.pop(name, None)
        self.next_attempt.pop(name, None)
        self.say(f"[green]{name} restarted.[/]")
        return True


def _running(process: subprocess.Popen[bytes] | None) -> bool:
    return process is not None and process.poll() is None


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
