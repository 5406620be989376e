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
    # compare_digest refuses non-ASCII str, so compare the UTF-8 bytes.
    return hmac.compare_digest(given.encode(), expected.encode())


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
