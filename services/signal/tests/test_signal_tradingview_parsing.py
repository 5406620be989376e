"""Reading TradingView alert bodies: JSON, plain text, and every way a body can be wrong."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordo.contracts.enums import Side, SizeUnit
from ordo.signal.domain.errors import AlertError
from ordo.signal.domain.intent import MarketPosition
from ordo.signal.domain.tradingview import MAX_ALERT_BYTES, TradingViewAlert, parse_alert

# What Ordo's alert template renders for a short entry: numbers unquoted, as users write them.
REALISTIC_JSON_BODY = b"""{
  "secret": "s3cret",
  "ticker": "BTCUSDT.P",
  "exchange": "BINANCE",
  "action": "sell",
  "contracts": 0.012,
  "position_size": -0.012,
  "market_position": "short",
  "prev_market_position": "flat",
  "order_id": "Short",
  "comment": "",
  "close": 42123.5,
  "timenow": "2024-01-15T10:30:00Z",
  "interval": 15,
  "account": "main",
  "strategy": "trend-follow"
}"""

PLAIN_TEXT_BODY = b"""secret=s3cret
ticker=BINANCE:ETHUSDT
action=buy, contracts=1.5, market_position=long, prev_market_position=flat
close=2250.10
comment=breakout, confirmed by volume
account=main
strategy=breakout
size_unit=quantity
"""


def alert_fields(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "secret": "s3cret",
        "ticker": "BTCUSDT",
        "action": "buy",
        "contracts": "0.5",
        "market_position": "long",
        "prev_market_position": "flat",
        "account": "main",
        "strategy": "trend",
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def json_body(**changes: object) -> bytes:
    return json.dumps(alert_fields(**changes)).encode()


def refusal(body: bytes, content_type: str | None = "application/json") -> AlertError:
    with pytest.raises(AlertError) as caught:
        parse_alert(body, content_type)
    return caught.value


def test_realistic_tradingview_json_body_parses() -> None:
    alert = parse_alert(REALISTIC_JSON_BODY, "application/json; charset=utf-8")

    assert alert.ticker == "BTCUSDT.P"
    assert alert.exchange == "BINANCE"
    assert alert.action is Side.SELL
    assert alert.contracts == Decimal("0.012")
    assert alert.position_size == Decimal("-0.012")
    assert alert.market_position is MarketPosition.SHORT
    assert alert.prev_market_position is MarketPosition.FLAT
    assert alert.order_id == "Short"
    assert alert.comment is None  # TradingView rendered an empty comment
    assert alert.close == Decimal("42123.5")
    assert alert.timenow == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert alert.interval == "15"
    assert alert.size_unit is SizeUnit.QUANTITY


def test_plain_text_key_value_body_parses() -> None:
    alert = parse_alert(PLAIN_TEXT_BODY, "text/plain; charset=utf-8")

    assert alert.ticker == "BINANCE:ETHUSDT"
    assert alert.action is Side.BUY
    assert alert.contracts == Decimal("1.5")
    assert alert.close == Decimal("2250.10")
    assert alert.comment == "breakout, confirmed by volume"
    assert alert.strategy == "breakout"


def test_plain_text_body_holding_json_is_read_as_json() -> None:
    alert = parse_alert(REALISTIC_JSON_BODY, "text/plain")

    assert alert.contracts == Decimal("0.012")


def test_body_without_content_type_is_sniffed() -> None:
    assert parse_alert(REALISTIC_JSON_BODY, None).ticker == "BTCUSDT.P"
    assert parse_alert(PLAIN_TEXT_BODY, None).ticker == "BINANCE:ETHUSDT"


def test_json_numbers_keep_the_digits_tradingview_wrote() -> None:
    alert = parse_alert(
        b'{"ticker": "BTCUSDT", "action": "buy", "contracts": 0.1, '
        b'"close": 1e3, "market_position": "long", "account": "a", '
        b'"strategy": "s"}',
        "application/json",
    )

    assert alert.contracts == Decimal("0.1")
    assert alert.close == Decimal("1000")


def test_python_floats_are_taken_as_their_text() -> None:
    alert = TradingViewAlert.model_validate(alert_fields(contracts=0.1, close=42000))

    assert alert.contracts == Decimal("0.1")
    assert alert.close == Decimal(42000)


def test_words_are_read_case_insensitively() -> None:
    alert = parse_alert(json_body(action="BUY", market_position="Long", size_unit="QUOTE"), None)

    assert alert.action is Side.BUY
    assert alert.size_unit is SizeUnit.QUOTE


def test_secret_is_kept_out_of_the_alert_repr() -> None:
    alert = parse_alert(json_body(secret="hunter2"), "application/json")

    assert alert.secret == "hunter2"
    assert "hunter2" not in repr(alert)


def test_zero_contracts_are_refused_as_not_positive() -> None:
    error = refusal(json_body(contracts="0"))

    assert (error.field, error.reason) == ("contracts", "must be a positive number")


def test_text_where_a_number_belongs_is_refused() -> None:
    error = refusal(json_body(close="about 42k"))

    assert (error.field, error.reason) == ("close", "must be a number")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", "sNaN"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    error = refusal(json_body(contracts=value))

    assert error.field == "contracts"


@pytest.mark.parametrize("value", ["1e999999999", "0E-1000000", "1" * 60])
def test_absurd_numbers_are_refused(value: str) -> None:
    error = refusal(json_body(contracts=value))

    assert (error.field, error.reason) == ("contracts", "is out of range or too precise")


def test_json_nan_constant_is_refused() -> None:
    body = json_body().replace(b'"0.5"', b"NaN")

    assert refusal(body).field == "body"


def test_boolean_is_not_a_number() -> None:
    error = refusal(json_body(contracts=True))

    assert (error.field, error.reason) == ("contracts", "must be a number")


def test_unknown_field_is_refused_by_name() -> None:
    error = refusal(json_body(quantity="1"))

    assert error.field == "quantity"
    assert error.reason.startswith("is not a known field")
    assert "contracts" in error.reason


def test_missing_required_field_is_named() -> None:
    error = refusal(json_body(account=None))

    assert (error.field, error.reason) == ("account", "is required")


def test_blank_required_field_counts_as_missing() -> None:
    error = refusal(json_body(ticker="  "))

    assert (error.field, error.reason) == ("ticker", "is required")


def test_unknown_action_lists_the_accepted_ones() -> None:
    error = refusal(json_body(action="long"))

    assert error.field == "action"
    assert "buy" in error.reason
    assert "sell" in error.reason


def test_unfilled_placeholder_is_refused() -> None:
    error = refusal(json_body(close="{{close}}"))

    assert error.field == "close"
    assert "placeholder" in error.reason


def test_naive_time_is_refused() -> None:
    error = refusal(json_body(timenow="2024-01-15T10:30:00"))

    assert error.field == "timenow"
    assert "timezone" in error.reason


def test_time_that_overflows_in_utc_is_refused() -> None:
    error = refusal(json_body(timenow="9999-12-31T23:59:59-23:00"))

    assert error.field == "timenow"


def test_duplicated_json_key_is_refused() -> None:
    body = b'{"account": "main", "account": "other"}'

    assert (refusal(body).field, refusal(body).reason) == ("account", "appears more than once")


def test_duplicated_plain_text_key_is_refused() -> None:
    error = refusal(b"account=main\naccount=other", "text/plain")

    assert (error.field, error.reason) == ("account", "appears more than once")


def test_broken_json_gets_a_hint_about_quoting_placeholders() -> None:
    body = b'{"ticker": "BTCUSDT", "interval": 1D}'

    error = refusal(body, "text/plain")

    assert error.field == "body"
    assert "not valid JSON" in error.reason
    assert "line 1" in error.reason


def test_json_that_is_not_an_object_is_refused() -> None:
    error = refusal(b'["buy"]')

    assert (error.field, error.reason) == ("body", "must be a JSON object")


def test_plain_text_that_is_not_key_value_names_the_line() -> None:
    error = refusal(b"account=main\nbuy BTCUSDT now", "text/plain")

    assert (error.field, error.reason) == ("body", "line 2 is neither JSON nor key=value pairs")


def test_empty_body_is_refused() -> None:
    assert (refusal(b"  \n").field, refusal(b"  \n").reason) == ("body", "is empty")


def test_body_that_is_not_utf8_is_refused() -> None:
    assert refusal(b"\xff\xfe\x00").reason == "must be UTF-8 text"


def test_body_over_the_size_limit_is_refused() -> None:
    body = json_body(comment="x" * MAX_ALERT_BYTES)

    assert refusal(body).reason == f"is larger than {MAX_ALERT_BYTES} bytes"


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    body = b"[" * 10_000 + b"]" * 3_000

    assert refusal(body[:MAX_ALERT_BYTES]).field == "body"


def test_error_does_not_echo_the_secret() -> None:
    error = refusal(json_body(secret="hunter2", contracts="-1"))

    assert "hunter2" not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def assert_parses_or_refuses_cleanly(body: bytes, content_type: str | None) -> None:
    try:
        alert = parse_alert(body, content_type)
    except AlertError as error:
        assert error.field
        assert error.reason
    else:
        assert isinstance(alert, TradingViewAlert)


# The first run builds Hypothesis's unicode table, which is slow once; not a sign of a bad strategy.
TEXT_GENERATION = settings(suppress_health_check=[HealthCheck.too_slow])
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "text/plain", "text/plain; charset=utf-8", "x/unknown", ""]
)


@given(body=st.binary(max_size=MAX_ALERT_BYTES + 64), content_type=CONTENT_TYPES)
def test_parse_raises_nothing_but_alert_error_on_arbitrary_bytes(
    body: bytes, content_type: str | None
) -> None:
    assert_parses_or_refuses_cleanly(body, content_type)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
FIELD_NAMES = st.sampled_from([*TradingViewAlert.model_fields, "extra", ""])


@TEXT_GENERATION
@given(fields=st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=12), content_type=CONTENT_TYPES)
def test_parse_raises_nothing_but_alert_error_on_arbitrary_json_objects(
    fields: dict[str, object], content_type: str | None
) -> None:
    assert_parses_or_refuses_cleanly(json.dumps(fields).encode(), content_type)


@TEXT_GENERATION
@given(
    lines=st.lists(
        st.tuples(FIELD_NAMES, st.text(alphabet=st.characters(blacklist_categories=["Cs"]))),
        max_size=12,
    )
)
def test_parse_raises_nothing_but_alert_error_on_arbitrary_key_value_text(
    lines: list[tuple[str, str]],
) -> None:
    body = "\n".join(f"{key}={value}" for key, value in lines).encode()
    assert_parses_or_refuses_cleanly(body, "text/plain")
