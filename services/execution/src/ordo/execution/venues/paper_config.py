"""The paper venue's configuration: markets, fees, starting money and injected faults."""

from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ordo.contracts.types import Decimal_
from ordo.execution.venues.base import MarketRules

Probability = Annotated[Decimal, Field(ge=0, le=1)]
FaultableCall = Literal[
    "create_order",
    "cancel_order",
    "fetch_order",
    "open_orders",
    "recent_fills",
    "balances",
    "positions",
]
"""The venue calls that injected failures and timeouts can strike (market metadata never)."""
FeeRate = Annotated[Decimal_, Field(ge=0, lt=1)]
Positive = Annotated[Decimal_, Field(gt=0)]
NonNegative = Annotated[Decimal_, Field(ge=0)]


class PaperMarket(BaseModel):
    """One market's rules and the price its random walk starts from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_price: Positive
    tick_size: Positive
    step_size: Positive
    min_quantity: NonNegative
    min_notional: NonNegative

    @property
    def rules(self) -> MarketRules:
        return MarketRules(
            tick_size=self.tick_size,
            step_size=self.step_size,
            min_quantity=self.min_quantity,
            min_notional=self.min_notional,
        )


def _market(start_price: str, step_size: str) -> PaperMarket:
    return PaperMarket(
        start_price=Decimal(start_price),
        tick_size=Decimal("0.01"),
        step_size=Decimal(step_size),
        min_quantity=Decimal(step_size),
        min_notional=Decimal(5),
    )


def default_markets() -> dict[str, PaperMarket]:
    return {
        "BTC/USDT": _market("60000", "0.0001"),
        "ETH/USDT": _market("3000", "0.001"),
        "SOL/USDT": _market("150", "0.01"),
    }


class PaperVenueConfig(BaseModel):
    """How the paper venue behaves. Probabilities are per call, drawn from the venue's seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    markets: dict[str, PaperMarket] = Field(default_factory=default_markets, min_length=1)
    quote_currency: str = Field(default="USDT", min_length=1)
    starting_balance: NonNegative = Decimal(100_000)
    taker_fee_rate: FeeRate = Decimal("0.001")
    maker_fee_rate: FeeRate = Decimal("0.001")
    volatility: Annotated[Decimal, Field(ge=0, lt=Decimal("0.01"))] = Decimal("0.0001")
    feed_origin: AwareDatetime | None = Field(
        default=None,
        description="When every market stands at its start price. Set it to give every account "
        "the same prices; left empty, each venue's walk starts when the venue is created.",
    )
    rejection_probability: Probability = Decimal(0)
    failure_probability: Probability = Field(
        default=Decimal(0),
        description="A call to the venue raises VenueUnavailable and does nothing (orders, fills, "
        "balances and positions; market metadata is never faulted)",
    )
    timeout_probability: Probability = Field(
        default=Decimal(0),
        description="A call raises VenueTimeout; a create or cancel still takes effect first",
    )
    fault_calls: frozenset[FaultableCall] = Field(
        default=frozenset(get_args(FaultableCall)),
        description="The calls the injected failures and timeouts strike (all of them by "
        "default); e.g. only create_order, to exercise an order creation of unknown outcome",
    )
    max_closed_orders: int = Field(
        # The books are saved whole after every change, at about 0.7 kB per order: 10,000
        # finished orders made each save 7 MB. A finished order is looked up only until its
        # reports commit (seconds), and the store's submissions dedupe client order ids for good.
        default=1_000,
        ge=1,
        description="Finished orders kept for lookups and duplicate detection; older ones go",
    )

    @field_validator("markets")
    @classmethod
    def _symbols_are_unified(cls, markets: dict[str, PaperMarket]) -> dict[str, PaperMarket]:
        for symbol in markets:
            base, _, quote = symbol.partition("/")
            if not base or not quote:
                raise ValueError(f"market {symbol!r} is not a unified symbol such as 'BTC/USDT'")
        return markets
