"""Signals: what arrives from TradingView, the API, strategies and operators."""

from typing import Annotated

from pydantic import Field

from ordo.contracts.enums import Intent, SignalSource, SizeUnit
from ordo.contracts.envelope import Contract, Message
from ordo.contracts.types import Decimal_, Price, UtcDatetime

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")]


class Size(Contract):
    unit: SizeUnit
    value: Annotated[Decimal_, Field(gt=0)]


class SignalRequest(Contract):
    """A normalised signal: the part every source has in common."""

    account: Name
    strategy: Name
    venue: Name
    symbol: Name = Field(description="The venue's unified symbol, e.g. BTC/USDT")
    intent: Intent
    size: Size | None = Field(default=None, description="Absent for exits: close what is open")
    reference_price: Price | None = Field(default=None, description="The sender's price, if any")
    stop_price: Price | None = None
    comment: str | None = Field(default=None, max_length=500)


class SubmitSignal(Message):
    """Command: a strategy or operator submits a signal over NATS instead of HTTP."""

    schema_name = "SubmitSignal"

    idempotency_key: str = Field(min_length=1, max_length=200)
    source: SignalSource
    signal: SignalRequest


class SignalAccepted(Message):
    """A signal passed validation and was recorded; the OMS turns it into orders."""

    schema_name = "SignalAccepted"

    signal_id: str
    source: SignalSource
    received_at: UtcDatetime
    signal: SignalRequest


class SignalRejected(Message):
    """A signal arrived over NATS and was refused; HTTP callers get the reason in the response."""

    schema_name = "SignalRejected"

    signal_id: str
    source: SignalSource
    reason: str
    detail: str | None = None
