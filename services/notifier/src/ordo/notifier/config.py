"""The notifier's settings: channels, routes, and how long deliveries are retried and kept."""

from typing import ClassVar, Self

from pydantic import Field, HttpUrl, model_validator

from ordo.kit.settings import Section, ServiceSettings
from ordo.notifier.domain import EventKind


class LogChannelSettings(Section):
    pass


class WebhookChannelSettings(Section):
    """A Slack- and Discord-compatible incoming webhook (JSON with ``text`` and ``content``)."""

    url: HttpUrl
    # Bounded so that a delivery's claim (see ``dispatcher.CLAIM``) outlasts one call.
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class Channels(Section):
    log: LogChannelSettings | None = LogChannelSettings()
    webhook: WebhookChannelSettings | None = None

    def names(self) -> tuple[str, ...]:
        return tuple(name for name in ("log", "webhook") if getattr(self, name) is not None)


class NotifierSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"

    channels: Channels = Channels()
    # Event kind → channel names; a kind not listed goes to every configured channel.
    routes: dict[EventKind, tuple[str, ...]] = Field(default_factory=dict)
    dispatch_interval_seconds: float = Field(default=0.5, gt=0)
    # A channel that is down keeps its deliveries pending, retried with back-off, for this long
    # after the event; only then is a delivery given up (marked failed).
    give_up_after_hours: float = Field(default=24.0, gt=0)
    # Sent and given-up deliveries are forgotten this long after their event.
    delivery_retention_hours: float = Field(default=168.0, gt=0)

    @model_validator(mode="after")
    def _routes_name_configured_channels(self) -> Self:
        configured = set(self.channels.names())
        unknown = {
            f"{kind.value}: {name}"
            for kind, names in self.routes.items()
            for name in names
            if name not in configured
        }
        if unknown:
            raise ValueError(
                f"routes name channels that are not configured ({', '.join(sorted(unknown))}); "
                f"configured channels: {', '.join(sorted(configured)) or 'none'}"
            )
        return self
