"""The loser/winner offset: close a losing group, and realise enough of the winners' profit to
cover its loss.

A group is one strategy's position in one instrument on one account. When a group's unrealised
loss reaches both thresholds (a percent of its entry value and an amount), it is the loser (the
deepest loss when several qualify). The account's profitable groups are the winners, the most
profitable first: each is closed in part, just enough (rounded up to the venue's quantity step,
never more than it holds) that the profit realised covers the loss realised by closing the loser.
Realised P&L is DOMAIN.md's: the fees of both sides attributable to the quantity closed count, at
``fee_rate`` of the entry and of the exit notional, on the loser and on the winners alike.

When the winners together cannot cover the loss, nothing is planned: the offset never turns
unrealised profit into realised profit without closing the loser against it.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_, Price

ZERO = Decimal(0)
HUNDRED = Decimal(100)


class OffsetSettings(BaseModel):
    """``risk.offset`` in the config file. Off unless enabled; the thresholds have no default
    that could suit every account, so enabling it requires both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    interval_seconds: float = Field(default=30.0, gt=0, description="How often each account")
    loss_percent: Decimal_ | None = Field(
        default=None, gt=0, le=100, description="Of the group's entry value"
    )
    loss_amount: Decimal_ | None = Field(default=None, gt=0, description="In the quote currency")
    fee_rate: Decimal_ = Field(
        default=ZERO, ge=0, lt=1, description="The taker fee rate, paid on entry and on exit"
    )
    # Keep them in step with the OMS's markets: the OMS floors a quantity to its step, and a
    # winner's close floored there would realise less than planned.
    quantity_steps: dict[Name, Price] = Field(
        default_factory=dict, description="Per symbol: the venue's quantity step"
    )
    default_quantity_step: Price = Decimal("0.00000001")

    @model_validator(mode="after")
    def _thresholds_when_enabled(self) -> "OffsetSettings":
        if self.enabled and (self.loss_percent is None or self.loss_amount is None):
            raise ValueError("risk.offset.enabled needs both loss_percent and loss_amount")
        return self

    def step_of(self, symbol: str) -> Decimal:
        return self.quantity_steps.get(symbol, self.default_quantity_step)


@dataclass(frozen=True, order=True)
class GroupKey:
    strategy: str
    venue: str
    symbol: str


@dataclass(frozen=True)
class Group:
    """A position with its mark: ``quantity`` is signed (short < 0)."""

    key: GroupKey
    quantity: Decimal
    average_entry: Decimal
    mark: Decimal
    version: int = 0

    @property
    def held(self) -> Decimal:
        return abs(self.quantity)

    @property
    def unrealised(self) -> Decimal:
        return (self.mark - self.average_entry) * self.quantity

    @property
    def loss_percent(self) -> Decimal:
        return -self.unrealised / (self.held * self.average_entry) * HUNDRED

    def realised_per_unit(self, fee_rate: Decimal) -> Decimal:
        """What closing one unit at the mark realises, after the fees of its entry and exit."""
        direction = 1 if self.quantity > 0 else -1
        fees = (self.mark + self.average_entry) * fee_rate
        return (self.mark - self.average_entry) * direction - fees


@dataclass(frozen=True)
class Close:
    group: Group
    quantity: Decimal
    realised: Decimal = field(compare=False)

    @property
    def whole(self) -> bool:
        return self.quantity == self.group.held


@dataclass(frozen=True)
class OffsetPlan:
    loser: Close
    winners: tuple[Close, ...]

    @property
    def loss(self) -> Decimal:
        return -self.loser.realised

    @property
    def covered(self) -> Decimal:
        return sum((close.realised for close in self.winners), ZERO)

    @property
    def closes(self) -> tuple[Close, ...]:
        return (self.loser, *self.winners)


def plan_offset(groups: Sequence[Group], settings: OffsetSettings) -> OffsetPlan | None:
    """The closes that offset the deepest qualifying loser, or None (no loser, or not enough
    profit to cover it)."""
    open_groups = [group for group in groups if group.quantity != 0 and group.average_entry > 0]
    loser = _loser(open_groups, settings)
    if loser is None:
        return None
    fee_rate = settings.fee_rate
    loser_close = Close(loser, loser.held, loser.realised_per_unit(fee_rate) * loser.held)
    if loser_close.realised >= 0:
        return None  # the fee-free loss qualified, but nothing is lost by closing it
    winners = _winners((group for group in open_groups if group is not loser), fee_rate)
    available = sum((per_unit * group.held for group, per_unit in winners), ZERO)
    if available < -loser_close.realised:
        return None
    return OffsetPlan(loser_close, _cover(-loser_close.realised, winners, settings.step_of))


def _loser(groups: Iterable[Group], settings: OffsetSettings) -> Group | None:
    if settings.loss_percent is None or settings.loss_amount is None:
        return None
    qualifying = [
        group
        for group in groups
        if group.unrealised < 0
        and -group.unrealised >= settings.loss_amount
        and group.loss_percent >= settings.loss_percent
    ]
    # The deepest loss first; the key settles ties, so that every replica picks the same.
    return min(qualifying, key=lambda group: (group.unrealised, group.key), default=None)


def _winners(groups: Iterable[Group], fee_rate: Decimal) -> list[tuple[Group, Decimal]]:
    profitable = [(group, group.realised_per_unit(fee_rate)) for group in groups]
    profitable = [(group, per_unit) for group, per_unit in profitable if per_unit > 0]
    # The most profitable first (the whole group's profit), the key settling ties.
    profitable.sort(key=lambda pair: (-(pair[1] * pair[0].held), pair[0].key))
    return profitable


def _cover(
    loss: Decimal,
    winners: Sequence[tuple[Group, Decimal]],
    step_of: Callable[[str], Decimal],
) -> tuple[Close, ...]:
    closes = []
    remaining = loss
    for group, per_unit in winners:
        if remaining <= 0:
            break
        needed = _units_to_realise(remaining, per_unit, step_of(group.key.symbol))
        quantity = min(needed, group.held)
        realised = quantity * per_unit
        closes.append(Close(group, quantity, realised))
        remaining -= realised
    return tuple(closes)


def _units_to_realise(amount: Decimal, per_unit: Decimal, step: Decimal) -> Decimal:
    """The fewest whole steps whose profit reaches ``amount``: every rounding goes up, since a
    partial close rounded down would fall short."""
    with localcontext() as context:
        context.rounding = ROUND_CEILING
        steps = (amount / per_unit / step).to_integral_value()
    return steps * step
