"""The signal service's settings: markets, defaults, secrets and intake limits.

Secrets never come from the YAML file: each is an environment variable (``ORDO_WEBHOOK_SECRET``)
or a file named by one (``ORDO_WEBHOOK_SECRET_FILE``), read once at start-up. No refusal shows
its input: it would print the secrets with the rest.
"""

import ipaddress
from pathlib import Path
from typing import ClassVar, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from ordo.contracts.signals import Name
from ordo.kit.settings import ServiceSettings, resolve_secret
from ordo.signal.domain import MAX_ALERT_BYTES

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SignalSettings(ServiceSettings):
    service_name: ClassVar[str] = "signal"

    # Venue → the venue's unified symbols that signals may name.
    markets: dict[Name, tuple[Name, ...]] = Field(default_factory=lambda: {"paper": ("BTC/USDT",)})
    default_venue: Name = "paper"
    default_account: Name = Field(default="main", description="For alerts that name no account")

    webhook_secret: SecretStr | None = None
    webhook_secret_file: Path | None = None
    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    # When set, every webhook call must carry X-Ordo-Signature: the HMAC-SHA256 of its body.
    # TradingView cannot sign: set it only when a proxy in front of the service signs.
    webhook_hmac_key: SecretStr | None = None
    webhook_hmac_key_file: Path | None = None

    allowed_ips: tuple[str, ...] = Field(
        default=(), description="Addresses or CIDR networks the intake accepts; empty: any"
    )
    max_body_bytes: int = Field(default=MAX_ALERT_BYTES, ge=64, le=MAX_ALERT_BYTES)
    dedupe_window_seconds: int = Field(default=86_400, ge=1)
    rate_limit_per_minute: int = Field(
        default=600,
        ge=1,
        description="Calls per client address (IPv6: per /64); also the rejection records per "
        "minute that all callers without credentials share",
    )
    rejection_retention_days: float = Field(default=30.0, gt=0)

    @field_validator("markets")
    @classmethod
    def _every_venue_lists_markets(
        cls, markets: dict[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        if not markets:
            raise ValueError("at least one venue with its markets is required")
        empty = sorted(venue for venue, symbols in markets.items() if not symbols)
        if empty:
            raise ValueError(f"venues without markets: {', '.join(empty)}")
        return markets

    @field_validator("allowed_ips")
    @classmethod
    def _networks_parse(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"allowed_ips: {entry!r} is neither an IP address nor a CIDR network"
                ) from None
        return entries

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.default_venue not in self.markets:
            raise ValueError(
                f"default_venue {self.default_venue!r} is not one of the venues in markets "
                f"({', '.join(sorted(self.markets))})"
            )
        # Resolved once here, so that a missing or unreadable secret stops the start-up with a
        # clear message instead of failing the first request.
        resolve_secret(self, "webhook_secret", required=True)
        resolve_secret(self, "api_token", required=True)
        resolve_secret(self, "webhook_hmac_key", required=False)
        return self

    @property
    def networks(self) -> tuple[IpNetwork, ...]:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in self.allowed_ips)

    @property
    def webhook_secret_value(self) -> str:
        return _required(self.webhook_secret, "webhook_secret")

    @property
    def api_token_value(self) -> str:
        return _required(self.api_token, "api_token")

    @property
    def webhook_hmac_key_value(self) -> str | None:
        return self.webhook_hmac_key.get_secret_value() if self.webhook_hmac_key else None


def _required(value: SecretStr | None, name: str) -> str:
    if value is None:  # the validator makes this impossible; mypy cannot know
        raise RuntimeError(f"{name} is not configured")
    return value.get_secret_value()
