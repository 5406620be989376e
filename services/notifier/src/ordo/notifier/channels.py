"""Delivery channels. Each sends one message; the dispatcher handles retries, breakers and limits.

A channel says how a send failed: :class:`ChannelRejected` when retrying cannot help (the
message or the configuration is wrong), :class:`ChannelUnavailable` when it can (the channel is
down, slow or rate-limiting us). Anything else it raises counts as unavailable too. Secrets
(the bot token, the SMTP password, the webhook's URL) never appear in what a channel raises.
"""

import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol

import aiosmtplib
import httpx

from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.notifier.config import EmailChannelSettings, NotifierSettings, SmtpSecurity
from ordo.notifier.domain.notifications import Attachment

log = get_logger("ordo.notifier.channel")

# A Retry-After beyond this is not trusted: the delivery is tried again by then anyway.
MAX_RETRY_AFTER = timedelta(hours=1)
# Answers that say "later", not "never".
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# What the receivers accept: Discord's ``content`` and Telegram's texts and captions.
DISCORD_CONTENT_LIMIT = 2000
SLACK_TEXT_LIMIT = 4000
TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024


class AttachmentSupport(StrEnum):
    NONE = "none"  # text only: an attachment is left out
    WITH_TEXT = "with_text"  # one message carries the text and the attachment (e-mail)
    APART = "apart"  # the attachment is a message of its own, with a short caption (Telegram)


@dataclass(frozen=True)
class Outgoing:
    """One delivery, as a channel sends it."""

    delivery_id: int
    message_id: str
    kind: str
    severity: str
    text: str
    attachment: Attachment | None = None


class Channel(Protocol):
    name: str
    attachments: AttachmentSupport

    async def send(self, message: Outgoing) -> None: ...


class ChannelRejected(Exception):
    """The channel refused the message (a 4xx, a redirect): retrying will not help."""


