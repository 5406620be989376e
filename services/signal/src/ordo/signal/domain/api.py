"""The body of ``POST /v1/signals``, the authenticated JSON API for signals.

The body mirrors :class:`~ordo.contracts.signals.SubmitSignal`: an idempotency key and the signal
itself, so that a signal reads the same whether it came over HTTP or NATS.

.. code-block:: json

    {"idempotency_key": "my-bot-2024-01-15-0001",
     "signal": {"account": "main", "strategy": "trend", "venue": "binance",
                "symbol": "BTCUSDT", "intent": "enter_long",
                "size": {"unit": "quote", "value": "250"}}}
"""

from collections.abc import Collection
from typing import Annotated, Self

from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from ordo.contracts.enums import SizeUnit
from ordo.contracts.envelope import Contract
from ordo.contracts.signals import SignalRequest
from ordo.signal.domain.errors import UnknownSymbol
from ordo.signal.domain.intent import needs_size
from ordo.signal.domain.symbols import normalise_symbol

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
    """A signal sent to the JSON API. Call :meth:`normalised` before acting on it."""

    idempotency_key: IdempotencyKey
    signal: SignalRequest

    @field_validator("signal")
    @classmethod
    def _signal_is_complete(cls, signal: SignalRequest) -> SignalRequest:
        if signal.size is None and needs_size(signal.intent):
            raise PydanticCustomError(
                "size_required", "size is required for {intent}", {"intent": str(signal.intent)}
            )
        risk_sized = signal.size is not None and signal.size.unit is SizeUnit.RISK
        if risk_sized and signal.stop_price is None:
            raise PydanticCustomError(
                "stop_required", "stop_price is required when the size unit is risk"
            )
        return signal

    def normalised(self, markets: Collection[str]) -> Self:
        """This request with its symbol as the venue's unified symbol.

        ``markets`` is the market list of ``signal.venue``. Raises
        :class:`~ordo.signal.domain.errors.UnknownSymbol` (field ``signal.symbol``).
        """
        try:
            symbol = normalise_symbol(self.signal.symbol, markets)
        except UnknownSymbol as error:
            raise UnknownSymbol(error.symbol, error.reason, field="signal.symbol") from None
        try:
            # Validated again: the market list is the venue's data, not ours.
            signal = SignalRequest.model_validate({**self.signal.model_dump(), "symbol": symbol})
        except ValidationError:
            raise UnknownSymbol(
                self.signal.symbol,
                f"market {symbol!r} is not a usable symbol name",
                field="signal.symbol",
            ) from None
        return self.model_copy(update={"signal": signal})
