"""Finding the stack: the stack file `ordo up` writes, else ORDO_NATS_URL; the API likewise."""

import json
from pathlib import Path
from typing import Any

import pytest

from ordo.cli import stack
from ordo.cli.client import (
    STACK_FILE,
    find_api,
    find_stack,
    spans_dir_for,
    stack_file_path,
)
from ordo.cli.errors import CliError, StackNotFound


def stack_info(var_dir: Path) -> dict[str, Any]:
    """What ``Stack.info()`` writes, trimmed to what clients read."""
    secrets = var_dir / "run" / "secrets"
    return {
        "var_dir": str(var_dir),
        "spans_dir": str(var_dir / "spans"),
        "nats": {"url": "nats://127.0.0.1:4222", "user": "ordo-operator", "password": "pw"},
        "redis": {"url": "redis://127.0.0.1:6379/0"},
        "webhook": {
            "url": "http://127.0.0.1:8001/v1/webhooks/tradingview",
            "secret_file": str(secrets / "webhook-secret"),
        },
        "api": {
            "url": "http://127.0.0.1:8001/v1/signals",
            "token_file": str(secrets / "api-token"),
        },
        "services": {
            "signal": {"url": "http://127.0.0.1:8001", "pid": 101, "log": "signal.log"},
            "order": {"url": "http://127.0.0.1:8002", "pid": 102, "log": "order.log"},
        },
    }


def write_stack_file(var_dir: Path) -> Path:
    path = stack_file_path(var_dir)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stack_info(var_dir)))
    return path


def test_the_cli_reads_the_stack_file_where_the_launcher_writes_it() -> None:
    assert STACK_FILE == stack.STACK_FILE


def test_the_stack_file_gives_the_operator_user_and_the_services(tmp_path: Path) -> None:
    path = write_stack_file(tmp_path)

    info = find_stack(tmp_path, environ={"ORDO_NATS_URL": "nats://elsewhere:4222"})

    assert info.stack_file == path
    assert (info.nats.url, info.nats.user, info.nats.password) == (
        "nats://127.0.0.1:4222",
        "ordo-operator",
        "pw",
    )
    assert [(s.name, s.url, s.pid) for s in info.services] == [
        ("signal", "http://127.0.0.1:8001", 101),
        ("order", "http://127.0.0.1:8002", 102),
    ]
    assert info.spans_dir == tmp_path / "spans"
    assert "pw" not in repr(info)


def test_without_a_stack_file_the_environment_names_nats(tmp_path: Path) -> None:
    env = {
        "ORDO_NATS_URL": "nats://nats.ordo:4222",
        "ORDO_NATS_USER": "ordo-operator",
        "ORDO_NATS_PASSWORD": "secret",
    }

    info = find_stack(tmp_path, environ=env)

    assert info.stack_file is None
    assert (info.nats.url, info.nats.user, info.nats.password) == (
        "nats://nats.ordo:4222",
        "ordo-operator",
        "secret",
    )
    assert info.services == ()


def test_no_stack_file_and_no_environment_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(StackNotFound, match="ordo up"):
        find_stack(tmp_path, environ={})


def test_a_corrupt_stack_file_is_reported_as_such(tmp_path: Path) -> None:
    path = stack_file_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"nats": ')

    with pytest.raises(CliError, match="not a readable stack file"):
        find_stack(tmp_path, environ={})


def test_spans_are_where_the_stack_file_says_or_under_the_var_dir(tmp_path: Path) -> None:
    assert spans_dir_for(tmp_path) == tmp_path / "spans"
    info = stack_info(tmp_path)
    info["spans_dir"] = str(tmp_path / "elsewhere")
    stack_file_path(tmp_path).parent.mkdir(parents=True)
    stack_file_path(tmp_path).write_text(json.dumps(info))

    assert spans_dir_for(tmp_path) == tmp_path / "elsewhere"


def test_the_signal_api_token_is_read_from_its_file(tmp_path: Path) -> None:
    write_stack_file(tmp_path)
    token_file = tmp_path / "run" / "secrets" / "api-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("the-token\n")

    api = find_api(tmp_path, environ={})

    assert (api.url, api.token) == ("http://127.0.0.1:8001/v1/signals", "the-token")
    assert "the-token" not in repr(api)


def test_the_signal_api_can_come_from_the_environment(tmp_path: Path) -> None:
    env = {"ORDO_API_URL": "https://ordo.example/v1/signals", "ORDO_API_TOKEN": "t"}

    api = find_api(tmp_path, environ=env)

    assert (api.url, api.token) == ("https://ordo.example/v1/signals", "t")
