"""``ordo signal`` asks for an order type, prices, time in force and flags."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ordo.cli import client
from ordo.cli.errors import EXIT_USAGE
from ordo.cli.main import app, order_request, signal_body
from ordo.contracts.enums import Intent, OrderType

runner = CliRunner()


@pytest.fixture
def no_stack(tmp_path: Path) -> dict[str, str]:
    return {"ORDO_VAR_DIR": str(tmp_path), "ORDO_NATS_URL": "", "ORDO_API_URL": ""}


def test_without_order_options_the_signal_has_no_order_block() -> None:
    assert order_request(order_type=None, limit_price=None, post_only=False) is None


def test_the_order_block_travels_in_the_signal_body() -> None:
    order = order_request(
        order_type=OrderType.STOP_LIMIT,
        stop_price=Decimal("61000"),
        limit_price=Decimal("61050"),
        post_only=False,
    )

    body = signal_body(
        idempotency_key="key-1",
        account="main",
        strategy="manual",
        venue="paper",
        symbol="BTC/USDT",
        intent=Intent.ENTER_LONG,
        quantity=Decimal("0.01"),
        price=None,
        comment=None,
        order=order,
    )

    assert body["signal"]["order"] == {
        "order_type": "stop_limit",
        "time_in_force": "gtc",
        "limit_price": "61050",
        "stop_price": "61000",
        "post_only": False,
        "reduce_only": False,
    }


def test_the_command_sends_a_limit_order(
    monkeypatch: pytest.MonkeyPatch, no_stack: dict[str, str]
) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(client, "find_api", lambda _var_dir: object())
    monkeypatch.setattr(
        client, "post_signal", lambda _api, body, _timeout: sent.append(body) or {"signal_id": "s"}
    )

    limit = ["--type", "limit", "--limit-price", "59000", "--tif", "ioc"]
    result = runner.invoke(
        app, ["signal", "-s", "BTC/USDT", "--side", "buy", "-q", "0.01", *limit], env=no_stack
    )

    assert result.exit_code == 0, result.output
    (body,) = sent
    order = body["signal"]["order"]
    assert (order["order_type"], order["limit_price"], order["time_in_force"]) == (
        "limit",
        "59000",
        "ioc",
    )


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--type", "limit"], "a limit order needs a limit_price"),
        (["--post-only"], "post-only orders only add liquidity"),
        (["--type", "limit", "--limit-price", "1", "--tif", "gtd"], "a GTD order needs expire_at"),
        (["--type", "limit", "--limit-price", "1", "--reduce-only"], "reduce-only order"),
    ],
)
def test_an_impossible_order_is_a_usage_error_with_the_reason(
    options: list[str], reason: str, no_stack: dict[str, str]
) -> None:
    result = runner.invoke(
        app, ["signal", "-s", "BTC/USDT", "--side", "buy", "-q", "1", *options], env=no_stack
    )

    assert result.exit_code == EXIT_USAGE, result.output
    assert reason in result.stderr
