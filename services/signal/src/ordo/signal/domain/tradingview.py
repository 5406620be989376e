"""Read a TradingView strategy alert and turn it into a normalised signal request.

TradingView posts the alert text as the body: ``application/json`` when the text is valid JSON,
otherwise ``text/plain``. A plain-text body may still be JSON; if not, ``key=value`` pairs are
accepted, one a line or separated by commas. Every refusal is an :class:`AlertError` naming the
field and the reason, so that the sender can fix the alert template.
"""

import json
import re
from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from ordo.contracts.enums import Intent, OrderType, Side, SizeUnit, TimeInForce
from ordo.contracts.signals import (
    Name,
    OrderRequest,
    SignalRequest,
    Size,
    reduce_only_problem,
)
from ordo.signal.domain.errors import AlertError, UnknownSymbol
from ordo.signal.domain.intent import MarketPosition, needs_size, to_intent
from ordo.signal.domain.symbols import normalise_symbol

MAX_ALERT_BYTES = 16 * 1024

_JSON_MEDIA_TYPES = frozenset({"application/json", "text/json"})
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A comma starts a new pair only when a key and "=" follow, so commas inside a comment survive.
_PAIR_SEPARATOR = re.compile(r",\s*(?=[A-Za-z_][A-Za-z0-9_]*\s*=)")
# Bounds that keep a number's plain-text form short; no price or size comes near them.
_MAX_DIGITS = 40
_MAX_EXPONENT = 40
_TIME_EXAMPLE = "2024-01-15T10:30:00Z"


# --- field types -------------------------------------------------------------------------------


def _refuse_placeholder(value: Any) -> Any:
    # TradingView leaves a placeholder it does not know as it is; trading on it would be a guess.
    if isinstance(value, str) and "{{" in value and "}}" in value:
        raise PydanticCustomError(
            "placeholder",
            "still holds a {{placeholder}} that TradingView did not fill in; "
            "check the alert message template",
        )
    return value


def _text(value: Any) -> Any:
    """Text as sent; a JSON number (e.g. an unquoted ``{{interval}}``) is taken as its text."""
    value = _refuse_placeholder(value)
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def _word(value: Any) -> Any:
    value = _refuse_placeholder(value)
    return value.strip().lower() if isinstance(value, str) else value


def _amount(value: Any) -> Any:
    """A decimal from text, an integer, or a JSON number.

    The template renders numbers as text, so a JSON number is the text TradingView wrote: taking
    ``Decimal(str(x))`` of it recovers that text rather than the float's binary approximation.
    """
    value = _refuse_placeholder(value)
    if isinstance(value, bool):
        raise PydanticCustomError("number", "must be a number")
    if isinstance(value, float | int):
        value = Decimal(str(value))
    if isinstance(value, str):
        value = _decimal_from_text(value)
    if isinstance(value, Decimal):
        _check_bounds(value)
    return value


def _decimal_from_text(text: str) -> Decimal:
    # Decimal() also reads "1_000" and surrounding whitespace; only a plain number is meant here.
    if "_" in text:
        raise PydanticCustomError("number", "must be a number")
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise PydanticCustomError("number", "must be a number") from None


def _check_bounds(value: Decimal) -> None:
    if not value.is_finite():
        raise PydanticCustomError("number", "must be a finite number")
    sign_digits_exponent = value.as_tuple()
    exponent = sign_digits_exponent.exponent
    if len(sign_digits_exponent.digits) > _MAX_DIGITS or (
        isinstance(exponent, int) and abs(exponent) > _MAX_EXPONENT
    ):
        raise PydanticCustomError("number", "is out of range or too precise")


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("time", "is outside the supported range of times") from None


