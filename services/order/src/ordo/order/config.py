"""The order service's settings: each venue's market rules, which the planner sizes orders to."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import Field

from ordo.contracts.types import Decimal_
from ordo.kit.settings import Section, ServiceSettings
from ordo.order.domain import MarketRules

Positive = Annotated[Decimal_, Field(gt=0)]
NonNegative = Annotated[Decimal_, Field(ge=0)]
Fraction = Annotated[Decimal_, Field(ge=0, lt=1)]


class MarketRulesSettings(Section):
    """One symbol's precision, minimums and entry costs at one venue (Decimals as strings)."""

    tick_size: Positive
    step_size: Positive
    min_quantity: NonNegative = Decimal(0)
    min_notional: NonNegative = Decimal(0)
    # Fractions of the price (0.001 is 0.1 %). An entry sized in quote currency leaves room for
    # them, so that the order plus its costs stays inside the amount the signal gave.
    taker_fee_rate: Fraction = Decimal(0)
    expected_slippage: Fraction = Decimal(0)

    @property
    def rules(self) -> MarketRules:
        return MarketRules(
            tick_size=self.tick_size,
            step_size=self.step_size,
            min_quantity=self.min_quantity,
            min_notional=self.min_notional,
            taker_fee_rate=self.taker_fee_rate,
            expected_slippage=self.expected_slippage,
        )


def _paper_market(step_size: str) -> MarketRulesSettings:
    return MarketRulesSettings(
        tick_size=Decimal("0.01"),
        step_size=Decimal(step_size),
        min_quantity=Decimal(0),  # any quantity on the step is at least one step
        min_notional=Decimal(5),
        taker_fee_rate=Decimal("0.001"),  # the paper venue's default taker fee
    )


def default_markets() -> dict[str, dict[str, MarketRulesSettings]]:
    """The paper venue's markets (the execution service's paper venue defaults)."""
    return {
        "paper": {
            "BTC/USDT": _paper_market("0.0001"),
            "ETH/USDT": _paper_market("0.001"),
            "SOL/USDT": _paper_market("0.01"),
        }
    }


class OrderSettings(ServiceSettings):
    service_name: ClassVar[str] = "order"

    # venue → symbol → rules. A signal for a market missing here cannot be planned: it is
    # recorded as unplannable, never sized by a guess.
    markets: dict[str, dict[str, MarketRulesSettings]] = Field(default_factory=default_markets)

    def market_rules(self) -> Mapping[str, Mapping[str, MarketRules]]:
        return {
            venue: {symbol: market.rules for symbol, market in symbols.items()}
            for venue, symbols in self.markets.items()
        }
