"""Delivery channels. Each sends one text; the dispatcher handles retries and breakers."""

from typing import Protocol

import httpx

from ordo.kit.logs import get_logger
from ordo.notifier.config import NotifierSettings

log = get_logger("ordo.notifier.channel")


class Channel(Protocol):
    name: str

    async def send(self, kind: str, severity: str, text: str) -> None: ...


class LogChannel:
    name = "log"

    async def send(self, kind: str, severity: str, text: str) -> None:
        log.info("notification", kind=kind, severity=severity, text=text)


class ChannelRejected(Exception):
    """The channel answered and refused the message (4xx): retrying will not help."""


class WebhookChannel:
    """Slack uses ``text``, Discord ``content``: send both so either accepts the same payload."""

    name = "webhook"

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self._url = url
        self._client = client

    async def send(self, kind: str, severity: str, text: str) -> None:
        response = await self._client.post(
            self._url, json={"text": text, "content": text, "kind": kind, "severity": severity}
        )
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise ChannelRejected(f"webhook refused the message: HTTP {response.status_code}")
        response.raise_for_status()


def configured_channels(
    settings: NotifierSettings, client: httpx.AsyncClient
) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if settings.channels.log is not None:
        channels["log"] = LogChannel()
    if settings.channels.webhook is not None:
        channels["webhook"] = WebhookChannel(str(settings.channels.webhook.url), client)
    return channels