Text = Annotated[str, BeforeValidator(_text)]
Word = Annotated[str, BeforeValidator(_word)]
Amount = Annotated[Decimal, BeforeValidator(_amount), Field(allow_inf_nan=False)]
PositiveAmount = Annotated[Amount, Field(gt=0)]
Ticker = Annotated[Text, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
AlertName = Annotated[Name, BeforeValidator(_text)]
AlertTime = Annotated[AwareDatetime, BeforeValidator(_refuse_placeholder), AfterValidator(_in_utc)]
SecretText = Annotated[Text, Field(max_length=256)]


class TradingViewAlert(BaseModel):
    """The fields of a TradingView strategy alert, as Ordo's alert template sends them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # From TradingView's placeholders.
    secret: Annotated[SecretText | None, Field(repr=False)] = None
    ticker: Ticker
    exchange: Annotated[Text | None, Field(max_length=64)] = None
    action: Annotated[Side, BeforeValidator(_word)]
    contracts: PositiveAmount | None = None
    position_size: Amount | None = None  # signed in TradingView: negative when short
    market_position: Annotated[MarketPosition, BeforeValidator(_word)]
    prev_market_position: Annotated[MarketPosition | None, BeforeValidator(_word)] = None
    order_id: Annotated[Text | None, Field(max_length=128)] = None
    comment: Annotated[Text | None, Field(max_length=500)] = None
    close: PositiveAmount | None = None
    timenow: AlertTime | None = None
    interval: Annotated[Text | None, Field(max_length=16)] = None
    # Ordo's own.
    account: AlertName
    strategy: AlertName
    venue: AlertName | None = None
    alert_id: Annotated[Text | None, Field(max_length=128)] = None
    size_unit: Annotated[SizeUnit, BeforeValidator(_word)] = SizeUnit.QUANTITY
    stop: PositiveAmount | None = None  # the protective stop that risk sizing needs
    # How the order is placed (the signal's ``order`` block, flat); absent: a market order.
    order_type: Annotated[OrderType | None, BeforeValidator(_word)] = None
    time_in_force: Annotated[TimeInForce | None, BeforeValidator(_word)] = None
    limit_price: PositiveAmount | None = None
    stop_price: PositiveAmount | None = None  # a stop order's trigger
    trailing_amount: PositiveAmount | None = None
    trailing_percent: PositiveAmount | None = None
    expire_at: AlertTime | None = None
    post_only: Annotated[bool | None, BeforeValidator(_word)] = None
    reduce_only: Annotated[bool | None, BeforeValidator(_word)] = None

    @model_validator(mode="before")
    @classmethod
    def _blank_means_absent(cls, data: Any) -> Any:
        # TradingView renders an unset placeholder (often the comment) as an empty string.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data


_SECRET: TypeAdapter[str | None] = TypeAdapter(SecretText | None)


# --- reading the body --------------------------------------------------------------------------


def parse_alert(
    body: bytes, content_type: str | None, *, default_account: str | None = None
) -> TradingViewAlert:
    """The alert in ``body``; raises :class:`AlertError` and nothing else for any bad input.

    ``default_account`` stands in for an ``account`` the alert leaves out (or leaves blank), so
    that a single-account set-up needs no account in its alert template.
    """
    return alert_from_fields(read_alert_fields(body, content_type), default_account=default_account)


def alert_secret(fields: dict[str, Any]) -> str | None:
    """The ``secret`` of the alert ``fields``, read as :class:`TradingViewAlert` reads it."""
    try:
        return _SECRET.validate_python(fields.get("secret"))
    except ValidationError:
        return None


def alert_from_fields(
    fields: dict[str, Any], *, default_account: str | None = None
) -> TradingViewAlert:
    """The second half of :func:`parse_alert`: the alert read from its ``fields``."""
    if default_account is not None and _absent(fields.get("account")):
        fields = {**fields, "account": default_account}
    try:
        return TradingViewAlert.model_validate(fields)
    except ValidationError as error:
        # "from None": the validation error quotes the input, and the input holds the secret.
        raise _alert_error(error.errors(include_url=False)[0]) from None


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_alert_fields(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The fields of the alert in ``body``, not yet validated; raises :class:`AlertError`.

    The first half of :func:`parse_alert`: an intake checks :func:`alert_secret` in between, so
    that a sender without the secret learns nothing about the rest of the alert.
    """
    if len(body) > MAX_ALERT_BYTES:
        raise AlertError("body", f"is larger than {MAX_ALERT_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AlertError("body", "must be UTF-8 text") from None
    if not text.strip():
        raise AlertError("body", "is empty")
    if _media_type(content_type) in _JSON_MEDIA_TYPES or text.lstrip().startswith("{"):
        return _json_fields(text)
    return _key_value_fields(text)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _json_fields(text: str) -> dict[str, Any]:
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_refuse_json_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except AlertError:
        raise
    except json.JSONDecodeError as error:
        raise AlertError(
            "body",
            f"is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); "
            "quote every {{placeholder}} that can render as text",
        ) from None
    except (ValueError, RecursionError):
        raise AlertError("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise AlertError("body", "must be a JSON object")
    return data


def _refuse_json_constant(name: str) -> Any:
    raise AlertError("body", f"{name} is not a number")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if not _is_unicode(key):
            raise AlertError("body", _NOT_UNICODE)
        if isinstance(value, str) and not _is_unicode(value):
            raise AlertError(key, _NOT_UNICODE)
        if key in fields:
            raise AlertError(key, "appears more than once")
        fields[key] = value
    return fields


_NOT_UNICODE = "holds a \\u escape that is not a Unicode character (a lone surrogate)"


def _is_unicode(text: str) -> bool:
    # JSON's "\ud800" decodes to a lone surrogate, which no UTF-8 store or answer can carry.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key_value_fields(text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        for pair in _PAIR_SEPARATOR.split(line):
            key, equals, value = pair.partition("=")
            key = key.strip()
            if not equals or not _KEY.fullmatch(key):
                raise AlertError("body", f"line {line_number} is neither JSON nor key=value pairs")
            if key in fields:
                raise AlertError(key, "appears more than once")
            fields[key] = value.strip()
    return fields


# --- explaining validation errors --------------------------------------------------------------

_KNOWN_FIELDS = ", ".join(TradingViewAlert.model_fields)


def _alert_error(detail: ErrorDetails) -> AlertError:
    field = ".".join(str(part) for part in detail["loc"]) or "body"
    return AlertError(field, _reason(detail))


def _reason(detail: ErrorDetails) -> str:
    kind, ctx = detail["type"], detail.get("ctx", {})
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return f"is not a known field (known fields: {_KNOWN_FIELDS})"
    if kind == "greater_than" and str(ctx.get("gt")) == "0":
        return "must be a positive number"
    if kind.startswith("datetime") or kind == "timezone_aware":
        return f"must be an ISO 8601 time with a timezone, e.g. {_TIME_EXAMPLE}"
    if kind == "enum":
        return f"must be {ctx.get('expected')}"
    if kind == "string_type":
        return "must be text"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    return _as_reason(detail["msg"])


def _as_reason(message: str) -> str:
    # Pydantic says "Input should be ..."; the reason follows the field name: "close: must be ...".
    if message.startswith("Input should be "):
        return "must be " + message.removeprefix("Input should be ")
    message = message.removeprefix("Value error, ")  # a rule of the contracts, in its words
    return message[:1].lower() + message[1:]


# --- to a signal request -----------------------------------------------------------------------


def alert_venue(alert: TradingViewAlert, default_venue: str) -> str:
    """The venue the alert trades on: its own ``venue`` field, or the webhook's default."""
    return alert.venue or default_venue


def to_signal_request(
    alert: TradingViewAlert, markets: Collection[str], default_venue: str
) -> SignalRequest:
    """The normalised signal the alert asks for.

    ``markets`` is the market list of :func:`alert_venue`. Raises a
    :class:`~ordo.signal.domain.errors.SignalError`: :class:`AlertError` for a missing or
    inconsistent field, :class:`UnknownSymbol` for a ticker the venue does not list,
    :class:`UnmappableIntent` for an action that no intent explains.
    """
    intent = to_intent(
        alert.action,
        alert.market_position,
        alert.prev_market_position,
        contracts=alert.contracts,
        position_size=alert.position_size,
    )
    try:
        symbol = normalise_symbol(alert.ticker, markets)
    except UnknownSymbol as error:
        raise UnknownSymbol(error.symbol, error.reason, field="ticker") from None
    size = _size(alert, intent)
    try:
        return SignalRequest(
            account=alert.account,
            strategy=alert.strategy,
            venue=alert_venue(alert, default_venue),
            symbol=symbol,
            intent=intent,
            size=size,
            reference_price=alert.close,
            stop_price=alert.stop,
            comment=alert.comment,
            order=_order(alert, intent),
        )
    except ValidationError as error:
        raise _alert_error(error.errors(include_url=False)[0]) from None


_ORDER_FIELDS = tuple(OrderRequest.model_fields)


def _order(alert: TradingViewAlert, intent: Intent) -> OrderRequest | None:
    """The alert's order terms, or None when it names none (a market order)."""
    given = {name: value for name in _ORDER_FIELDS if (value := getattr(alert, name)) is not None}
    if not given:
        return None
    try:
        order = OrderRequest.model_validate(given)
    except ValidationError as error:
        # A rule across fields has no field of its own: it is about the alert's order.
        detail = error.errors(include_url=False)[0]
        raise AlertError(
            ".".join(str(part) for part in detail["loc"]) or "order", _reason(detail)
        ) from None
    problem = reduce_only_problem(intent, order)
    if problem is not None:
        raise AlertError("reduce_only", problem)
    return order


def _size(alert: TradingViewAlert, intent: Intent) -> Size | None:
    # An exit to flat closes what the account holds: TradingView's contracts count the position
    # of its own simulation, which need not match the account's.
    if not needs_size(intent):
        return None
    if alert.size_unit is SizeUnit.RISK and alert.stop is None:
        raise AlertError("stop", "is required when size_unit is risk")
    if intent is Intent.REVERSE:
        return Size(unit=alert.size_unit, value=_reverse_size(alert))
    if alert.contracts is None:
        raise AlertError("contracts", f"is required for {intent}")
    return Size(unit=alert.size_unit, value=alert.contracts)


def _reverse_size(alert: TradingViewAlert) -> Decimal:
    # A reverse order's contracts close the old position and open the new one; in quantity terms
    # only the new position, the resulting position size, is the size of the signal.
    if alert.size_unit is not SizeUnit.QUANTITY:
        if alert.contracts is None:
            raise AlertError("contracts", f"is required for {Intent.REVERSE}")
        return alert.contracts
    if alert.position_size is None or alert.position_size == 0:
        raise AlertError(
            "position_size",
            "is required for a reverse sized in quantity: contracts counts both the closing "
            "and the opening part",
        )
    return abs(alert.position_size)
