"""A strategy's plan for its position groups, as the domain reads it from the configuration."""

from dataclasses import dataclass
from decimal import Decimal

from ordo.contracts.enums import GroupOrderRole, SizeUnit, TakeProfitMode

ENTRY_ROLES = frozenset({GroupOrderRole.BASE, GroupOrderRole.DCA, GroupOrderRole.PYRAMID})
EXIT_ROLES = frozenset(
    {
        GroupOrderRole.TAKE_PROFIT_LEG,
        GroupOrderRole.TAKE_PROFIT,
        GroupOrderRole.STOP_LOSS,
        GroupOrderRole.CLOSE,
    }
)


@dataclass(frozen=True)
class DcaLevel:
    gap_percent: Decimal
    weight: Decimal


@dataclass(frozen=True)
class GridPlan:
    """The base entry and the limit levels below (long) or above (short) it, each by weight."""

    base_weight: Decimal
    levels: tuple[DcaLevel, ...]


@dataclass(frozen=True)
class TakeProfitPlan:
    mode: TakeProfitMode
    per_leg_percent: Decimal | None = None
    aggregate_percent: Decimal | None = None

    def takes_profit_per_leg_on(self, role: GroupOrderRole) -> bool:
        """Per-leg mode: every entry. Hybrid: the DCA legs (the aggregate one takes the rest)."""
        if self.mode is TakeProfitMode.PER_LEG:
            return role in ENTRY_ROLES
        return self.mode is TakeProfitMode.HYBRID and role is GroupOrderRole.DCA

    @property
    def has_aggregate(self) -> bool:
        return self.mode in (TakeProfitMode.AGGREGATE, TakeProfitMode.HYBRID)


@dataclass(frozen=True)
class StrategyPlan:
    grid: GridPlan | None = None
    max_pyramids: int = 0
    take_profit: TakeProfitPlan | None = None
    stop_loss_percent: Decimal | None = None
    default_size: tuple[SizeUnit, Decimal] | None = None
