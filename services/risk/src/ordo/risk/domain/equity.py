"""An account's equity, its peak, and its drawdown.

The risk service has no balance feed: equity is the configured ``starting_capital`` plus the
realised P&L of every position the account has held (after fees, as the OMS reports it) plus the
unrealised P&L of the open positions at their marks (the last trusted quote). Without a trusted
mark for an open position the equity is unknown, and nothing is made up in its place.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from ordo.risk.domain.exposure import ZERO, Exposure, Instrument
from ordo.risk.domain.limits import HUNDRED
from ordo.risk.domain.quotes import UntrustedQuote

MarkOf = Callable[[Instrument], Decimal | UntrustedQuote]


@dataclass(frozen=True)
class Equity:
    value: Decimal
    realised: Decimal
    unrealised: Decimal


class UnknownEquity(ValueError):
    """An open position cannot be valued."""

    def __init__(self, instrument: Instrument, why: UntrustedQuote | str) -> None:
        self.instrument = instrument
        self.why = why
        detail = why.message if isinstance(why, UntrustedQuote) else why
        super().__init__(f"the equity cannot be valued: {detail}")


def account_equity(exposure: Exposure, starting_capital: Decimal, mark_of: MarkOf) -> Equity:
    """Starting capital + realised + unrealised P&L; raises :class:`UnknownEquity`."""
    realised = ZERO
    unrealised = ZERO
    for key, held in exposure.positions().items():
        realised += held.realised_pnl
        if held.quantity == 0:
            continue
        mark = mark_of(key.instrument)
        if isinstance(mark, UntrustedQuote):
            raise UnknownEquity(key.instrument, mark)
        if held.average_entry is None:
            raise UnknownEquity(key.instrument, f"{key.symbol} is held without an entry price")
        unrealised += held.quantity * (mark - held.average_entry)
    return Equity(starting_capital + realised + unrealised, realised, unrealised)


def drawdown_percent(peak: Decimal, equity: Decimal) -> Decimal:
    """How far ``equity`` is below ``peak``, in percent of the peak (0 at or above it)."""
    if equity >= peak:
        return ZERO
    if peak <= 0:
        return HUNDRED
    return (peak - equity) / peak * HUNDRED


def peak_of(stored: Decimal | None, equity: Decimal, starting_capital: Decimal) -> Decimal:
    """The highest equity seen: the account started at its capital, so never below it."""
    return max(equity, starting_capital, stored if stored is not None else starting_capital)
