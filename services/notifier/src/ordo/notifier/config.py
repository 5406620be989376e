"""The notifier's settings: channels and routes."""

from typing import ClassVar

from pydantic import Field, HttpUrl

from ordo.kit.settings import Section, ServiceSettings
from ordo.notifier.domain import EventKind


class LogChannelSettings(Section):
    pass


class WebhookChannelSettings(Section):
    """A Slack- and Discord-compatible incoming webhook (JSON with ``text`` and ``content``)."""

    url: HttpUrl
    timeout_seconds: float = Field(default=5.0, gt=0)


class Channels(Section):
    log: LogChannelSettings | None = LogChannelSettings()
    webhook: WebhookChannelSettings | None = None


class NotifierSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"

    channels: Channels = Channels()
    # Event kind → channel names; a kind not listed goes to every configured channel.
    routes: dict[EventKind, tuple[str, ...]] = Field(default_factory=dict)
    dispatch_interval_seconds: float = Field(default=0.5, gt=0)
    max_delivery_attempts: int = Field(default=20, ge=1)
