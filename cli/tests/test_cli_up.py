"""`ordo up`: what it prints, and how it brings back a service that died."""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ordo.cli.errors import CliError
from ordo.cli.stack import ServiceProcess
from ordo.cli.up import Supervisor, print_banner, refuse_second_stack, tradingview_curl
from ordo.contracts.subjects import Service


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_curl_example_posts_the_tradingview_template_with_the_secret_from_its_file(
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "run dir" / "webhook-secret"
    secret_file.parent.mkdir()
    secret_file.write_text("s3cr3t-_Token")
    command = tradingview_curl("http://127.0.0.1:8001/v1/webhooks/tradingview", secret_file)

    # curl replaced by a function that prints its last argument: the body the shell built.
    script = 'curl() { printf "%s" "${@: -1}"; }\n' + command
    body = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout

    assert json.loads(body) == {
        "secret": "s3cr3t-_Token",
        "ticker": "BINANCE:BTCUSDT",
        "action": "buy",
        "contracts": "0.01",
        "market_position": "long",
        "prev_market_position": "flat",
        "account": "main",
        "strategy": "demo",
        "close": "60000",
    }
    assert "s3cr3t" not in command


def test_the_banner_says_where_everything_is_but_prints_no_secret(tmp_path: Path) -> None:
    info = {
        "var_dir": str(tmp_path),
        "spans_dir": str(tmp_path / "spans"),
        "nats": {"url": "nats://127.0.0.1:4222", "user": "ordo-operator", "password": "nats-pw"},
        "redis": {"url": "redis://127.0.0.1:6379/0"},
        "webhook": {
            "url": "http://127.0.0.1:8001/v1/webhooks/tradingview",
            "secret_file": str(tmp_path / "webhook-secret"),
        },
        "api": {"url": "http://127.0.0.1:8001/v1/signals", "token_file": str(tmp_path / "tok")},
        "services": {"signal": {"url": "http://127.0.0.1:8001", "pid": 4242, "log": "s.log"}},
    }
    buffer = StringIO()

    print_banner(Console(file=buffer, width=300), info)

    text = buffer.getvalue()
    for expected in (
        "http://127.0.0.1:8001",
        "4242",
        "nats://127.0.0.1:4222",
        "http://127.0.0.1:8001/v1/webhooks/tradingview",
        str(tmp_path / "webhook-secret"),
        str(tmp_path / "tok"),
        str(tmp_path / "logs"),
        f"$(cat {tmp_path / 'webhook-secret'})",
    ):
        assert expected in text
    assert "nats-pw" not in text


@dataclass
class FakeProcess:
    returncode: int | None
    pid: int = 1000

    def poll(self) -> int | None:
        return self.returncode


@dataclass
class FakeServer:
    """NATS or Redis: a fake process; starting it may be made to fail."""

    process: FakeProcess | None = field(default_factory=lambda: FakeProcess(None))
    log: list[str] = field(default_factory=list)
    failing: bool = False

    def start(self) -> "FakeServer":
        self.log.append("start")
        if self.failing:
            raise RuntimeError("exited with code 1 before listening")
        self.process = FakeProcess(None)
        return self

    def stop(self, *, kill: bool = False) -> None:
        self.log.append("stop")


@dataclass
class FakeStack:
    """Services whose processes are fakes; starting one may be made to fail or to hang."""

    processes: dict[Service, ServiceProcess]
    servers: dict[str, FakeServer] = field(
        default_factory=lambda: {"nats-server": FakeServer(), "redis-server": FakeServer()}
    )
    failing: set[Service] = field(default_factory=set)
    hanging: set[Service] = field(default_factory=set)
    started: list[str] = field(default_factory=list)
    stopped: list[Service] = field(default_factory=list)

    def start_service(self, service: Service, *, wait: bool = True) -> None:
        self.started.append(service)
        if service in self.failing:
            raise RuntimeError(f"{service} exited with code 1")
        self.processes[service].process = FakeProcess(None, pid=2000 + len(self.started))  # type: ignore[assignment]
        if service in self.hanging:
            raise TimeoutError(f"{service} not ready within 60s")

    def stop_service(self, service: Service) -> None:
        self.stopped.append(service)
        self.processes[service].process = FakeProcess(-15)  # type: ignore[assignment]


def fake_stack(tmp_path: Path, exited: dict[Service, int | None]) -> FakeStack:
    processes = {
        service: ServiceProcess(service, 1, tmp_path / f"{service}.log", FakeProcess(code))  # type: ignore[arg-type]
        for service, code in exited.items()
    }
    return FakeStack(processes)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_service_that_died_is_restarted_and_the_stack_file_rewritten(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path, {Service.SIGNAL: None, Service.ORDER: -9})
    said: list[str] = []
    rewrites: list[bool] = []
    supervisor = Supervisor(stack, said.append, on_restart=lambda: rewrites.append(True))

    restarted = supervisor.check()

    assert restarted == [Service.ORDER]
    assert stack.started == [Service.ORDER]
    assert "order exited unexpectedly (code -9)" in said[0]
    assert rewrites == [True]
    assert supervisor.check() == []  # running again: left alone


def test_a_service_that_keeps_failing_is_retried_less_and_less_often(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path, {Service.RISK: 1})
    stack.failing.add(Service.RISK)
    clock = Clock()
    said: list[str] = []
    supervisor = Supervisor(stack, said.append, clock=clock)

    supervisor.check()
    clock.now = 1.0
    supervisor.check()  # within the back-off: not retried
    clock.now = 2.0
    supervisor.check()
    clock.now = 5.0
    supervisor.check()  # second back-off is 4 s: not yet
    clock.now = 6.0
    supervisor.check()

    assert stack.started == [Service.RISK, Service.RISK, Service.RISK]
    assert any("did not come back" in line for line in said)


def test_a_dead_nats_server_is_restarted_before_the_services(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path, {Service.ORDER: 1})
    stack.servers["nats-server"].process = FakeProcess(-9)
    said: list[str] = []
    supervisor = Supervisor(stack, said.append)

    restarted = supervisor.check()

    assert restarted == ["nats-server", Service.ORDER]
    assert stack.servers["nats-server"].log == ["start"]
    assert stack.servers["redis-server"].log == []
    assert "nats-server exited unexpectedly (code -9)" in said[0]


def test_a_server_that_does_not_come_back_is_retried_later(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path, {})
    redis = stack.servers["redis-server"]
    redis.process, redis.failing = FakeProcess(1), True
    clock = Clock()
    said: list[str] = []
    supervisor = Supervisor(stack, said.append, clock=clock)

    assert supervisor.check() == []
    assert supervisor.check() == []  # within the back-off
    redis.failing = False
    clock.now = 2.0

    assert supervisor.check() == ["redis-server"]
    assert redis.log == ["start", "stop", "start"]
    assert any("redis-server did not come back" in line for line in said)


def test_a_service_not_ready_in_time_is_stopped_and_tried_again(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path, {Service.EXECUTION: -9})
    stack.hanging.add(Service.EXECUTION)
    clock = Clock()
    said: list[str] = []
    supervisor = Supervisor(stack, said.append, clock=clock)

    assert supervisor.check() == []
    assert stack.stopped == [Service.EXECUTION]  # not left running half-started
    assert any("Next attempt in 2s" in line for line in said)
    stack.hanging.clear()
    clock.now = 2.0

    assert supervisor.check() == [Service.EXECUTION]
    assert stack.started == [Service.EXECUTION, Service.EXECUTION]


def test_a_second_stack_on_the_same_var_dir_is_refused(tmp_path: Path) -> None:
    stack_file = tmp_path / "run" / "stack.json"
    stack_file.parent.mkdir(parents=True)
    this_process = {"url": "http://127.0.0.1:1", "pid": os.getpid()}
    info: dict[str, Any] = {
        "nats": {"url": "nats://127.0.0.1:1"},
        "services": {"signal": this_process},
    }
    stack_file.write_text(json.dumps(info))

    with pytest.raises(CliError, match="already running"):
        refuse_second_stack(tmp_path)


def test_a_stack_file_left_by_a_killed_stack_does_not_block_a_new_one(tmp_path: Path) -> None:
    stack_file = tmp_path / "run" / "stack.json"
    stack_file.parent.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    info = {
        "nats": {"url": "nats://127.0.0.1:1"},
        "services": {"signal": {"url": "x", "pid": gone.pid}},
    }
    stack_file.write_text(json.dumps(info))

    refuse_second_stack(tmp_path)
