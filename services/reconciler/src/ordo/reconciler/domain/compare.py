"""Compare the venue's positions with the OMS's, and grade each difference by its size.

The OMS keeps a position per strategy; the venue only knows the account's net position per symbol.
The OMS positions are therefore summed per symbol before they are compared. A difference within
the quantity tolerance is noise (rounding, dust); above it, its quote value decides the severity.
A difference that cannot be valued is critical: no price is ever made up to make it look small.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from pydantic import BaseModel, ConfigDict, field_validator

from ordo.contracts.enums import DiscrepancyKind, ReconciliationOutcome, Severity
from ordo.contracts.execution import VenueSnapshot
from ordo.contracts.orders import PositionView
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_

ZERO = Decimal(0)
# How a valuation is written in a discrepancy's detail (quote currency; prices of small coins).
DISPLAY_MONEY = Decimal("0.01")
DISPLAY_PRICE = Decimal("0.00000001")


class InvalidPrice(ValueError):
    """A price given to value differences is not a positive number."""


class Tolerances(BaseModel):
    """How large a difference must be to matter, and when it becomes critical."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity_tolerance: Decimal_ = ZERO
    critical_notional: Decimal_
    symbol_quantity_tolerance: dict[Name, Decimal_] = {}

    @field_validator("quantity_tolerance", mode="after")
    @classmethod
    def _tolerance_is_not_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError(f"must be zero or more (got {value})")
        return value

    @field_validator("symbol_quantity_tolerance", mode="after")
    @classmethod
    def _symbol_tolerances_are_not_negative(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        negative = {symbol: tolerance for symbol, tolerance in value.items() if tolerance < 0}
        if negative:
            raise ValueError(f"must be zero or more (got {negative})")
        return value

    @field_validator("critical_notional", mode="after")
    @classmethod
    def _critical_notional_is_positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError(f"must be greater than zero (got {value})")
        return value

    def quantity_tolerance_for(self, symbol: str) -> Decimal:
        return self.symbol_quantity_tolerance.get(symbol, self.quantity_tolerance)


@dataclass(frozen=True)
class Discrepancy:
    """One difference between the venue and the OMS: the data of a ``DiscrepancyFound`` event."""

    kind: DiscrepancyKind
    severity: Severity
    symbol: str | None
    venue_value: Decimal | None
    oms_value: Decimal | None
    detail: str


def compare_positions(
    snapshot: VenueSnapshot,
    oms_positions: Sequence[PositionView],
    tolerances: Tolerances,
    prices: Mapping[str, Decimal] | None = None,
) -> list[Discrepancy]:
    """Every position difference between the venue and the OMS, ordered by symbol.

    Only the OMS positions of the snapshot's account and venue take part. ``prices`` (per symbol,
    e.g. the latest marks) value a difference; without one, the OMS's average entry is used.
    """
    marks = dict(prices or {})
    _require_positive(marks)
    venue = _net_per_symbol((p.symbol, p.quantity) for p in snapshot.positions)
    mine = _of_snapshot_account(snapshot, oms_positions)
    oms = _net_per_symbol((p.symbol, p.quantity) for p in mine)
    found = []
    for symbol in sorted(venue.keys() | oms.keys()):
        price = marks.get(symbol) or _average_entry(symbol, mine)
        discrepancy = _compare_symbol(
            symbol, venue.get(symbol, ZERO), oms.get(symbol, ZERO), price, tolerances
        )
        if discrepancy is not None:
            found.append(discrepancy)
    return found


def positions_compared(snapshot: VenueSnapshot, oms_positions: Sequence[PositionView]) -> int:
    """How many symbols a comparison covers: those either side holds for the snapshot's account."""
    venue = {p.symbol for p in snapshot.positions}
    oms = {p.symbol for p in _of_snapshot_account(snapshot, oms_positions)}
    return len(venue | oms)


def outcome(discrepancies: Sequence[Discrepancy]) -> ReconciliationOutcome:
    return ReconciliationOutcome.DISCREPANCIES if discrepancies else ReconciliationOutcome.CLEAN


def requires_halt(discrepancies: Iterable[Discrepancy]) -> bool:
    """A critical mismatch halts the account until an operator resolves it."""
    return any(d.severity is Severity.CRITICAL for d in discrepancies)


def _compare_symbol(
    symbol: str, venue_qty: Decimal, oms_qty: Decimal, price: Decimal | None, tol: Tolerances
) -> Discrepancy | None:
    difference = abs(venue_qty - oms_qty)
    if difference <= tol.quantity_tolerance_for(symbol):
        return None
    severity, valued = _grade(difference, price, tol.critical_notional)
    return Discrepancy(
        kind=DiscrepancyKind.POSITION_MISMATCH,
        severity=severity,
        symbol=symbol,
        venue_value=venue_qty,
        oms_value=oms_qty,
        detail=(
            f"{_holdings(symbol, venue_qty, oms_qty)}: a difference of {_plain(difference)}, "
            f"{valued}"
        ),
    )


def _grade(
    difference: Decimal, price: Decimal | None, critical_notional: Decimal
) -> tuple[Severity, str]:
    if price is None:
        return Severity.CRITICAL, "with no price to value it"
    value = difference * price
    severity = Severity.CRITICAL if value > critical_notional else Severity.WARNING
    # The grade uses the exact value; the text rounds it for people (an average entry can carry
    # 28 digits).
    return severity, (
        f"worth {_plain(value, DISPLAY_MONEY)} at {_plain(price, DISPLAY_PRICE)} "
        f"(critical above {_plain(critical_notional)})"
    )


def _holdings(symbol: str, venue_qty: Decimal, oms_qty: Decimal) -> str:
    venue, oms = _plain(venue_qty), _plain(oms_qty)
    if oms_qty == 0:
        return f"the venue holds {venue} {symbol} and the OMS has no position"
    if venue_qty == 0:
        return f"the OMS holds {oms} {symbol} and the venue has no position"
    return f"the venue holds {venue} {symbol} and the OMS {oms}"


def _plain(value: Decimal, places: Decimal | None = None) -> str:
    """A decimal as people read it: never an exponent (``1E-8``), no trailing zeros."""
    if places is not None:
        with localcontext() as wide:  # quantize raises past the context's 28 digits
            wide.prec = 80
            value = value.quantize(places, rounding=ROUND_HALF_EVEN)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _require_positive(prices: Mapping[str, Decimal]) -> None:
    bad = {s: p for s, p in prices.items() if not (p.is_finite() and p > 0)}
    if bad:
        raise InvalidPrice(f"prices must be positive numbers (got {bad})")


def _of_snapshot_account(
    snapshot: VenueSnapshot, positions: Sequence[PositionView]
) -> list[PositionView]:
    return [p for p in positions if (p.account, p.venue) == (snapshot.account, snapshot.venue)]


def _net_per_symbol(quantities: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    net: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
    for symbol, quantity in quantities:
        net[symbol] += quantity
    return dict(net)


def _average_entry(symbol: str, positions: Iterable[PositionView]) -> Decimal | None:
    """The OMS's entry price for the symbol, weighted by each strategy's position size."""
    priced = [
        (abs(p.quantity), p.average_entry)
        for p in positions
        if p.symbol == symbol and p.average_entry is not None and p.quantity != 0
    ]
    weight = sum((size for size, _ in priced), ZERO)
    if weight == 0:
        return None
    return sum((size * price for size, price in priced), ZERO) / weight
