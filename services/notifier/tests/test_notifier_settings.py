"""The notifier's settings: secrets from the environment or files (never shown), routes by kind
and severity, and a clear refusal of each mistake."""

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordo.contracts.enums import Severity
from ordo.notifier.channels import AttachmentSupport
from ordo.notifier.config import NotifierSettings
from ordo.notifier.domain.notifications import EventKind, Notification
from ordo.notifier.handlers import Notifications

TOKEN = "123456:ABC-secret-bot-token"
TELEGRAM = {"telegram": {"chat_id": "-1001"}}
EMAIL = {
    "email": {
        "host": "smtp.example.com",
        "username": "ordo@example.com",
        "sender": "ordo@example.com",
        "recipients": ["desk@example.com"],
    }
}


def test_the_bot_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_TELEGRAM_BOT_TOKEN", TOKEN)

    settings = NotifierSettings(channels=TELEGRAM)  # type: ignore[arg-type]

    assert settings.secret("telegram_bot_token") == TOKEN
    assert TOKEN not in repr(settings)


def test_the_smtp_password_comes_from_a_secret_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("ORDO_SMTP_PASSWORD_FILE", str(secret))

    settings = NotifierSettings(channels=EMAIL)  # type: ignore[arg-type]

    assert settings.secret("smtp_password") == "s3cret"


def test_a_channel_without_its_secret_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="set ORDO_TELEGRAM_BOT_TOKEN or ORDO_TELEGRAM_BOT"):
        NotifierSettings(channels=TELEGRAM)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="set ORDO_SMTP_PASSWORD or ORDO_SMTP_PASSWORD_FILE"):
        NotifierSettings(channels=EMAIL)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="set ORDO_WEBHOOK_URL or ORDO_WEBHOOK_URL_FILE"):
        NotifierSettings(channels={"webhook": {}})  # type: ignore[arg-type]


def test_a_secret_given_twice_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    monkeypatch.setenv("ORDO_TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ORDO_TELEGRAM_BOT_TOKEN_FILE", str(tmp_path / "token"))

    with pytest.raises(ValidationError, match="not both"):
        NotifierSettings(channels=TELEGRAM)  # type: ignore[arg-type]


def test_an_empty_or_missing_secret_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("ORDO_TELEGRAM_BOT_TOKEN_FILE", str(tmp_path / "empty"))
    with pytest.raises(ValidationError, match="is empty"):
        NotifierSettings(channels=TELEGRAM)  # type: ignore[arg-type]

    monkeypatch.setenv("ORDO_TELEGRAM_BOT_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match="cannot read"):
        NotifierSettings(channels=TELEGRAM)  # type: ignore[arg-type]


def test_a_bad_webhook_url_is_refused_without_showing_it() -> None:
    with pytest.raises(ValidationError, match="ORDO_WEBHOOK_URL is not a valid") as refused:
        NotifierSettings(channels={"webhook": {}}, webhook_url="hooks/T000/token-xyz")  # type: ignore[arg-type]

    assert "token-xyz" not in str(refused.value)


def test_a_password_without_a_username_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_SMTP_PASSWORD", "s3cret")
    anonymous = {"email": {**EMAIL["email"], "username": None}}

    with pytest.raises(ValidationError, match="has no username"):
        NotifierSettings(channels=anonymous)  # type: ignore[arg-type]


def test_an_address_that_is_not_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_SMTP_PASSWORD", "s3cret")
    wrong = {"email": {**EMAIL["email"], "recipients": ["desk"]}}

    with pytest.raises(ValidationError, match="not e-mail addresses: desk"):
        NotifierSettings(channels=wrong)  # type: ignore[arg-type]


def test_routes_by_kind_and_least_severity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_TELEGRAM_BOT_TOKEN", TOKEN)
    settings = NotifierSettings(
        channels={"log": {}, **TELEGRAM},  # type: ignore[arg-type]
        routes={
            EventKind.DISCREPANCY: {"log": "info", "telegram": "critical"},
            EventKind.FILL: ["log"],
        },  # type: ignore[dict-item]
    )
    router = Notifications(
        {"log": AttachmentSupport.NONE, "telegram": AttachmentSupport.APART},
        settings.routes,
        dedupe_window=timedelta(0),
    )

    def channels(kind: EventKind, severity: Severity) -> tuple[str, ...]:
        return router.channels_for(Notification(kind, severity, "t", "", topic="x"))

    assert channels(EventKind.DISCREPANCY, Severity.WARNING) == ("log",)
    assert channels(EventKind.DISCREPANCY, Severity.CRITICAL) == ("log", "telegram")
    assert channels(EventKind.FILL, Severity.INFO) == ("log",)
    assert channels(EventKind.DEAD_LETTER, Severity.CRITICAL) == ("log", "telegram")


def test_a_history_shorter_than_the_reports_window_is_refused() -> None:
    with pytest.raises(ValidationError, match="must cover lookback_days"):
        NotifierSettings(report={"lookback_days": 60, "history_days": 45})  # type: ignore[arg-type]


def test_the_report_time_is_utc_without_an_offset() -> None:
    with pytest.raises(ValidationError, match="send_at is a UTC time"):
        NotifierSettings(report={"send_at": "21:00+02:00"})  # type: ignore[arg-type]
