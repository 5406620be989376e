"""The body of ``POST /v1/signals``, the authenticated JSON API for signals.

The body mirrors :class:`~ordo.contracts.signals.SubmitSignal`: an idempotency key and the signal
itself, so that a signal reads the same whether it came over HTTP or NATS.

.. code-block:: json

    {"idempotency_key": "my-bot-2024-01-15-0001",
     "signal": {"account": "main", "strategy": "trend", "venue": "binance",
                "symbol": "BTCUSDT", "intent": "enter_long",
                "size": {"unit": "quote", "value": "250"}}}
"""

from collections.abc import Collection, Mapping
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from ordo.contracts.enums import SizeUnit
from ordo.contracts.envelope import Contract
from ordo.contracts.signals import SignalRequest
from ordo.signal.domain.errors import SignalError, UnknownSymbol, UnknownVenue
from ordo.signal.domain.intent import needs_size
from ordo.signal.domain.symbols import normalise_symbol

_INCOMPLETE = "incomplete_signal"

IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        # Printable ASCII without spaces: the key becomes a NATS message id header.
        pattern=r"^[\x21-\x7e]+$",
        description="The caller's id for this signal; a repeat with the same key is ignored",
    ),
]


class SignalApiRequest(Contract):
    """A signal sent to the JSON API. Pass its signal to :func:`normalise_signal` before use."""

    idempotency_key: IdempotencyKey
    signal: SignalRequest

    @field_validator("signal")
    @classmethod
    def _signal_is_complete(cls, signal: SignalRequest) -> SignalRequest:
        gap = missing_part(signal)
        if gap is not None:
            raise PydanticCustomError(
                _INCOMPLETE, "{field} {reason}", {"field": gap.field, "reason": gap.reason}
            )
        return signal


def missing_part(signal: SignalRequest) -> SignalError | None:
    """What the signal's intent needs but the signal lacks (field and reason), if anything."""
    if signal.size is None and needs_size(signal.intent):
        return SignalError("size", f"is required for {signal.intent}")
    risk_sized = signal.size is not None and signal.size.unit is SizeUnit.RISK
    if risk_sized and signal.stop_price is None:
        return SignalError("stop_price", "is required when the size unit is risk")
    return None


def parse_api_request(body: bytes) -> SignalApiRequest:
    """The request in a JSON ``body``; raises :class:`SignalError` and nothing else.

    The error names the first field at fault (``signal.size.value``) and the reason.
    """
    try:
        return SignalApiRequest.model_validate_json(body)
    except ValidationError as error:
        # "from None": the validation error quotes the input.
        raise _request_error(error.errors(include_url=False)[0]) from None


def venue_markets(
    venue: str, markets: Mapping[str, Collection[str]], *, field: str
) -> Collection[str]:
    """The market list of ``venue``; raises :class:`UnknownVenue` at ``field`` if there is none."""
    listed = markets.get(venue)
    if listed is None:
        known = ", ".join(sorted(markets)) or "none"
        raise UnknownVenue(field, f"{venue!r} is not a configured venue (configured: {known})")
    return listed


def normalise_signal(
    signal: SignalRequest, markets: Mapping[str, Collection[str]]
) -> SignalRequest:
    """``signal`` checked for completeness, with its venue's unified symbol.

    For a signal that arrived inside a message (``SubmitSignal.signal``) rather than through
    :func:`parse_api_request`; field names in errors start with ``signal.``. Raises
    :class:`SignalError`.
    """
    gap = missing_part(signal)
    if gap is not None:
        raise SignalError(f"signal.{gap.field}", gap.reason)
    listed = venue_markets(signal.venue, markets, field="signal.venue")
    return _with_unified_symbol(signal, listed)


def _with_unified_symbol(signal: SignalRequest, markets: Collection[str]) -> SignalRequest:
    try:
        symbol = normalise_symbol(signal.symbol, markets)
    except UnknownSymbol as error:
        raise UnknownSymbol(error.symbol, error.reason, field="signal.symbol") from None
    try:
        # Validated again: the market list is the venue's data, not ours.
        return SignalRequest.model_validate({**signal.model_dump(), "symbol": symbol})
    except ValidationError:
        raise UnknownSymbol(
            signal.symbol,
            f"market {symbol!r} is not a usable symbol name",
            field="signal.symbol",
        ) from None


def _request_error(detail: ErrorDetails) -> SignalError:
    location = [str(part) for part in detail["loc"]]
    kind, ctx = detail["type"], detail.get("ctx", {})
    if kind == _INCOMPLETE:
        return SignalError(".".join([*location, str(ctx["field"])]), str(ctx["reason"]))
    field = ".".join(location) or "body"
    if kind == "missing":
        return SignalError(field, "is required")
    if kind == "extra_forbidden":
        return SignalError(field, "is not a known field")
    if kind == "json_invalid":
        return SignalError("body", f"is not valid JSON ({ctx.get('error', 'syntax error')})")
    if kind == "model_type" and field == "body":
        return SignalError("body", "must be a JSON object")
    return SignalError(field, _as_reason(detail["msg"]))


def _as_reason(message: str) -> str:
    # Pydantic says "Input should be ..."; the reason follows the field name: "intent: must be ...".
    if message.startswith("Input should be "):
        return "must be " + message.removeprefix("Input should be ")
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]
