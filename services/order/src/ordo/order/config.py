"""The order service's settings: each venue's market rules, which the planner sizes orders to."""

from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from ordo.contracts.enums import OrderType, SizeUnit, TakeProfitMode
from ordo.contracts.types import Decimal_
from ordo.kit.settings import Section, ServiceSettings
from ordo.order.domain import MarketRules
from ordo.order.domain.order_types import EMULABLE, VenueCapabilities
from ordo.order.domain.strategy import DcaLevel, GridPlan, StrategyPlan, TakeProfitPlan

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


Percent = Annotated[Decimal_, Field(gt=0, lt=100)]


class DcaLevelSettings(Section):
    """One level of a DCA grid: how far from the entry price, and its share of the size."""

    gap_percent: Percent = Field(description="Below the entry price for a long, above for a short")
    weight: Positive


class DcaSettings(Section):
    base_weight: Positive = Field(default=Decimal(1), description="The base entry's share")
    levels: tuple[DcaLevelSettings, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _levels_move_away(self) -> Self:
        gaps = [level.gap_percent for level in self.levels]
        if any(later <= earlier for earlier, later in pairwise(gaps)):
            raise ValueError(
                f"each DCA level must lie further from the entry than the one before: gaps "
                f"{', '.join(str(gap) for gap in gaps)} percent do not grow"
            )
        return self


class TakeProfitSettings(Section):
    mode: TakeProfitMode
    per_leg_percent: Percent | None = Field(default=None, description="per_leg and hybrid")
    aggregate_percent: Percent | None = Field(default=None, description="aggregate and hybrid")

    @model_validator(mode="after")
    def _percentages_of_the_mode(self) -> Self:
        needs_leg = self.mode in (TakeProfitMode.PER_LEG, TakeProfitMode.HYBRID)
        needs_aggregate = self.mode in (TakeProfitMode.AGGREGATE, TakeProfitMode.HYBRID)
        if needs_leg and self.per_leg_percent is None:
            raise ValueError(f"take-profit mode {self.mode} needs per_leg_percent")
        if needs_aggregate and self.aggregate_percent is None:
            raise ValueError(f"take-profit mode {self.mode} needs aggregate_percent")
        if not needs_leg and self.per_leg_percent is not None:
            raise ValueError(f"take-profit mode {self.mode} takes no per_leg_percent")
        if not needs_aggregate and self.aggregate_percent is not None:
            raise ValueError(f"take-profit mode {self.mode} takes no aggregate_percent")
        return self


class SizingSettings(Section):
    """The size of an entry whose signal gives none."""

    unit: SizeUnit
    value: Positive


class StrategySettings(Section):
    """How one strategy's entries become a position group (every part optional)."""

    dca: DcaSettings | None = None
    max_pyramids: int = Field(default=0, ge=0, le=100, description="Add signals per group")
    take_profit: TakeProfitSettings | None = None
    stop_loss_percent: Percent | None = Field(
        default=None, description="From the group's average entry"
    )
    sizing: SizingSettings | None = None

    @property
    def plan(self) -> StrategyPlan:
        take_profit = self.take_profit
        return StrategyPlan(
            grid=None
            if self.dca is None
            else GridPlan(
                base_weight=self.dca.base_weight,
                levels=tuple(DcaLevel(lv.gap_percent, lv.weight) for lv in self.dca.levels),
            ),
            max_pyramids=self.max_pyramids,
            take_profit=None
            if take_profit is None
            else TakeProfitPlan(
                take_profit.mode, take_profit.per_leg_percent, take_profit.aggregate_percent
            ),
            stop_loss_percent=self.stop_loss_percent,
            default_size=None if self.sizing is None else (self.sizing.unit, self.sizing.value),
        )


class PoolSettings(Section):
    """The execution pool: how many groups may be live per account; the rest wait."""

    max_open_groups: int = Field(default=10, ge=1)
    accounts: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Per-account max_open_groups"
    )

    def max_open_groups_of(self, account: str) -> int:
        return self.accounts.get(account, self.max_open_groups)


class VenueCapabilitiesSettings(Section):
    """What one venue takes natively. The OMS holds the stop types it lacks and releases them
    when the quotes trigger them; DAY needs a session close (none: the venue trades around the
    clock, and DAY orders are refused there)."""

    order_types: frozenset[OrderType] = frozenset(OrderType)
    session_close_utc: time | None = Field(default=None, description="e.g. 20:00 (UTC)")

    @model_validator(mode="after")
    def _takes_what_the_oms_cannot_emulate(self) -> Self:
        missing = sorted(set(OrderType) - EMULABLE - self.order_types)
        if missing:
            raise ValueError(
                f"order_types must include {', '.join(missing)}: the OMS emulates only stop "
                "types, and releases them as market or limit orders"
            )
        return self

    @property
    def capabilities(self) -> VenueCapabilities:
        return VenueCapabilities(order_types=self.order_types, session_close=self.session_close_utc)


class RebalanceSettings(Section):
    # A rebalance trade worth less than this (quote currency, at the mark) is skipped.
    min_trade_notional: NonNegative = Decimal(10)
    # A mark quoted longer ago than this is no price to rebalance at: the rebalance is refused.
    max_mark_age_seconds: float = Field(default=60.0, gt=0)


class OrderSettings(ServiceSettings):
    service_name: ClassVar[str] = "order"

    # venue → symbol → rules. A signal for a market missing here cannot be planned: it is
    # recorded as unplannable, never sized by a guess.
    markets: dict[str, dict[str, MarketRulesSettings]] = Field(default_factory=default_markets)
    # strategy name → how its entries become position groups. A strategy missing here trades as
    # before: each signal becomes one market order against the netted position.
    strategies: dict[str, StrategySettings] = Field(default_factory=dict)
    pool: PoolSettings = PoolSettings()
    # account → the money it started with (quote currency). Sizing by percent of equity reads
    # equity as this plus the account's realised P&L and its unrealised P&L at the marks it has;
    # an account missing here cannot be sized so.
    capital: dict[str, Positive] = Field(default_factory=dict)
    # venue → what it takes natively. A venue missing here takes every order type natively and
    # has no session close, as the paper venue does.
    venues: dict[str, VenueCapabilitiesSettings] = Field(default_factory=dict)
    rebalance: RebalanceSettings = RebalanceSettings()

    def venue_capabilities(self) -> Mapping[str, VenueCapabilities]:
        return {venue: settings.capabilities for venue, settings in self.venues.items()}

    def market_rules(self) -> Mapping[str, Mapping[str, MarketRules]]:
        return {
            venue: {symbol: market.rules for symbol, market in symbols.items()}
            for venue, symbols in self.markets.items()
        }