class ChannelUnavailable(Exception):
    """The channel is down, too slow or rate-limiting: try again, not before ``retry_after``."""

    def __init__(self, reason: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def fit(text: str, limit: int) -> str:
    """The text, cut to ``limit`` characters with an ellipsis when longer."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


class LogChannel:
    name = "log"
    attachments = AttachmentSupport.NONE

    async def send(self, message: Outgoing) -> None:
        log.info("notification", kind=message.kind, severity=message.severity, text=message.text)


class WebhookChannel:
    """Slack uses ``text``, Discord ``content``: send both so either accepts the same payload."""

    name = "webhook"
    attachments = AttachmentSupport.NONE

    def __init__(self, url: str, client: httpx.AsyncClient, *, timeout_seconds: float) -> None:
        self._url = url
        self._client = client
        self._timeout = timeout_seconds

    async def send(self, message: Outgoing) -> None:
        payload = {
            "text": fit(slack_escape(message.text), SLACK_TEXT_LIMIT),
            "content": fit(message.text, DISCORD_CONTENT_LIMIT),
            "kind": message.kind,
            "severity": message.severity,
        }
        response = await _post(
            "webhook", self._client, self._url, self._timeout, redact=(), json=payload
        )
        _check_answer("webhook", response, detail=response.text[:200])


class TelegramChannel:
    """The Telegram Bot API: ``sendMessage`` for texts, ``sendPhoto`` for the report's chart."""

    name = "telegram"
    attachments = AttachmentSupport.APART

    def __init__(
        self,
        api_url: str,
        token: str,
        chat_id: str,
        client: httpx.AsyncClient,
        *,
        timeout_seconds: float,
    ) -> None:
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._token = token
        self._chat_id = chat_id
        self._client = client
        self._timeout = timeout_seconds

    async def send(self, message: Outgoing) -> None:
        # Plain text (no parse_mode): nothing in a notification needs escaping.
        if message.attachment is None:
            await self._call(
                "sendMessage",
                json={"chat_id": self._chat_id, "text": fit(message.text, TELEGRAM_TEXT_LIMIT)},
            )
            return
        attachment = message.attachment
        await self._call(
            "sendPhoto",
            data={"chat_id": self._chat_id, "caption": fit(message.text, TELEGRAM_CAPTION_LIMIT)},
            files={"photo": (attachment.filename, attachment.content, attachment.media_type)},
        )

    async def _call(self, method: str, **request: Any) -> None:
        url = f"{self._base}/{method}"
        response = await _post(
            "Telegram", self._client, url, self._timeout, redact=(self._token,), **request
        )
        _check_answer("Telegram", response, detail=_telegram_description(response))


def _telegram_description(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(answer, dict):
        return str(answer.get("description", ""))[:200]
    return ""


async def _post(
    who: str,
    client: httpx.AsyncClient,
    url: str,
    timeout: float,
    *,
    redact: tuple[str, ...],
    **request: Any,
) -> httpx.Response:
    try:
        return await client.post(url, timeout=timeout, **request)
    except httpx.TimeoutException:
        raise ChannelUnavailable(f"{who} did not answer within {timeout:g}s") from None
    except httpx.TransportError as error:
        reason = f"{type(error).__name__}: {error}"
        for secret in redact:
            reason = reason.replace(secret, "***")
        raise ChannelUnavailable(f"{who} unreachable: {reason}") from None


def _check_answer(who: str, response: httpx.Response, *, detail: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise ChannelUnavailable(
            f"{who} answered HTTP {status}" + (f": {detail}" if detail else ""),
            retry_after=retry_after(response),
        )
    if 300 <= status < 400:
        where = response.headers.get("location", "?")
        raise ChannelRejected(
            f"{who} answered HTTP {status} (a redirect to {where}): configure the final URL"
        )
    raise ChannelRejected(f"{who} refused the message: HTTP {status} {detail}")


def retry_after(response: httpx.Response, now: datetime | None = None) -> timedelta | None:
    """How long the receiver asks us to wait: the ``Retry-After`` header (seconds or an HTTP
    date), or Telegram's ``parameters.retry_after``; capped; None when absent or bad."""
    value = response.headers.get("retry-after", "").strip() or _telegram_retry_after(response)
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


def _telegram_retry_after(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        return ""
    parameters = answer.get("parameters") if isinstance(answer, dict) else None
    seconds = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return str(seconds) if isinstance(seconds, int) else ""


def slack_escape(text: str) -> str:
    """Slack reads ``<...>`` as links and mentions: the three control characters are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class EmailChannel:
    """SMTP with TLS from the first byte (``tls``, port 465) or upgraded by STARTTLS (587), and
    a login when a username is configured. Never in clear text: the password would travel so."""

    name = "email"
    attachments = AttachmentSupport.WITH_TEXT

    def __init__(self, settings: EmailChannelSettings, password: str | None) -> None:
        self._settings = settings
        self._password = password
        cafile = str(settings.ca_file) if settings.ca_file is not None else None
        self._tls = ssl.create_default_context(cafile=cafile)

    async def send(self, message: Outgoing) -> None:
        settings = self._settings
        try:
            _, answer = await aiosmtplib.send(
                self.compose(message),
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=self._password if settings.username else None,
                use_tls=settings.security is SmtpSecurity.TLS,
                start_tls=settings.security is SmtpSecurity.STARTTLS,
                tls_context=self._tls,
                timeout=settings.timeout_seconds,
            )
        except aiosmtplib.SMTPException as error:
            raise smtp_failure(error, settings.timeout_seconds) from None
        except (OSError, ssl.SSLError) as error:
            raise ChannelUnavailable(f"SMTP server unreachable: {error}") from None
        log.debug("mail accepted", answer=answer)

    def compose(self, message: Outgoing) -> EmailMessage:
        settings = self._settings
        title = message.text.split("\n", 1)[0]
        marker = "" if message.severity == "info" else f"{message.severity.upper()}: "
        mail = EmailMessage()
        mail["From"] = settings.sender
        mail["To"] = ", ".join(settings.recipients)
        mail["Subject"] = fit(f"{settings.subject_prefix} {marker}{title}".strip(), 200)
        mail["Date"] = format_datetime(utc_now())
        # The same for every attempt: a mail sent twice (its acceptance lost on the way back)
        # is one message to the receiving clients.
        mail["Message-ID"] = _message_id(message, settings.sender)
        mail.set_content(message.text)
        if message.attachment is not None:
            maintype, _, subtype = message.attachment.media_type.partition("/")
            mail.add_attachment(
                message.attachment.content,
                maintype=maintype,
                subtype=subtype,
                filename=message.attachment.filename,
            )
        return mail


def _message_id(message: Outgoing, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "ordo"
    local = re.sub(r"[^A-Za-z0-9.-]", "-", f"ordo.{message.message_id}.{message.delivery_id}")
    return f"<{local}@{domain}>"


def smtp_failure(error: aiosmtplib.SMTPException, timeout: float) -> Exception:
    """What an SMTP error means for the delivery: a 4xx reply is "later", a 5xx "never"."""
    if isinstance(error, aiosmtplib.SMTPTimeoutError):
        return ChannelUnavailable(f"SMTP server did not answer within {timeout:g}s")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in error.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
        if all(400 <= code < 500 for code in codes):
            return ChannelUnavailable(f"SMTP server deferred every recipient: {detail}")
        return ChannelRejected(f"SMTP server refused the recipients: {detail}")
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return ChannelRejected(
            f"SMTP server refused the login ({error.code} {error.message}): check the username "
            "and ORDO_SMTP_PASSWORD"
        )
    if isinstance(error, aiosmtplib.SMTPResponseException):
        reply = f"{error.code} {error.message}"
        if 400 <= error.code < 500:
            return ChannelUnavailable(f"SMTP server deferred the mail: {reply}")
        return ChannelRejected(f"SMTP server refused the mail: {reply}")
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return ChannelRejected(f"SMTP server cannot do what is configured: {error.message}")
    return ChannelUnavailable(f"SMTP failed: {type(error).__name__}: {error.message}")


def configured_channels(
    settings: NotifierSettings, client: httpx.AsyncClient
) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    configured = settings.channels
    if configured.log is not None:
        channels["log"] = LogChannel()
    if configured.webhook is not None:
        channels["webhook"] = WebhookChannel(
            settings.secret("webhook_url"),
            client,
            timeout_seconds=configured.webhook.timeout_seconds,
        )
    if configured.telegram is not None:
        channels["telegram"] = TelegramChannel(
            str(configured.telegram.api_url),
            settings.secret("telegram_bot_token"),
            configured.telegram.chat_id,
            client,
            timeout_seconds=configured.telegram.timeout_seconds,
        )
    if configured.email is not None:
        password = settings.smtp_password
        channels["email"] = EmailChannel(
            configured.email, password.get_secret_value() if password else None
        )
    return channels
