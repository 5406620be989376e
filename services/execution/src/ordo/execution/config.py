"""The execution service's settings: the paper venue and how often resting orders are matched."""

from decimal import Decimal
from typing import ClassVar, get_args

from pydantic import AwareDatetime, Field

from ordo.execution.venues.paper_config import (
    FaultableCall,
    FeeRate,
    NonNegative,
    PaperMarket,
    PaperVenueConfig,
    Probability,
)
from ordo.kit.settings import Section, ServiceSettings


class PaperSettings(Section):
    """The paper venue, as configured; :meth:`venue_config` is what the venue itself takes."""

    seed: int = Field(default=7, description="Seeds the price walk and the injected faults")
    markets: dict[str, PaperMarket] | None = Field(
        default=None, min_length=1, description="Left out: the paper venue's default markets"
    )
    quote_currency: str = Field(default="USDT", min_length=1)
    starting_balance: NonNegative = Decimal(100_000)
    taker_fee_rate: FeeRate = Decimal("0.001")
    maker_fee_rate: FeeRate = Decimal("0.001")
    volatility: Decimal = Field(default=Decimal("0.0001"), ge=0, lt=Decimal("0.01"))
    feed_origin: AwareDatetime | None = None
    rejection_probability: Probability = Decimal(0)
    failure_probability: Probability = Decimal(0)
    timeout_probability: Probability = Decimal(0)
    fault_calls: frozenset[FaultableCall] = frozenset(get_args(FaultableCall))
    max_closed_orders: int = Field(
        default=10_000, ge=1, description="Finished orders the books keep (and save each time)"
    )

    def venue_config(self) -> PaperVenueConfig:
        fields = self.model_dump(exclude={"seed", "markets"})
        if self.markets is not None:
            fields["markets"] = self.markets
        return PaperVenueConfig(**fields)


class ExecutionSettings(ServiceSettings):
    service_name: ClassVar[str] = "execution"

    paper: PaperSettings = PaperSettings()
    match_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often resting paper orders are matched and reported"
    )
