"""Risk decisions and trading state."""

from pydantic import Field

from ordo.contracts.enums import TradingState
from ordo.contracts.envelope import Contract, Message
from ordo.contracts.orders import OrderSpec
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_


class DenialReason(Contract):
    """Why a proposal was denied, in a form machines and people can both read."""

    code: str = Field(description="Machine-readable, e.g. MAX_NOTIONAL_PER_ORDER")
    message: str
    order_id: str | None = None
    limit: Decimal_ | None = None
    actual: Decimal_ | None = None


class OrderApproved(Message):
    """The risk gate approved a whole proposal; execution places its orders."""

    schema_name = "OrderApproved"

    proposal_id: str
    account: Name
    orders: tuple[OrderSpec, ...] = Field(min_length=1)


class OrderDenied(Message):
    """The risk gate denied a whole proposal."""

    schema_name = "OrderDenied"

    proposal_id: str
    account: Name
    order_ids: tuple[str, ...]
    reasons: tuple[DenialReason, ...] = Field(min_length=1)


class TradingStateChanged(Message):
    """An account's trading state changed (operator command or automatic halt)."""

    schema_name = "TradingStateChanged"

    account: Name
    state: TradingState
    previous: TradingState
    reason: str = Field(max_length=1000)
    actor: str = Field(max_length=200, description="The operator, or the service that switched it")


class SetTradingState(Message):
    """Operator command: halt, reduce or resume an account. Audited by the risk service."""

    schema_name = "SetTradingState"

    account: Name
    state: TradingState
    reason: str = Field(min_length=1, max_length=1000)
    operator: str = Field(min_length=1, max_length=200)
