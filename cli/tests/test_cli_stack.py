"""The embedded stack's own process handling: a failed start leaves nothing running behind."""

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ordo.cli.stack import STACK_FILE, Stack
from ordo.contracts.subjects import Service


@dataclass
class FakeServer:
    calls: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> "FakeServer":
        self.calls.append("start")
        return self

    def stop(self, *, kill: bool = False) -> None:
        self.calls.append("stop")


def test_a_start_that_fails_stops_what_it_had_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = Stack(tmp_path, services=(Service.SIGNAL, Service.ORDER))
    nats, redis = FakeServer(), FakeServer()
    monkeypatch.setattr(stack, "nats", nats)
    monkeypatch.setattr(stack, "redis", redis)

    def start_service(service: Service, *, wait: bool = True) -> None:
        # A process that would outlive the test if nobody stopped it.
        stack.processes[service].process = subprocess.Popen(["sleep", "600"])

    def wait_ready(service: Service, *, timeout: float = 60.0) -> None:
        if service is Service.ORDER:
            raise RuntimeError("order exited with code 1")

    monkeypatch.setattr(stack, "start_service", start_service)
    monkeypatch.setattr(stack, "wait_ready", wait_ready)

    try:
        with pytest.raises(RuntimeError, match="order exited"), stack:
            pass  # pragma: no cover - never entered

        left_running = [p.service for p in stack.processes.values() if p.running]
    finally:
        for proc in stack.processes.values():
            if proc.process is not None and proc.process.poll() is None:
                proc.process.kill()
                proc.process.wait()
    assert left_running == []
    assert nats.calls == ["start", "stop"]
    assert redis.calls == ["start", "stop"]
    assert not (tmp_path / STACK_FILE).exists()


def test_the_stack_file_is_replaced_whole_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    stack = Stack(tmp_path, services=(Service.SIGNAL,))
    path = tmp_path / STACK_FILE
    path.parent.mkdir(parents=True)
    path.write_text("left by someone else")
    path.chmod(0o644)

    stack.write_stack_file()

    assert path.stat().st_mode & 0o777 == 0o600
    written = json.loads(path.read_text())
    assert written["nats"]["user"] == "ordo-operator"
    assert [p.name for p in path.parent.iterdir()] == ["stack.json"]  # nothing left aside
