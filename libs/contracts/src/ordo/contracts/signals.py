"""Signals: what arrives from TradingView, the API, strategies and operators."""

from typing import Annotated

from pydantic import Field, model_validator

from ordo.contracts.enums import Intent, OrderType, SignalSource, SizeUnit, TimeInForce
from ordo.contracts.envelope import Contract, Message
from ordo.contracts.order_terms import terms_problem
from ordo.contracts.types import Decimal_, Price, UtcDatetime

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")]


class Size(Contract):
    unit: SizeUnit
    value: Annotated[Decimal_, Field(gt=0)]


# Intents that open or grow exposure: a reduce-only order could never carry them out.
_OPENING = frozenset({Intent.ENTER_LONG, Intent.ENTER_SHORT, Intent.ADD, Intent.REVERSE})


class OrderRequest(Contract):
    """How a signal's orders are placed; without it they are market orders, GTC.

    The same terms as an order (``OrderSpec``), checked by the same venue-independent rules
    (:mod:`ordo.contracts.order_terms`). ``stop_price`` here is a stop order's trigger, not the
    signal's protective ``stop_price`` that risk sizing uses. Prices are rounded to the venue's
    tick toward the safe side by the OMS. Whether a venue takes the type natively (or the OMS
    emulates it) and whether it has a session close for DAY is decided by the OMS.
    """

    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.GTC
    limit_price: Price | None = Field(default=None, description="Limit and stop-limit orders")
    stop_price: Price | None = Field(
        default=None, description="The trigger of a stop-market or stop-limit order"
    )
    trailing_amount: Price | None = Field(
        default=None, description="A trailing stop's distance from the best price, in price"
    )
    trailing_percent: Decimal_ | None = Field(
        default=None,
        gt=0,
        lt=100,
        description="A trailing stop's distance from the best price, in percent",
    )
    expire_at: UtcDatetime | None = Field(default=None, description="When a GTD order expires")
    post_only: bool = False
    reduce_only: bool = Field(
        default=False,
        description="Only for exits, reduce and close_all (which are reduce-only anyway)",
    )

    @model_validator(mode="after")
    def _makes_sense(self) -> "OrderRequest":
        problem = terms_problem(self)
        gtd = self.time_in_force is TimeInForce.GTD
        if problem is None and self.expire_at is not None and not gtd:
            problem = "expire_at is for GTD orders (DAY expires at its venue's session close)"
        if problem is not None:
            raise ValueError(f"{self.order_type} {self.time_in_force.upper()}: {problem}")
        return self


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
    order: OrderRequest | None = Field(
        default=None, description="The order type, prices, time in force and flags; absent: market"
    )

    @model_validator(mode="after")
    def _order_fits_intent(self) -> "SignalRequest":
        problem = reduce_only_problem(self.intent, self.order)
        if problem is not None:
            raise ValueError(f"order.reduce_only: {problem}")
        return self


def reduce_only_problem(intent: Intent, order: OrderRequest | None) -> str | None:
    """Why ``order`` cannot carry out ``intent`` (a reduce-only entry), or None."""
    if order is not None and order.reduce_only and intent in _OPENING:
        return f"{intent} opens a position, and a reduce-only order can only close one"
    return None


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
