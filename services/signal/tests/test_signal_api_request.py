"""The body of POST /v1/signals: an idempotency key and a signal request."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from ordo.contracts.enums import Intent, SizeUnit
from ordo.signal.domain.api import SignalApiRequest, normalise_signal
from ordo.signal.domain.errors import UnknownSymbol

MARKETS = {"BTC/USDT", "BTC/USDT:USDT"}


def body(**signal_changes: object) -> dict[str, object]:
    signal: dict[str, object] = {
        "account": "main",
        "strategy": "bot",
        "venue": "binance",
        "symbol": "BINANCE:BTCUSDT",
        "intent": "enter_long",
        "size": {"unit": "quote", "value": "250"},
    }
    signal.update(signal_changes)
    return {"idempotency_key": "bot-0001", "signal": {k: v for k, v in signal.items() if v}}


def test_request_is_read_from_json() -> None:
    request = SignalApiRequest.model_validate_json(
        '{"idempotency_key": "bot-0001", "signal": {"account": "main", "strategy": "bot",'
        ' "venue": "binance", "symbol": "BTCUSDT.P", "intent": "enter_short",'
        ' "size": {"unit": "quantity", "value": "0.01"}, "reference_price": "42000"}}'
    )

    assert request.idempotency_key == "bot-0001"
    assert request.signal.intent is Intent.ENTER_SHORT
    assert request.signal.size is not None
    assert request.signal.size.value == Decimal("0.01")


def test_symbol_is_normalised_with_the_venue_market_list() -> None:
    request = SignalApiRequest.model_validate(body())

    normalised = normalise_signal(request.signal, {"binance": MARKETS})

    assert normalised.symbol == "BTC/USDT"
    assert normalised.size == request.signal.size


def test_unknown_symbol_is_refused_on_normalising() -> None:
    request = SignalApiRequest.model_validate(body(symbol="DOGEUSDT"))

    with pytest.raises(UnknownSymbol) as caught:
        normalise_signal(request.signal, {"binance": MARKETS})

    assert caught.value.field == "signal.symbol"


def test_exit_may_omit_size() -> None:
    request = SignalApiRequest.model_validate(body(intent="exit_long", size=None))

    assert request.signal.size is None


def test_entry_without_size_is_refused() -> None:
    with pytest.raises(ValidationError, match="size is required for enter_long"):
        SignalApiRequest.model_validate(body(size=None))


def test_risk_size_without_stop_is_refused() -> None:
    with pytest.raises(ValidationError, match="stop_price is required"):
        SignalApiRequest.model_validate(body(size={"unit": "risk", "value": "20"}))


def test_risk_size_with_stop_is_accepted() -> None:
    request = SignalApiRequest.model_validate(
        body(size={"unit": "risk", "value": "20"}, stop_price="41000")
    )

    assert request.signal.size is not None
    assert request.signal.size.unit is SizeUnit.RISK


@pytest.mark.parametrize("key", ["", "has space", "x" * 201])
def test_unusable_idempotency_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        SignalApiRequest.model_validate({**body(), "idempotency_key": key})


def test_float_amounts_are_refused_at_the_api() -> None:
    with pytest.raises(ValidationError):
        SignalApiRequest.model_validate(body(size={"unit": "quote", "value": 250.5}))


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        SignalApiRequest.model_validate({**body(), "priority": "high"})
