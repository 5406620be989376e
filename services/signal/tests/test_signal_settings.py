"""The signal service's settings refuse to start with a missing secret or an inconsistent venue."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from signal_support import signal_settings

from ordo.signal.config import SignalSettings

SECRET_VARIABLES = (
    "ORDO_WEBHOOK_SECRET",
    "ORDO_WEBHOOK_SECRET_FILE",
    "ORDO_API_TOKEN",
    "ORDO_API_TOKEN_FILE",
    "ORDO_WEBHOOK_HMAC_KEY",
    "ORDO_WEBHOOK_HMAC_KEY_FILE",
)


@pytest.fixture(autouse=True)
def no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_a_missing_webhook_secret_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(
        ValidationError, match="set ORDO_WEBHOOK_SECRET or ORDO_WEBHOOK_SECRET_FILE"
    ):
        signal_settings(tmp_path, webhook_secret=None)


def test_a_missing_api_token_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ORDO_API_TOKEN"):
        signal_settings(tmp_path, api_token=None)


def test_secrets_are_read_from_their_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text("from-a-file\n")
    token_file = tmp_path / "api-token"
    token_file.write_text("token-from-a-file")
    monkeypatch.setenv("ORDO_WEBHOOK_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("ORDO_API_TOKEN_FILE", str(token_file))

    settings = SignalSettings(database_url="sqlite+aiosqlite://")

    assert settings.webhook_secret_value == "from-a-file"
    assert settings.api_token_value == "token-from-a-file"
    assert "from-a-file" not in repr(settings)


def test_an_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(
        ValidationError, match=re.escape(f"ORDO_WEBHOOK_SECRET_FILE: cannot read {missing}")
    ):
        signal_settings(tmp_path, webhook_secret=None, webhook_secret_file=missing)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(ValidationError, match="is empty"):
        signal_settings(tmp_path, api_token=None, api_token_file=empty)


def test_a_secret_given_twice_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text("one")
    with pytest.raises(ValidationError, match="not both"):
        signal_settings(tmp_path, webhook_secret_file=secret_file)


def test_the_hmac_key_is_optional(tmp_path: Path) -> None:
    assert signal_settings(tmp_path).webhook_hmac_key_value is None
    assert signal_settings(tmp_path, webhook_hmac_key="k").webhook_hmac_key_value == "k"


def test_the_default_venue_must_have_markets(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="default_venue 'kraken' is not one of the venues"):
        signal_settings(tmp_path, default_venue="kraken")


def test_a_venue_without_markets_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="venues without markets: empty"):
        signal_settings(tmp_path, markets={"paper": ("BTC/USDT",), "empty": ()})


def test_allowed_ips_must_be_addresses_or_networks(tmp_path: Path) -> None:
    settings = signal_settings(tmp_path, allowed_ips=("10.0.0.0/8", "2001:db8::1"))
    assert len(settings.networks) == 2
    with pytest.raises(ValidationError, match=r"'tradingview\.com' is neither"):
        signal_settings(tmp_path, allowed_ips=("tradingview.com",))


def test_the_body_limit_cannot_exceed_what_the_alert_parser_reads(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="max_body_bytes"):
        signal_settings(tmp_path, max_body_bytes=1_000_000)


def test_the_shipped_config_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Path(__file__).resolve().parents[3] / "config" / "ordo.yaml"
    monkeypatch.setenv("ORDO_CONFIG", str(config))
    monkeypatch.setenv("ORDO_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("ORDO_API_TOKEN", "t")

    settings = SignalSettings()

    assert settings.default_venue in settings.markets
    assert settings.max_body_bytes == 16384
    assert settings.dedupe_window_seconds == 86400


SECRETS_IN_THE_ENVIRONMENT = {
    "ORDO_WEBHOOK_SECRET": "tv-secret-in-env-0001",
    "ORDO_API_TOKEN": "api-token-in-env-0002",
    "ORDO_WEBHOOK_HMAC_KEY": "hmac-key-in-env-0003",
    "ORDO_NATS__PASSWORD": "nats-password-in-env-0004",
    "ORDO_DATABASE_URL": "postgresql+asyncpg://signal:db-password-0005@postgres:5432/signal",
}


@pytest.mark.parametrize(
    ("mistake", "named"),
    [
        ({"default_venue": "kraken"}, "default_venue 'kraken' is not one of the venues"),
        ({"markets": {}}, "at least one venue"),
        ({"webhok_secret": "misspelt-secret-0006"}, "webhok_secret"),
        ({"nats": {"pasword": "misspelt-password-0007"}}, "nats.pasword"),
        ({"max_body_bytes": "lots"}, "max_body_bytes"),
    ],
    ids=["model-check", "field-check", "misspelt-setting", "misspelt-nested-setting", "wrong-type"],
)
def test_a_refusal_says_what_is_wrong_without_showing_any_secret(
    mistake: dict[str, object], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS_IN_THE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError) as refused:
        SignalSettings(**mistake)  # type: ignore[arg-type]

    message = str(refused.value)
    assert named in message
    secrets = [*SECRETS_IN_THE_ENVIRONMENT.values(), "db-password-0005", "misspelt-"]
    assert [secret for secret in secrets if secret in message] == []
    # pydantic shortens a long input to its ends: whichever secrets fall in the middle go
    # unseen, so no input at all may be shown.
    assert "input_value" not in message
