"""The execution service's settings: the paper venue, the ccxt venue accounts, and timings.

Venue credentials never live in the YAML file: each ccxt account names its secrets, read from the
environment or from files (see :mod:`ordo.execution.venues.credentials`).
"""

import re
from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ordo.contracts.signals import Name
from ordo.execution.venues.paper_config import PaperVenueConfig
from ordo.kit.settings import ServiceSettings

CCXT_PREFIX = "ccxt:"
_EXCHANGE_ID = re.compile(r"^[a-z0-9_]+$")


class PaperSettings(PaperVenueConfig):
    """The paper venue, as configured: its venue config plus the seed of its random draws."""

    seed: int = Field(default=7, description="Seeds the price walk and the injected faults")

    def venue_config(self) -> PaperVenueConfig:
        return PaperVenueConfig(
            **{name: getattr(self, name) for name in PaperVenueConfig.model_fields}
        )


class VenueMode(StrEnum):
    LIVE = "live"
    SANDBOX = "sandbox"  # the exchange's testnet (ccxt's sandbox mode)


class CcxtAccount(BaseModel):
    """One account on one ccxt exchange: ``venue`` is ``ccxt:<exchange id>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: Name
    venue: Name
    mode: VenueMode = Field(
        default=VenueMode.SANDBOX, description="live trades real money: say so explicitly"
    )
    credentials: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_]+$",
        description="The name of the account's secrets: ORDO_VENUE_<NAME>_API_KEY, _SECRET, "
        "_PASSWORD, _UID (or each with _FILE). Default: <EXCHANGE>_<ACCOUNT>",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="ccxt options of the exchange, as ccxt documents them"
    )
    urls: dict[str, Any] = Field(
        default_factory=dict,
        description="Entries of the exchange's API URLs to replace (a proxy, a regional "
        "endpoint); merged into ccxt's urls['api'] after the mode is applied",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per HTTP request")
    rate_limit: bool = Field(
        default=True,
        description="ccxt's own throttle, which spaces requests by the exchange's published "
        "weights: leave it on against a real exchange",
    )
    symbols: tuple[Name, ...] = Field(
        default=(),
        description="The markets the account trades: their fills, and on spot their positions "
        "(the base balances), are read for the reconciler",
    )
    quote_currency: str = Field(default="USDT", min_length=1)
    poll_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often open orders are looked up for fills"
    )
    watch_orders: bool = Field(
        default=True,
        description="Follow orders over the exchange's websocket too, where ccxt has it",
    )

    @property
    def exchange_id(self) -> str:
        return self.venue.removeprefix(CCXT_PREFIX)

    @property
    def credentials_name(self) -> str:
        name = self.credentials or f"{self.exchange_id}_{self.account}"
        return re.sub(r"[^A-Za-z0-9]", "_", name).upper()

    @field_validator("venue")
    @classmethod
    def _ccxt_venue(cls, venue: str) -> str:
        if not venue.startswith(CCXT_PREFIX):
            raise ValueError(
                f"venue {venue!r}: list ccxt accounts here (ccxt:<exchange id>); the paper "
                "venue serves every account without an entry"
            )
        if not _EXCHANGE_ID.match(venue.removeprefix(CCXT_PREFIX)):
            raise ValueError(f"venue {venue!r}: the exchange id is lower case, as ccxt spells it")
        return venue


class ExecutionSettings(ServiceSettings):
    service_name: ClassVar[str] = "execution"

    paper: PaperSettings = PaperSettings()
    venue_accounts: tuple[CcxtAccount, ...] = Field(
        default=(), description="The accounts on ccxt exchanges, each with its mode and secrets"
    )
    match_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often resting paper orders are matched, and orders followed up",
    )
    create_lease_seconds: float = Field(
        default=20.0,
        gt=0,
        description="How long an attempt to create an order holds it: a replica that gets the "
        "same approval meanwhile waits for it. The create call is cut off before the lease "
        "ends (at three quarters of it); best kept under the NATS ack wait",
    )
    quote_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often a quote of each traded market is published (market.quote.v1): "
        "the paper venue's markets, and each ccxt account's symbols (read from its ticker)",
    )
    give_up_pending_seconds: float = Field(
        default=300.0,
        gt=0,
        description="An order the venue turned away on every attempt (it never acted on it) is "
        "reported REJECTED once it has been left alone this long: longer than all the "
        "redeliveries of its approval take",
    )
    halt_probe_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a venue account halted for refused credentials is tried again",
    )
    snapshot_fills_hours: float = Field(
        default=24.0, gt=0, description="The fills a snapshot lists when the request names none"
    )

    @model_validator(mode="after")
    def _one_entry_per_account(self) -> Self:
        seen: set[tuple[str, str]] = set()
        for entry in self.venue_accounts:
            key = (entry.venue, entry.account)
            if key in seen:
                raise ValueError(f"venue_accounts: {entry.venue} / {entry.account} is listed twice")
            seen.add(key)
        return self

    def ccxt_venues(self) -> dict[str, list[CcxtAccount]]:
        """Venue name → its configured accounts."""
        venues: dict[str, list[CcxtAccount]] = {}
        for entry in self.venue_accounts:
            venues.setdefault(entry.venue, []).append(entry)
        return venues
