"""The execution service's settings: the paper venue and how often resting orders are matched."""

from typing import ClassVar

from pydantic import Field

from ordo.execution.venues.paper_config import PaperVenueConfig
from ordo.kit.settings import ServiceSettings


class PaperSettings(PaperVenueConfig):
    """The paper venue, as configured: its venue config plus the seed of its random draws."""

    seed: int = Field(default=7, description="Seeds the price walk and the injected faults")

    def venue_config(self) -> PaperVenueConfig:
        return PaperVenueConfig(
            **{name: getattr(self, name) for name in PaperVenueConfig.model_fields}
        )


class ExecutionSettings(ServiceSettings):
    service_name: ClassVar[str] = "execution"

    paper: PaperSettings = PaperSettings()
    match_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often resting paper orders are matched and reported"
    )
