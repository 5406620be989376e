"""The notifier's settings: channels, routes, storm control, the end-of-day report, retention.

Secrets never come from the YAML file: each is an environment variable (``ORDO_SMTP_PASSWORD``)
or a file named by one (``ORDO_SMTP_PASSWORD_FILE``), read once at start-up. A channel that
needs a secret that is not given stops the start-up with a message saying which variable to set.
"""

from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, HttpUrl, SecretStr, TypeAdapter, field_validator, model_validator

from ordo.contracts.enums import Severity
from ordo.kit.settings import Section, ServiceSettings, resolve_secret
from ordo.notifier.domain.notifications import EventKind

# Bounded so that a delivery's claim (see ``dispatcher.CLAIM``) outlasts one call.
MAX_TIMEOUT_SECONDS = 60


class LogChannelSettings(Section):
    rate_limit_per_minute: int = Field(default=600, ge=1)


class WebhookChannelSettings(Section):
    """A Slack- and Discord-compatible incoming webhook (JSON with ``text`` and ``content``).

    Its URL carries a token: it comes from ``ORDO_WEBHOOK_URL`` (or ``_FILE``).
    """

    timeout_seconds: float = Field(default=5.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    rate_limit_per_minute: int = Field(default=20, ge=1)


class TelegramChannelSettings(Section):
    """A Telegram bot posting to one chat; the token comes from ``ORDO_TELEGRAM_BOT_TOKEN``."""

    chat_id: str = Field(min_length=1, description="A chat id (-100...) or @channelusername")
    api_url: HttpUrl = Field(
        default=HttpUrl("https://api.telegram.org"),
        description="The Bot API server (a local one, or a proxy)",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    # Telegram allows a bot 20 messages a minute in one group.
    rate_limit_per_minute: int = Field(default=20, ge=1)


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"  # plain connection upgraded before anything is said (port 587)
    TLS = "tls"  # TLS from the first byte (port 465)


class EmailChannelSettings(Section):
    """An SMTP relay; the password (with ``username``) comes from ``ORDO_SMTP_PASSWORD``."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = None
    sender: str = Field(min_length=3, description="The From address")
    recipients: tuple[str, ...] = Field(min_length=1)
    subject_prefix: str = "[Ordo]"
    ca_file: Path | None = Field(default=None, description="The CA of a relay's own certificate")
    timeout_seconds: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    rate_limit_per_minute: int = Field(default=6, ge=1)

    @field_validator("sender")
    @classmethod
    def _sender_is_an_address(cls, sender: str) -> str:
        if "@" not in sender:
            raise ValueError(f"sender {sender!r} is not an e-mail address")
        return sender

    @field_validator("recipients")
    @classmethod
    def _recipients_are_addresses(cls, recipients: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [address for address in recipients if "@" not in address]
        if wrong:
            raise ValueError(f"recipients that are not e-mail addresses: {', '.join(wrong)}")
        return recipients

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"ca_file {path} is not a file")
        return path


class Channels(Section):
    log: LogChannelSettings | None = LogChannelSettings()
    webhook: WebhookChannelSettings | None = None
    telegram: TelegramChannelSettings | None = None
    email: EmailChannelSettings | None = None

    def names(self) -> tuple[str, ...]:
        return tuple(
            name
            for name in ("log", "webhook", "telegram", "email")
            if getattr(self, name) is not None
        )

    def rate_limits(self) -> dict[str, int]:
        return {name: getattr(self, name).rate_limit_per_minute for name in self.names()}


class ReportSettings(Section):
    # The report of each UTC day is sent at this time (UTC) of the next day, to the channels
    # the ``report`` route names.
    send_at: time = time(0, 10)
    scheduled: bool = True
    # The window of the period figures (P&L, drawdown, Sharpe, Sortino, the chart).
    lookback_days: int = Field(default=30, ge=2, le=366)
    # Position changes are kept this long (longer than any round trip that should be counted).
    history_days: int = Field(default=400, ge=30)

    @field_validator("send_at")
    @classmethod
    def _send_at_is_utc(cls, send_at: time) -> time:
        if send_at.tzinfo is not None:
            raise ValueError("send_at is a UTC time: give it without an offset (e.g. 00:10)")
        return send_at

    @model_validator(mode="after")
    def _history_covers_the_window(self) -> Self:
        if self.history_days < self.lookback_days:
            raise ValueError(
                f"history_days ({self.history_days}) must cover lookback_days "
                f"({self.lookback_days})"
            )
        return self


# A route lists channels (every severity), or maps each channel to the least severity it gets.
Route = dict[str, Severity]
_ROUTE_LIST = TypeAdapter(tuple[str, ...])


class NotifierSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"

    channels: Channels = Channels()
    # Event kind → channels; a kind not listed goes to every configured channel.
    routes: dict[EventKind, Route] = Field(default_factory=dict)
    dispatch_interval_seconds: float = Field(default=0.5, gt=0)
    # A notification with the same text on the same topic (a venue's breaker, a discrepancy) as
    # the last one the channel was told within this window is a repeat: kept, not sent.
    dedupe_window_seconds: float = Field(default=900.0, ge=0)
    # A digest (a burst beyond a channel's rate limit) lists this many titles, the worst first.
    digest_max_lines: int = Field(default=20, ge=1, le=200)
    # A channel that is down keeps its deliveries pending, retried with back-off, for this long
    # after the event; only then is a delivery given up (marked failed).
    give_up_after_hours: float = Field(default=24.0, gt=0)
    # Finished deliveries (sent, grouped, suppressed, given up) are forgotten this long after.
    delivery_retention_hours: float = Field(default=168.0, gt=0)
    report: ReportSettings = ReportSettings()

    telegram_bot_token: SecretStr | None = None
    telegram_bot_token_file: Path | None = None
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = None
    webhook_url: SecretStr | None = None
    webhook_url_file: Path | None = None

    @field_validator("routes", mode="before")
    @classmethod
    def _lists_take_every_severity(cls, routes: Any) -> Any:
        if not isinstance(routes, dict):
            return routes
        return {
            kind: {name: Severity.INFO for name in _ROUTE_LIST.validate_python(targets)}
            if isinstance(targets, list | tuple)
            else targets
            for kind, targets in routes.items()
        }

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self._routes_name_configured_channels()
        # Resolved once here, so that a missing or unreadable secret stops the start-up with a
        # clear message instead of failing the first delivery.
        channels = self.channels
        resolve_secret(
            self, "webhook_url", required=channels.webhook is not None, required_by="its channel"
        )
        resolve_secret(
            self,
            "telegram_bot_token",
            required=channels.telegram is not None,
            required_by="its channel",
        )
        email = channels.email
        resolve_secret(
            self,
            "smtp_password",
            required=email is not None and email.username is not None,
            required_by="its channel",
        )
        if self.smtp_password is not None and (email is None or email.username is None):
            raise ValueError("ORDO_SMTP_PASSWORD is set but channels.email has no username")
        if self.webhook_url is not None:
            self._check_webhook_url(self.webhook_url.get_secret_value())
        return self

    def _routes_name_configured_channels(self) -> None:
        configured = set(self.channels.names())
        unknown = {
            f"{kind.value}: {name}"
            for kind, route in self.routes.items()
            for name in route
            if name not in configured
        }
        if unknown:
            raise ValueError(
                f"routes name channels that are not configured ({', '.join(sorted(unknown))}); "
                f"configured channels: {', '.join(sorted(configured)) or 'none'}"
            )

    @staticmethod
    def _check_webhook_url(url: str) -> None:
        # The URL is a secret: the message says what is wrong, never what it is.
        try:
            HttpUrl(url)
        except ValueError:
            raise ValueError("ORDO_WEBHOOK_URL is not a valid http(s) URL") from None

    def secret(self, name: str) -> str:
        """A resolved secret; the validator made sure that a configured channel has its own."""
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise RuntimeError(f"{name} is not configured")
        return value.get_secret_value()
