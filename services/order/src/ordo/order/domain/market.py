"""A venue's market rules for one symbol: precision, minimums, and the costs of an entry."""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from ordo.contracts.enums import Side

ZERO = Decimal(0)
ONE = Decimal(1)


def _to_multiple(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


@dataclass(frozen=True)
class MarketRules:
    """A venue's precision and minimums for one symbol, and the costs an entry is sized for.

    ``taker_fee_rate`` and ``expected_slippage`` are fractions (0.001 is 0.1 %): a size given
    as a quote amount buys only what that amount pays for once the fee is paid and the price
    has slipped by the expected fraction.
    """

    tick_size: Decimal
    step_size: Decimal
    min_quantity: Decimal = ZERO
    min_notional: Decimal = ZERO
    taker_fee_rate: Decimal = ZERO
    expected_slippage: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.tick_size <= ZERO or self.step_size <= ZERO:
            raise ValueError(
                f"tick size and step size must be positive, got {self.tick_size} and "
                f"{self.step_size}"
            )
        if self.min_quantity < ZERO or self.min_notional < ZERO:
            raise ValueError(
                f"minimums cannot be negative, got quantity {self.min_quantity} and "
                f"notional {self.min_notional}"
            )
        for name in ("taker_fee_rate", "expected_slippage"):
            rate = getattr(self, name)
            if not ZERO <= rate < ONE:
                raise ValueError(f"{name} is a fraction from 0 up to 1, got {rate}")

    @property
    def entry_cost_factor(self) -> Decimal:
        """What one unit bought at the reference price costs, as a multiple of that price."""
        with localcontext() as context:
            context.rounding = ROUND_CEILING  # costs round up, never in the budget's favour
            return (ONE + self.expected_slippage) * (ONE + self.taker_fee_rate)

    def floor_quantity(self, quantity: Decimal) -> Decimal:
        """Down to the step: an order never trades more than it was sized for."""
        return _to_multiple(quantity, self.step_size, ROUND_FLOOR)

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """A limit price on the tick, toward the safe side: a buy never pays more than asked,
        a sell never takes less."""
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        return _to_multiple(price, self.tick_size, rounding)

    def ceil_price(self, price: Decimal) -> Decimal:
        return _to_multiple(price, self.tick_size, ROUND_CEILING)

    def violation(self, quantity: Decimal, price: Decimal | None) -> str | None:
        """Why the venue would refuse ``quantity`` (at ``price``), or None when it would not."""
        if quantity <= ZERO or quantity < self.min_quantity:
            return f"{quantity} is not above zero and the minimum quantity {self.min_quantity}"
        if price is not None and quantity * price < self.min_notional:
            return (
                f"{quantity} at {price} is worth {quantity * price}, below the minimum notional "
                f"{self.min_notional}"
            )
        return None
