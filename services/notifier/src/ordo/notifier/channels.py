"""Delivery channels. Each sends one text; the dispatcher handles retries and breakers.

A channel says how a send failed: :class:`ChannelRejected` when retrying cannot help (the
message or the configuration is wrong), :class:`ChannelUnavailable` when it can (the channel is
down, slow or rate-limiting us). Anything else it raises counts as unavailable too.
"""

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.notifier.config import NotifierSettings

log = get_logger("ordo.notifier.channel")

# A Retry-After beyond this is not trusted: the delivery is tried again by then anyway.
MAX_RETRY_AFTER = timedelta(hours=1)
# Answers that say "later", not "never".
RETRYABLE_STATUSES = frozenset({408, 425, 429})


class Channel(Protocol):
    name: str

    async def send(self, kind: str, severity: str, text: str) -> None: ...


class ChannelRejected(Exception):
    """The channel refused the message (a 4xx, a redirect): retrying will not help."""


class ChannelUnavailable(Exception):
    """The channel is down, too slow or rate-limiting: try again, not before ``retry_after``."""

    def __init__(self, reason: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class LogChannel:
    name = "log"

    async def send(self, kind: str, severity: str, text: str) -> None:
        log.info("notification", kind=kind, severity=severity, text=text)


class WebhookChannel:
    """Slack uses ``text``, Discord ``content``: send both so either accepts the same payload."""

    name = "webhook"

    def __init__(self, url: str, client: httpx.AsyncClient, *, timeout_seconds: float) -> None:
        self._url = url
        self._client = client
        self._timeout = timeout_seconds

    async def send(self, kind: str, severity: str, text: str) -> None:
        payload = {"text": slack_escape(text), "content": text, "kind": kind, "severity": severity}
        try:
            response = await self._client.post(self._url, json=payload, timeout=self._timeout)
        except httpx.TimeoutException:
            raise ChannelUnavailable(f"webhook did not answer within {self._timeout:g}s") from None
        except httpx.TransportError as error:
            raise ChannelUnavailable(
                f"webhook unreachable: {type(error).__name__}: {error}"
            ) from None
        _check_answer(response)


def _check_answer(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise ChannelUnavailable(
            f"webhook answered HTTP {status}", retry_after=retry_after(response)
        )
    if 300 <= status < 400:
        where = response.headers.get("location", "?")
        raise ChannelRejected(
            f"webhook answered HTTP {status} (a redirect to {where}): configure the final URL"
        )
    raise ChannelRejected(f"webhook refused the message: HTTP {status} {response.text[:200]}")


def retry_after(response: httpx.Response, now: datetime | None = None) -> timedelta | None:
    """The ``Retry-After`` header (seconds or an HTTP date), capped; None when absent or bad."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delay = moment - (now or utc_now())
    return min(max(delay, timedelta(0)), MAX_RETRY_AFTER)


def slack_escape(text: str) -> str:
    """Slack reads ``<...>`` as links and mentions: the three control characters are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def configured_channels(
    settings: NotifierSettings, client: httpx.AsyncClient
) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if settings.channels.log is not None:
        channels["log"] = LogChannel()
    webhook = settings.channels.webhook
    if webhook is not None:
        channels["webhook"] = WebhookChannel(
            str(webhook.url), client, timeout_seconds=webhook.timeout_seconds
        )
    return channels
