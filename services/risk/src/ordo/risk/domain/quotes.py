"""The last quote per venue and symbol, and whether it can be trusted as a price.

A quote that is missing, too old, or suspicious (a spread wider than the account accepts) is not
a price: the checks that need one deny, and nothing stands in for it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from ordo.contracts.market import MarketQuote
from ordo.risk.domain.exposure import Instrument
from ordo.risk.domain.limits import HUNDRED, RiskLimits


@dataclass(frozen=True)
class Quote:
    venue: str
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal
    quoted_at: datetime

    @property
    def instrument(self) -> Instrument:
        return Instrument(self.venue, self.symbol)

    @classmethod
    def of(cls, message: MarketQuote) -> "Quote":
        return cls(
            message.venue, message.symbol, message.bid, message.ask, message.last, message.quoted_at
        )


class QuoteProblem(StrEnum):
    QUOTE_MISSING = "QUOTE_MISSING"
    QUOTE_STALE = "QUOTE_STALE"
    QUOTE_SUSPICIOUS = "QUOTE_SUSPICIOUS"


@dataclass(frozen=True)
class UntrustedQuote:
    """Why there is no trusted price for an instrument, and the number that says so."""

    problem: QuoteProblem
    message: str
    limit: Decimal | None = None
    actual: Decimal | None = None


def trusted_mark(
    instrument: Instrument, quote: Quote | None, limits: RiskLimits, now: datetime
) -> Decimal | UntrustedQuote:
    """The quote's last price when it can be trusted at ``now``, else why it cannot."""
    name = f"{instrument.symbol} on {instrument.venue}"
    if quote is None:
        return UntrustedQuote(QuoteProblem.QUOTE_MISSING, f"there is no quote for {name}")
    max_age = limits.quote_max_age_seconds
    age = _seconds(now - quote.quoted_at)
    if max_age is not None and age > max_age:
        return UntrustedQuote(
            QuoteProblem.QUOTE_STALE,
            f"the last quote for {name} is {age:.3f}s old, older than {max_age}s",
            limit=max_age,
            actual=age,
        )
    if not (quote.last.is_finite() and quote.last > 0):
        return UntrustedQuote(
            QuoteProblem.QUOTE_SUSPICIOUS, f"the last price of {name}, {quote.last}, is no price"
        )
    spread = spread_percent(quote)
    max_spread = limits.max_quote_spread_percent
    if spread is not None and max_spread is not None and spread > max_spread:
        return UntrustedQuote(
            QuoteProblem.QUOTE_SUSPICIOUS,
            f"the quote for {name} spreads {spread:.6g}% (bid {quote.bid}, ask {quote.ask}), "
            f"more than {max_spread}%",
            limit=max_spread,
            actual=spread,
        )
    return quote.last


def _seconds(elapsed: timedelta) -> Decimal:
    # Exactly, to the microsecond: a float would put 10.001 s at 10.000999...
    whole = elapsed.days * 86400 + elapsed.seconds
    return Decimal(whole) + Decimal(elapsed.microseconds).scaleb(-6)


def spread_percent(quote: Quote) -> Decimal | None:
    """The bid-ask spread as a percentage of the mid; a crossed or zero side is 100 %."""
    if quote.bid is None or quote.ask is None:
        return None
    if quote.bid <= 0 or quote.ask <= 0 or quote.bid > quote.ask:
        return HUNDRED
    mid = (quote.bid + quote.ask) / 2
    return (quote.ask - quote.bid) / mid * HUNDRED
