"""Reading API bodies and checking submitted signals: every refusal names a field and a reason."""

from decimal import Decimal

import pytest

from ordo.contracts.enums import Intent, SignalSource, SizeUnit
from ordo.contracts.signals import SignalRequest, Size
from ordo.signal.domain import (
    SignalError,
    UnknownSymbol,
    UnknownVenue,
    normalise_signal,
    parse_alert,
    parse_api_request,
    request_dedupe_key,
)

MARKETS = {"paper": ("BTC/USDT", "BTC/USDT:USDT")}


def signal(**changes: object) -> SignalRequest:
    fields: dict[str, object] = {
        "account": "main",
        "strategy": "bot",
        "venue": "paper",
        "symbol": "BTCUSDT.P",
        "intent": Intent.ENTER_LONG,
        "size": Size(unit=SizeUnit.QUANTITY, value=Decimal("1")),
    }
    fields.update(changes)
    return SignalRequest.model_validate(fields)


def test_an_api_body_is_read() -> None:
    request = parse_api_request(
        b'{"idempotency_key": "k-1", "signal": {"account": "main", "strategy": "bot",'
        b' "venue": "paper", "symbol": "BTCUSDT", "intent": "exit_long"}}'
    )

    assert request.idempotency_key == "k-1"
    assert request.signal.intent is Intent.EXIT_LONG


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"", "body", "is not valid JSON"),
        (b'"text"', "body", "must be a JSON object"),
        (b'{"signal": {}}', "idempotency_key", "is required"),
        (
            b'{"idempotency_key": "k", "signal": {"account": "main", "strategy": "s",'
            b' "venue": "paper", "symbol": "BTCUSDT", "intent": "add"}}',
            "signal.size",
            "is required for add",
        ),
        (
            b'{"idempotency_key": "k", "signal": {"account": "main", "strategy": "s",'
            b' "venue": "paper", "symbol": "BTCUSDT", "intent": "add",'
            b' "size": {"unit": "risk", "value": "10"}}}',
            "signal.stop_price",
            "is required when the size unit is risk",
        ),
    ],
    ids=["empty", "not an object", "missing key", "missing size", "risk without stop"],
)
def test_a_bad_api_body_names_the_field(body: bytes, field: str, reason: str) -> None:
    with pytest.raises(SignalError) as caught:
        parse_api_request(body)

    assert caught.value.field == field
    assert caught.value.reason.startswith(reason)


def test_a_submitted_signal_gets_the_unified_symbol() -> None:
    assert normalise_signal(signal(), MARKETS).symbol == "BTC/USDT:USDT"


def test_a_submitted_signal_on_an_unknown_venue_is_refused() -> None:
    with pytest.raises(UnknownVenue) as caught:
        normalise_signal(signal(venue="kraken"), MARKETS)

    assert caught.value.field == "signal.venue"
    assert caught.value.reason == "'kraken' is not a configured venue (configured: paper)"


def test_a_submitted_signal_with_an_unknown_symbol_is_refused() -> None:
    with pytest.raises(UnknownSymbol) as caught:
        normalise_signal(signal(symbol="ETHUSDT"), MARKETS)

    assert caught.value.field == "signal.symbol"


def test_a_submitted_entry_without_a_size_is_refused() -> None:
    with pytest.raises(SignalError) as caught:
        normalise_signal(signal(size=None), MARKETS)

    assert (caught.value.field, caught.value.reason) == (
        "signal.size",
        "is required for enter_long",
    )


def test_an_alert_without_an_account_takes_the_default() -> None:
    body = b"ticker=BTCUSDT\naction=sell\nmarket_position=flat\nstrategy=s\naccount="

    assert parse_alert(body, "text/plain", default_account="main").account == "main"
    assert parse_alert(body + b"other", "text/plain", default_account="main").account == "other"


def test_an_alert_without_an_account_and_no_default_is_refused() -> None:
    with pytest.raises(SignalError) as caught:
        parse_alert(b"ticker=BTCUSDT\naction=sell\nmarket_position=flat\nstrategy=s", None)

    assert caught.value.field == "account"


def test_keys_of_different_sources_never_collide() -> None:
    api = request_dedupe_key(SignalSource.API, "k-1")
    strategy = request_dedupe_key(SignalSource.STRATEGY, "k-1")

    assert api == "api:k-1"
    assert api != strategy
