"""Prices for the paper venue: a seeded random walk that anyone can replay.

The walk is a geometric Brownian motion sampled once per whole second. Its value at a second is
built by Lévy's midpoint construction over a fixed horizon: each midpoint is drawn from a hash of
(seed, symbol, second), so the price at any time is a pure function of the seed and that time. It
needs no history, gives the same answer whatever order the times are asked in, and is the same
after a restart. Everything is exact ``Decimal`` arithmetic, so it is also the same on every
platform.
"""

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_HORIZON_BITS = 40  # 2**40 seconds after 1970: past the year 36000
_HORIZON = 1 << _HORIZON_BITS
_UNIFORMS_PER_NORMAL = 12  # Irwin-Hall: the sum of 12 uniforms minus 6 has unit variance
_TWO_TO_32 = Decimal(1 << 32)
_UNROUNDED_QUANTUM = Decimal("0.00000001")  # used when a symbol has no tick size


class PriceFeed(Protocol):
    """Where the paper venue gets its current prices."""

    def price(self, symbol: str, at: datetime) -> Decimal: ...


class RandomWalkFeed:
    """A repeatable random walk per symbol.

    ``volatility`` is the standard deviation of the log return over one second (0.0001 is about
    3% a day). The walk starts at ``start_prices`` at ``origin`` (by default the first time a
    price is asked for); prices are rounded to ``tick_sizes`` where one is given.
    """

    def __init__(
        self,
        seed: int,
        start_prices: Mapping[str, Decimal],
        volatility: Decimal,
        *,
        origin: datetime | None = None,
        tick_sizes: Mapping[str, Decimal] | None = None,
    ) -> None:
        if not 0 <= volatility < 1:
            raise ValueError(f"volatility must be in [0, 1) per second, got {volatility}")
        for symbol, start in start_prices.items():
            if start <= 0:
                raise ValueError(f"the start price of {symbol} must be positive, got {start}")
        self._seed = seed
        self._start_prices = dict(start_prices)
        self._tick_sizes = dict(tick_sizes or {})
        self._origin_step = None if origin is None else _whole_seconds(origin)
        # The bridge's spread at a midpoint of a span of 2**k seconds: sigma * sqrt(2**k) / 2.
        self._bridge_spread = [
            volatility * Decimal(1 << bits).sqrt() / 2 for bits in range(_HORIZON_BITS + 1)
        ]
        self._horizon_spread = volatility * Decimal(_HORIZON).sqrt()
        # Bounded by the number of symbols: one anchor and one last answer per symbol.
        self._anchor_log: dict[str, Decimal] = {}
        self._last: dict[str, tuple[int, Decimal]] = {}

    @property
    def origin(self) -> datetime | None:
        """The whole second at which every symbol stands at its start price."""
        if self._origin_step is None:
            return None
        return _EPOCH + self._origin_step * _SECOND

    def price(self, symbol: str, at: datetime) -> Decimal:
        """The price of ``symbol`` during the whole second that contains ``at``."""
        start = self._start_price(symbol)
        step = _whole_seconds(at)
        if self._origin_step is None:
            self._origin_step = step
        origin_step = self._origin_step
        last = self._last.get(symbol)
        if last is not None and last[0] == step:
            return last[1]
        log_move = self._log_walk(symbol, step) - self._anchor(symbol, origin_step)
        price = self._round(symbol, start * log_move.exp())
        self._last[symbol] = (step, price)
        return price

    def _start_price(self, symbol: str) -> Decimal:
        try:
            return self._start_prices[symbol]
        except KeyError:
            raise LookupError(f"the price feed has no market {symbol!r}") from None

    def _anchor(self, symbol: str, origin_step: int) -> Decimal:
        if symbol not in self._anchor_log:
            self._anchor_log[symbol] = self._log_walk(symbol, origin_step)
        return self._anchor_log[symbol]

    def _log_walk(self, symbol: str, step: int) -> Decimal:
        """The walk's log value at ``step``, found by halving the horizon down to that second."""
        low, high = 0, _HORIZON
        value_low = Decimal(0)
        value_high = self._horizon_spread * self._standard_normal(symbol, "horizon")
        while step not in (low, high):
            middle = (low + high) // 2
            spread = self._bridge_spread[(high - low).bit_length() - 1]
            value_middle = (value_low + value_high) / 2 + spread * self._standard_normal(
                symbol, middle
            )
            if step < middle:
                high, value_high = middle, value_middle
            else:
                low, value_low = middle, value_middle
        return value_low if step == low else value_high

    def _standard_normal(self, symbol: str, node: int | str) -> Decimal:
        # Each midpoint is a distinct second, so (seed, symbol, second) names one draw for good.
        digest = hashlib.blake2b(
            f"{self._seed}/{symbol}/{node}".encode(), digest_size=4 * _UNIFORMS_PER_NORMAL
        ).digest()
        total = sum(int.from_bytes(digest[i : i + 4], "big") for i in range(0, len(digest), 4))
        return Decimal(total) / _TWO_TO_32 - _UNIFORMS_PER_NORMAL // 2

    def _round(self, symbol: str, raw: Decimal) -> Decimal:
        tick = self._tick_sizes.get(symbol)
        if tick is None:
            rounded = raw.quantize(_UNROUNDED_QUANTUM, rounding=ROUND_HALF_EVEN)
            return max(rounded, _UNROUNDED_QUANTUM)
        ticks = (raw / tick).to_integral_value(rounding=ROUND_HALF_EVEN)
        # A price is never zero: the walk is geometric, but rounding could reach zero.
        return (max(ticks, Decimal(1)) * tick).quantize(tick)


def _whole_seconds(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"the price feed needs a timezone-aware time, got naive {at}")
    step = (at - _EPOCH) // _SECOND
    if not 0 <= step < _HORIZON:
        raise ValueError(f"the price feed covers 1970 to the year 36000, got {at}")
    return step
