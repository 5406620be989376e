"""Pre-trade checks. Each returns a denial reason or None; :func:`evaluate` judges a proposal.

A proposal passes or fails as a whole. Its orders count against the limits cumulatively: each is
checked as if the ones before it in the proposal had been approved already.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from ordo.contracts.enums import TradingState
from ordo.contracts.orders import OrderProposed, OrderSpec
from ordo.contracts.risk import DenialReason
from ordo.risk.domain.exposure import Exposure, reduces_exposure, signed_quantity
from ordo.risk.domain.limits import RiskLimits
from ordo.risk.domain.pricing import notional, valuation_price


class DenialCode(StrEnum):
    """The machine-readable reasons a proposal is denied."""

    ACCOUNT_MISMATCH = "ACCOUNT_MISMATCH"
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PRICE = "INVALID_PRICE"
    MISSING_REFERENCE_PRICE = "MISSING_REFERENCE_PRICE"
    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"
    REDUCE_ONLY_INCREASES_EXPOSURE = "REDUCE_ONLY_INCREASES_EXPOSURE"
    MAX_NOTIONAL_PER_ORDER = "MAX_NOTIONAL_PER_ORDER"
    MAX_POSITION_QUANTITY = "MAX_POSITION_QUANTITY"
    MAX_POSITION_NOTIONAL = "MAX_POSITION_NOTIONAL"
    MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"


@dataclass(frozen=True)
class RiskContext:
    """Everything the checks read about the account. The checks never change it."""

    limits: RiskLimits
    exposure: Exposure
    trading_state: TradingState = TradingState.ACTIVE

    @property
    def account(self) -> str:
        return self.exposure.account


@dataclass(frozen=True)
class Decision:
    """The verdict on a whole proposal: approved when there is no reason to deny it."""

    reasons: tuple[DenialReason, ...] = ()

    @property
    def approved(self) -> bool:
        return not self.reasons

    @property
    def denied(self) -> bool:
        return bool(self.reasons)


Check = Callable[[OrderSpec, RiskContext], DenialReason | None]


def _deny(
    code: DenialCode,
    order: OrderSpec | None,
    message: str,
    *,
    limit: Decimal | int | None = None,
    actual: Decimal | int | None = None,
) -> DenialReason:
    return DenialReason(
        code=code.value,
        message=message,
        order_id=None if order is None else order.order_id,
        limit=None if limit is None else Decimal(limit),
        actual=None if actual is None else Decimal(actual),
    )


# -- is the order well formed? ------------------------------------------------------------------


def check_account(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if order.account == ctx.account:
        return None
    return _deny(
        DenialCode.ACCOUNT_MISMATCH,
        order,
        f"order {order.order_id} is for account {order.account!r}, not {ctx.account!r}",
    )


def check_order_id_unused(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if not ctx.exposure.is_reserved(order.order_id):
        return None
    return _deny(
        DenialCode.DUPLICATE_ORDER_ID,
        order,
        f"order id {order.order_id} was already approved",
    )


def check_quantity(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    # The contract refuses these already; the gate checks again because it is the last line.
    quantity = order.quantity
    if quantity.is_finite() and quantity > 0:
        return None
    return _deny(
        DenialCode.INVALID_QUANTITY,
        order,
        f"quantity must be a positive number (got {quantity})",
        actual=quantity if quantity.is_finite() else None,
    )


def check_prices(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    for field in ("limit_price", "stop_price", "reference_price"):
        price: Decimal | None = getattr(order, field)
        if price is not None and not (price.is_finite() and price > 0):
            return _deny(
                DenialCode.INVALID_PRICE,
                order,
                f"{field} must be a positive number (got {price})",
                actual=price if price.is_finite() else None,
            )
    return None


def check_reference_price(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if valuation_price(order) is not None:
        return None
    if order.limit_price is None and order.stop_price is None:
        message = f"a {order.order_type} order needs a reference_price to value its notional"
    else:
        message = (
            f"a {order.side} {order.order_type} order can fill beyond its own price: it needs a "
            f"reference_price to value its notional"
        )
    return _deny(DenialCode.MISSING_REFERENCE_PRICE, order, message)


# -- may the account trade it? ------------------------------------------------------------------


def check_trading_state(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if ctx.trading_state is TradingState.HALTED:
        return _deny(DenialCode.TRADING_HALTED, order, f"account {ctx.account} is halted")
    if ctx.trading_state is TradingState.ACTIVE:
        return None
    # REDUCING. The venue never lets a reduce-only order grow a position, so those pass here
    # (the reduce-only check still sees that they have something to reduce).
    if order.reduce_only or ctx.exposure.order_reduces_exposure(order):
        return None
    return _deny(
        DenialCode.TRADING_REDUCING,
        order,
        f"account {ctx.account} only takes orders that reduce exposure; "
        f"{order.side} {order.quantity} {order.symbol} would take the position from "
        f"{ctx.exposure.position_before(order)} to {ctx.exposure.position_after(order)}",
        actual=ctx.exposure.position_after(order),
    )


def check_reduce_only(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    if not order.reduce_only:
        return None
    # The largest position on the other side this order could meet, approved entries included:
    # an exit proposed together with its entry (a bracket) has that entry to reduce.
    to_reduce = ctx.exposure.worst_case_position(order.venue, order.symbol, order.side.opposite)
    if reduces_exposure(to_reduce, to_reduce + signed_quantity(order)):
        return None
    return _deny(
        DenialCode.REDUCE_ONLY_INCREASES_EXPOSURE,
        order,
        f"reduce-only {order.side} {order.quantity} {order.symbol} would increase exposure: "
        f"the position it could reduce is {to_reduce}",
        limit=max(Decimal(0), -to_reduce * order.side.sign),
        actual=order.quantity,
    )


# -- limits -------------------------------------------------------------------------------------


def check_max_notional_per_order(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_notional_per_order
    if limit is None:
        return None
    price = valuation_price(order)
    if price is None:
        return check_reference_price(order, ctx)
    value = notional(order.quantity, price)
    if value <= limit:
        return None
    return _deny(
        DenialCode.MAX_NOTIONAL_PER_ORDER,
        order,
        f"order notional {value} exceeds the limit of {limit} per order",
        limit=limit,
        actual=value,
    )


def check_max_position_quantity(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_position_quantity
    if limit is None or ctx.exposure.order_reduces_exposure(order):
        return None
    after = abs(ctx.exposure.position_after(order))
    if after <= limit:
        return None
    return _deny(
        DenialCode.MAX_POSITION_QUANTITY,
        order,
        f"position in {order.symbol} would reach {after} (open orders included), "
        f"above the limit of {limit}",
        limit=limit,
        actual=after,
    )


def check_max_position_notional(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_position_notional
    if limit is None or ctx.exposure.order_reduces_exposure(order):
        return None
    price = valuation_price(order)
    if price is None:
        return check_reference_price(order, ctx)
    value = notional(ctx.exposure.position_after(order), price)
    if value <= limit:
        return None
    return _deny(
        DenialCode.MAX_POSITION_NOTIONAL,
        order,
        f"position in {order.symbol} would be worth {value} at {price} (open orders included), "
        f"above the limit of {limit}",
        limit=limit,
        actual=value,
    )


def check_max_open_positions(order: OrderSpec, ctx: RiskContext) -> DenialReason | None:
    limit = ctx.limits.max_open_positions
    if limit is None or not ctx.exposure.opens_new_position(order):
        return None
    count = len(ctx.exposure.open_positions()) + 1
    if count <= limit:
        return None
    return _deny(
        DenialCode.MAX_OPEN_POSITIONS,
        order,
        f"{order.strategy} {order.symbol} would be open position number {count}, "
        f"above the limit of {limit}",
        limit=limit,
        actual=count,
    )


# Without a valid quantity and price the limit checks mean nothing, so they only run after these.
VALIDITY_CHECKS: tuple[Check, ...] = (
    check_account,
    check_order_id_unused,
    check_quantity,
    check_prices,
    check_reference_price,
)

LIMIT_CHECKS: tuple[Check, ...] = (
    check_trading_state,
    check_reduce_only,
    check_max_notional_per_order,
    check_max_position_quantity,
    check_max_position_notional,
    check_max_open_positions,
)


def check_order(order: OrderSpec, ctx: RiskContext) -> list[DenialReason]:
    """Every reason to deny one order, given what the context already holds."""
    invalid = [reason for check in VALIDITY_CHECKS if (reason := check(order, ctx))]
    if invalid:
        return invalid
    return [reason for check in LIMIT_CHECKS if (reason := check(order, ctx))]


def evaluate(proposal: OrderProposed, ctx: RiskContext) -> Decision:
    """Approve or deny a whole proposal.

    ``ctx`` is left as it was: once the decision is published, reserve the approved orders in it.
    """
    reasons: list[DenialReason] = []
    if proposal.account != ctx.account:
        reasons.append(
            _deny(
                DenialCode.ACCOUNT_MISMATCH,
                None,
                f"proposal {proposal.proposal_id} is for account {proposal.account!r}, "
                f"not {ctx.account!r}",
            )
        )
    working = replace(ctx, exposure=ctx.exposure.copy())
    for order in proposal.orders:
        order_reasons = check_order(order, working)
        reasons.extend(order_reasons)
        if not any(r.code in _UNRESERVABLE for r in order_reasons):
            # Later orders in the proposal are judged as if this one were approved too.
            working.exposure.reserve(order)
    return Decision(tuple(reasons))


# An order that failed one of these cannot be counted: it is malformed or already counted.
_UNRESERVABLE = frozenset(
    {
        DenialCode.ACCOUNT_MISMATCH.value,
        DenialCode.DUPLICATE_ORDER_ID.value,
        DenialCode.INVALID_QUANTITY.value,
    }
)
