"""The paper venue's configuration: markets, prices, trading costs, starting money and faults."""

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

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
    """One market's rules, the price its random walk starts from, and its liquidity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_price: Positive
    tick_size: Positive
    step_size: Positive
    min_quantity: NonNegative
    min_notional: NonNegative
    depth: Positive = Field(
        default=Decimal(1_000_000),
        description="The notional (quote currency) that slippage and market impact are "
        "measured against: an order of this size slips by the slippage rate",
    )
    level_quantity: Positive | None = Field(
        default=None,
        description="The quantity on each price level of the book: a taker order larger than "
        "this walks several levels, one fill each. Empty: the whole order fills on one level",
    )
    maker_quantity_per_second: Positive | None = Field(
        default=None,
        description="How fast a resting order fills while the price is at or through its limit "
        "(partial fills). Empty: it fills whole as soon as the price reaches it",
    )

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


class SlippageModel(StrEnum):
    """How the price a taker order gets worsens with its size (``n`` = notional / depth)."""

    FIXED = "fixed"  # rate, whatever the size
    LINEAR = "linear"  # rate x n
    SQUARE_ROOT = "square_root"  # rate x sqrt(n): the square-root law of market impact


class Slippage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: SlippageModel = SlippageModel.FIXED
    rate: Annotated[Decimal_, Field(ge=0, lt=1)] = Field(
        default=Decimal(0), description="A fraction of the price (0.0005 is 5 basis points)"
    )


class MarketImpact(BaseModel):
    """Taker trades move the venue's price for what follows; the move fades with time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: Annotated[Decimal_, Field(ge=0, lt=1)] = Field(
        default=Decimal(0),
        description="The move, as a fraction of the price, that trading the market's depth causes",
    )
    half_life_seconds: Positive = Decimal(60)


class RandomWalkPrices(BaseModel):
    """A seeded random walk per market, from the market's start price (see ``volatility``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["random_walk"] = "random_walk"


class RecordedPrices(BaseModel):
    """Recorded OHLCV bars (one CSV file per market), replayed from when the venue starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ohlcv_csv"] = "ohlcv_csv"
    files: dict[str, Path] = Field(min_length=1, description="Market → its OHLCV CSV file")
    speed: Positive = Field(
        default=Decimal(1),
        description="Recorded seconds replayed per second (60: a minute a second)",
    )


PriceSource = Annotated[RandomWalkPrices | RecordedPrices, Field(discriminator="kind")]


class PaperVenueConfig(BaseModel):
    """How the paper venue behaves. Probabilities are per call, drawn from the venue's seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    markets: dict[str, PaperMarket] = Field(default_factory=default_markets, min_length=1)
    quote_currency: str = Field(default="USDT", min_length=1)
    starting_balance: NonNegative = Decimal(100_000)
    taker_fee_rate: FeeRate = Decimal("0.001")
    maker_fee_rate: FeeRate = Decimal("0.001")
    volatility: Annotated[Decimal, Field(ge=0, lt=Decimal("0.01"))] = Field(
        default=Decimal("0.0001"),
        description="The random walk's standard deviation of the log return over one second",
    )
    prices: PriceSource = Field(default_factory=RandomWalkPrices)
    slippage: Slippage = Slippage()
    impact: MarketImpact = MarketImpact()
    latency_min_ms: int = Field(
        default=0, ge=0, description="An order reaches the book this long after the call, at least"
    )
    latency_max_ms: int = Field(default=0, ge=0, description="... and at most")
    feed_origin: AwareDatetime | None = Field(
        default=None,
        description="When every market stands at its start price (or the replay of recorded "
        "prices starts). Left empty, the service's accounts and quotes share the origin of the "
        "oldest saved books, else of the first price asked for. Set it to give every replica "
        "the same prices from the start.",
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

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.latency_min_ms > self.latency_max_ms:
            raise ValueError(
                f"latency_min_ms {self.latency_min_ms} is above latency_max_ms "
                f"{self.latency_max_ms}"
            )
        recorded = self.prices.files if isinstance(self.prices, RecordedPrices) else None
        if recorded is not None and (missing := sorted(set(self.markets) - set(recorded))):
            raise ValueError(f"recorded prices: no OHLCV file for {', '.join(missing)}")
        return self

    @field_validator("markets")
    @classmethod
    def _symbols_are_unified(cls, markets: dict[str, PaperMarket]) -> dict[str, PaperMarket]:
        for symbol in markets:
            base, _, quote = symbol.partition("/")
            if not base or not quote:
                raise ValueError(f"market {symbol!r} is not a unified symbol such as 'BTC/USDT'")
        return markets
