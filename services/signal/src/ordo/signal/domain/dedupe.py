"""Recognise an alert TradingView sent twice, and check that a sender knows the shared secret.

TradingView retries a webhook that did not answer in time, so the same alert can arrive more than
once. Its dedupe key is the alert's own id when it has one, otherwise a digest of its content.
"""

import hashlib
import hmac
import json
from datetime import datetime
from decimal import Decimal
from enum import Enum

from ordo.contracts.enums import SignalSource
from ordo.contracts.signals import SignalRequest
from ordo.signal.domain.tradingview import TradingViewAlert

_SIGNATURE_PREFIX = "sha256="


def dedupe_key(alert: TradingViewAlert) -> str:
    """The alert's identity: ``tv-alert-…``, ``tv-order-…`` or ``tv-content-…`` and a SHA-256.

    * ``alert_id`` when the template sets one;
    * else ``order_id`` with ``timenow`` when both are present;
    * else the content (secret excluded), so that a retried body maps to the same key.

    The ids are scoped to the account and strategy (the order id also to the ticker): strategy
    order ids like ``"Long"`` repeat across strategies and symbols, and may fire in the same
    second. Hashing keeps the key short and safe as a NATS message id whatever the ids contain.
    """
    scope = {"account": alert.account, "strategy": alert.strategy}
    if alert.alert_id is not None:
        return "tv-alert-" + _digest({**scope, "alert_id": alert.alert_id})
    if alert.order_id is not None and alert.timenow is not None:
        order = {
            "exchange": alert.exchange,
            "ticker": alert.ticker,
            "order_id": alert.order_id,
            "timenow": alert.timenow,
        }
        return "tv-order-" + _digest({**scope, **order})
    return "tv-content-" + _digest(alert.model_dump(exclude={"secret"}))


def dedupe_key_field(alert: TradingViewAlert) -> str:
    """The alert field that :func:`dedupe_key` identifies the alert by, to name in a conflict."""
    if alert.alert_id is not None:
        return "alert_id"
    if alert.order_id is not None and alert.timenow is not None:
        return "order_id"
    return "body"


def fingerprint(signal: SignalRequest) -> str:
    """A digest of ``signal``'s content: equal for equal signals, however their numbers are spelled.

    Tells a retry (the same signal again under its dedupe key) from a different signal that
    reuses the key.
    """
    return _digest(signal.model_dump())


def request_dedupe_key(source: SignalSource, idempotency_key: str) -> str:
    """The identity of a signal sent with the caller's own idempotency key: ``<source>:<key>``.

    Scoped to the source, so that a strategy's key never collides with an API caller's; a signal
    sent with the same key over HTTP and over NATS (source ``api`` both times) is one signal.
    """
    return f"{source.value}:{idempotency_key}"


def secret_matches(given: str | None, expected: str) -> bool:
    """Whether ``given`` is the expected secret, in constant time. An empty secret never matches."""
    if given is None or not expected:
        return False
    # compare_digest answers at once for inputs of different lengths, which would time the
    # secret's length: compare digests, always of one length. "surrogatepass": a lone surrogate
    # from a JSON escape must make a mismatch, not an error.
    return hmac.compare_digest(_secret_digest(given), _secret_digest(expected))


def _secret_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def hmac_signature_valid(body: bytes, header_value: str | None, key: str) -> bool:
    """Whether ``header_value`` is the hex HMAC-SHA256 of ``body`` under ``key``.

    The header may carry a ``sha256=`` prefix, as GitHub-style signatures do.
    """
    if header_value is None or not key:
        return False
    signature = header_value.strip()
    if signature[: len(_SIGNATURE_PREFIX)].lower() == _SIGNATURE_PREFIX:
        signature = signature[len(_SIGNATURE_PREFIX) :]
    expected = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.lower().encode(), expected.encode())


def _digest(content: dict[str, object]) -> str:
    canonical = {name: _canonical(value) for name, value in content.items()}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: object) -> object:
    if isinstance(value, dict):
        return {name: _canonical(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, Decimal):
        return _canonical_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _canonical_decimal(value: Decimal) -> str:
    # 1, 1.0 and 1.00 are one number; normalize() drops the trailing zeros ("-0" becomes "0").
    if value == 0:
        return "0"
    return format(value.normalize(), "f")
