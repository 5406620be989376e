"""Bad options are refused with a clear message and exit code 2; a missing stack exits with 3."""

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordo.cli.errors import EXIT_UNREACHABLE, EXIT_USAGE, InvalidInput
from ordo.cli.main import app, intent_of, signal_body
from ordo.contracts.enums import Intent, Side

runner = CliRunner()


@pytest.fixture
def no_stack(tmp_path: Path) -> dict[str, str]:
    """An environment in which no stack can be found."""
    return {"ORDO_VAR_DIR": str(tmp_path), "ORDO_NATS_URL": "", "ORDO_API_URL": ""}


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})

    assert result.exit_code == 0
    for command in (
        "up",
        "status",
        "signal",
        "orders",
        "positions",
        "halt",
        "reduce",
        "resume",
        "trace",
    ):
        assert f" {command} " in result.stdout


@pytest.mark.parametrize(
    "arguments",
    [
        ["signal", "--symbol", "BTC/USDT", "--side", "hold", "--quantity", "1"],
        ["signal", "--symbol", "BTC/USDT", "--side", "buy", "--quantity", "lots"],
        ["signal", "--symbol", "BTC/USDT", "--side", "buy", "--quantity", "-1"],
        ["signal", "--side", "buy", "--quantity", "1"],
        ["orders", "--status", "almost_filled"],
        ["orders", "--limit", "0"],
        ["halt", "--account", "main"],
        ["resume", "--reason", "all clear"],
        ["trace"],
    ],
)
def test_bad_options_are_usage_errors(arguments: list[str], no_stack: dict[str, str]) -> None:
    result = runner.invoke(app, arguments, env=no_stack)

    assert result.exit_code == EXIT_USAGE, result.output


def test_a_signal_needs_a_side_or_an_intent(no_stack: dict[str, str]) -> None:
    result = runner.invoke(app, ["signal", "--symbol", "BTC/USDT", "--quantity", "1"], env=no_stack)

    assert result.exit_code == EXIT_USAGE
    assert "--side" in result.stderr


def test_an_account_name_the_contracts_refuse_is_a_usage_error(no_stack: dict[str, str]) -> None:
    result = runner.invoke(
        app,
        ["halt", "--account", "main account", "--reason", "x", "--operator", "ann"],
        env=no_stack,
    )

    assert result.exit_code == EXIT_USAGE
    assert "account" in result.stderr


@pytest.mark.parametrize(
    "arguments",
    [
        ["orders"],
        ["positions"],
        ["status"],
        ["halt", "--account", "main", "--reason", "test", "--operator", "ann"],
        ["signal", "--symbol", "BTC/USDT", "--side", "buy", "--quantity", "0.01"],
    ],
)
def test_without_a_running_stack_commands_say_so(
    arguments: list[str], no_stack: dict[str, str]
) -> None:
    result = runner.invoke(app, arguments, env=no_stack)

    assert result.exit_code == EXIT_UNREACHABLE
    assert "ordo up" in result.stderr


def test_buy_enters_long_and_sell_enters_short() -> None:
    assert intent_of(Side.BUY, None) is Intent.ENTER_LONG
    assert intent_of(Side.SELL, None) is Intent.ENTER_SHORT
    assert intent_of(None, Intent.EXIT_LONG) is Intent.EXIT_LONG
    with pytest.raises(InvalidInput):
        intent_of(Side.BUY, Intent.EXIT_LONG)


def test_the_signal_body_is_an_idempotent_request_sized_in_quantity() -> None:
    body = signal_body(
        idempotency_key="key-1",
        account="main",
        strategy="manual",
        venue="paper",
        symbol="BTC/USDT",
        intent=Intent.ENTER_LONG,
        quantity=Decimal("0.01"),
        price=Decimal("60000"),
        comment=None,
    )

    assert body == {
        "idempotency_key": "key-1",
        "signal": {
            "account": "main",
            "strategy": "manual",
            "venue": "paper",
            "symbol": "BTC/USDT",
            "intent": "enter_long",
            "size": {"unit": "quantity", "value": "0.01"},
            "reference_price": "60000",
        },
    }


def test_an_exit_without_a_quantity_sends_no_size() -> None:
    body = signal_body(
        idempotency_key="key-2",
        account="main",
        strategy="manual",
        venue="paper",
        symbol="BTC/USDT",
        intent=Intent.EXIT_LONG,
        quantity=None,
        price=None,
        comment=None,
    )

    assert "size" not in body["signal"]
    assert body["signal"]["intent"] == "exit_long"
