"""The embedded stack: NATS (JetStream), Redis and the six services as processes on one machine.

Used by ``ordo up`` (``make run``) and by the integration tests, which also kill and restart
single services. Each service gets a free port, its own NATS user, and an SQLite store under
``var/data``; what clients need is written to ``var/run/stack.json`` (mode 0600: it holds the
operator's NATS password).
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ordo.contracts.subjects import Service
from ordo.contracts.types import utc_now
from ordo.kit.embedded import (
    NatsCredentials,
    NatsServer,
    RedisServer,
    child_environment,
    die_with_parent,
    free_port,
    service_environment,
)

SERVICES: tuple[Service, ...] = (
    Service.SIGNAL,
    Service.ORDER,
    Service.RISK,
    Service.EXECUTION,
    Service.RECONCILER,
    Service.NOTIFIER,
)
STACK_FILE = Path("run/stack.json")


@dataclass
class ServiceProcess:
    service: Service
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Stack:
    var_dir: Path
    config_file: Path | None = None
    services: Iterable[Service] = SERVICES
    extra_env: dict[str, str] = field(default_factory=dict)
    service_env: dict[Service, dict[str, str]] = field(default_factory=dict)
    # How long a service may take to answer /readyz after it was started (the start's own
    # ready_timeout replaces it, so that restarts wait as long as the first start did).
    ready_timeout: float = 60.0

    def __post_init__(self) -> None:
        self.var_dir = self.var_dir.resolve()
        self.credentials = NatsCredentials.generate()
        self.nats = NatsServer(self.var_dir / "nats", self.credentials)
        self.redis = RedisServer(self.var_dir / "redis")
        self.processes = {
            service: ServiceProcess(service, free_port(), self.var_dir / "logs" / f"{service}.log")
            for service in self.services
        }
        secrets_dir = self.var_dir / "run" / "secrets"
        self.webhook_secret_file = secrets_dir / "webhook-secret"
        self.api_token_file = secrets_dir / "api-token"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, *, ready_timeout: float | None = None) -> "Stack":
        """Start everything, or nothing: a start that fails stops what it had started.

        (``with Stack(...)`` calls no ``__exit__`` when ``__enter__`` raises.)
        """
        if ready_timeout is not None:
            self.ready_timeout = ready_timeout
        try:
            for sub in ("logs", "run", "data", "spans"):
                (self.var_dir / sub).mkdir(parents=True, exist_ok=True)
            self._write_secrets()
            self.nats.start()
            self.redis.start()
            for service in self.processes:
                self.start_service(service, wait=False)
            for service in self.processes:
                self.wait_ready(service)
            self.write_stack_file()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.running and proc.process is not None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            self._reap(proc)
        self.redis.stop()
        self.nats.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.var_dir / STACK_FILE).unlink()

    @property
    def servers(self) -> dict[str, NatsServer | RedisServer]:
        """The servers every service needs, by the name people know them by."""
        return {"nats-server": self.nats, "redis-server": self.redis}

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one service ---------------------------------------------------------------------------
    def start_service(self, service: Service, *, wait: bool = True) -> None:
        """Start one service. Call it from a thread that lives as long as the stack: the kernel
        stops a child when the thread that spawned it exits (``PR_SET_PDEATHSIG``)."""
        proc = self.processes[service]
        if proc.running:
            raise RuntimeError(
                f"{service} is already running (pid {proc.process and proc.process.pid})"
            )
        env = child_environment(
            {**self._environment(service), **self.extra_env, **self.service_env.get(service, {})}
        )
        proc.log_path.parent.mkdir(parents=True, exist_ok=True)
        with proc.log_path.open("ab") as log:
            proc.process = subprocess.Popen(
                [sys.executable, "-m", f"ordo.{service}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # noqa: PLW1509
                # Its own process group: a terminal's Ctrl-C reaches only the stack, which then
                # stops every service in order instead of racing them.
                process_group=0,
            )
        proc.starts += 1
        if wait:
            self.wait_ready(service)

    def kill(self, service: Service) -> None:
        """SIGKILL: the crash a service must survive without losing or doubling anything."""
        proc = self.processes[service]
        if proc.process is not None:
            proc.process.kill()
            proc.process.wait(timeout=10)

    def stop_service(self, service: Service) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within the reap timeout."""
        proc = self.processes[service]
        if proc.running and proc.process is not None:
            proc.process.terminate()
        self._reap(proc)

    def restart(self, service: Service) -> None:
        self.stop_service(service)
        self.start_service(service)

    def wait_ready(self, service: Service, *, timeout: float | None = None) -> None:
        proc = self.processes[service]
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.running:
                raise RuntimeError(
                    f"{service} exited with code "
                    f"{proc.process and proc.process.returncode}; see {proc.log_path}"
                    f"\n{_tail(proc.log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{proc.url}/readyz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(
            f"{service} not ready within {timeout}s; see {proc.log_path}\n{_tail(proc.log_path)}"
        )

    def _reap(self, proc: ServiceProcess) -> None:
        if proc.process is None:
            return
        try:
            proc.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.process.kill()
            proc.process.wait(timeout=5)

    # -- configuration -------------------------------------------------------------------------
    def _environment(self, service: Service) -> dict[str, str]:
        proc = self.processes[service]
        env = {
            **service_environment(service, self.nats, self.redis),
            "ORDO_VAR_DIR": str(self.var_dir),
            "ORDO_HTTP__PORT": str(proc.port),
            "ORDO_TELEMETRY__SPAN_DIR": str(self.var_dir / "spans"),
            "ORDO_INSTANCE": f"{service}-{proc.starts + 1}",
        }
        if self.config_file is not None:
            env["ORDO_CONFIG"] = str(self.config_file.resolve())
        if service is Service.SIGNAL:
            env["ORDO_WEBHOOK_SECRET_FILE"] = str(self.webhook_secret_file)
            env["ORDO_API_TOKEN_FILE"] = str(self.api_token_file)
        return env

    def _write_secrets(self) -> None:
        self.webhook_secret_file.parent.mkdir(parents=True, exist_ok=True)
        for path in (self.webhook_secret_file, self.api_token_file):
            if not path.exists():
                path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)

    @property
    def webhook_secret(self) -> str:
        return self.webhook_secret_file.read_text().strip()

    @property
    def api_token(self) -> str:
        return self.api_token_file.read_text().strip()

    def info(self) -> dict[str, Any]:
        operator = self.credentials.for_service(Service.OPERATOR)
        signal_url = (
            self.processes[Service.SIGNAL].url if Service.SIGNAL in self.processes else None
        )
        return {
            "started_at": utc_now().isoformat(),
            "var_dir": str(self.var_dir),
            "spans_dir": str(self.var_dir / "spans"),
            "nats": {"url": self.nats.url, "user": operator.name, "password": operator.password},
            "redis": {"url": self.redis.url},
            "webhook": {
                "url": f"{signal_url}/v1/webhooks/tradingview",
                "secret_file": str(self.webhook_secret_file),
            },
            "api": {"url": f"{signal_url}/v1/signals", "token_file": str(self.api_token_file)},
            "services": {
                str(s): {
                    "url": p.url,
                    "pid": p.process.pid if p.process else None,
                    "log": str(p.log_path),
                }
                for s, p in self.processes.items()
            },
        }

    def write_stack_file(self) -> None:
        """Written aside, then renamed over the old one: a reader never sees half a file (a
        restart rewrites it while `ordo status` may be reading), and it is always mode 0600."""
        path = self.var_dir / STACK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            aside.unlink()
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.info(), handle, indent=2)
        os.replace(aside, path)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
