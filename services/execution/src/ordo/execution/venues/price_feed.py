"""Prices for the paper venue: a seeded random walk, or recorded OHLCV bars replayed.

Both are pure functions of their inputs and the time asked for, so the same seed (or the same
recording) gives the same prices, whatever order the times are asked in and after a restart.

The walk is a geometric Brownian motion sampled once per whole second. Its value at a second is
built by Lévy's midpoint construction over a fixed horizon: each midpoint is drawn from a hash of
(seed, symbol, second), so the price at any time is a pure function of the seed and that time. It
needs no history, gives the same answer whatever order the times are asked in, and is the same
after a restart. Everything is exact ``Decimal`` arithmetic, so it is also the same on every
platform.
"""

import bisect
import csv
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_MICROSECOND = timedelta(microseconds=1)
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


@dataclass(frozen=True, slots=True)
class Bar:
    """One recorded OHLCV bar, from ``start`` (inclusive) to the next bar's start."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class RecordedFeed:
    """Recorded OHLCV bars per symbol, replayed from ``origin`` at ``speed`` times real time.

    At ``origin`` the replay stands at the first bar's open; ``speed`` recorded seconds pass per
    second. Within a bar the price runs open → low → high → close for a rising bar and open →
    high → low → close for a falling one (the usual assumption when only bars are known), each
    leg a third of the bar, linear in between, rounded to the tick. After the last bar the price
    stays at its close.
    """

    def __init__(
        self,
        bars: Mapping[str, Sequence[Bar]],
        *,
        origin: datetime,
        speed: Decimal = Decimal(1),
        tick_sizes: Mapping[str, Decimal] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"the replay speed must be positive, got {speed}")
        for symbol, series in bars.items():
            if not series:
                raise ValueError(f"the recording of {symbol} has no bars")
        self._bars = {symbol: list(series) for symbol, series in bars.items()}
        # Bar starts as exact microseconds after each recording's first bar.
        self._offsets = {
            symbol: [_microseconds(bar.start - series[0].start) for bar in series]
            for symbol, series in bars.items()
        }
        self._origin = origin
        self._speed = speed
        self._tick_sizes = dict(tick_sizes or {})

    def price(self, symbol: str, at: datetime) -> Decimal:
        bars = self._bars.get(symbol)
        if bars is None:
            raise LookupError(f"the price feed has no market {symbol!r}")
        if at.tzinfo is None:
            raise ValueError(f"the price feed needs a timezone-aware time, got naive {at}")
        offsets = self._offsets[symbol]
        replayed = max(Decimal(_microseconds(at - self._origin)) * self._speed, Decimal(0))
        index = bisect.bisect_right(offsets, replayed) - 1
        bar = bars[index]
        fraction = (replayed - offsets[index]) / self._bar_length(offsets, index)
        return self._round(symbol, _along_bar(bar, min(fraction, Decimal(1))))

    @staticmethod
    def _bar_length(offsets: Sequence[int], index: int) -> int:
        if index + 1 < len(offsets):
            return offsets[index + 1] - offsets[index]
        # The last bar lasts as long as the one before it (a lone bar: a minute); after it the
        # price stays at its close.
        return offsets[index] - offsets[index - 1] if index else 60_000_000

    def _round(self, symbol: str, raw: Decimal) -> Decimal:
        tick = self._tick_sizes.get(symbol)
        if tick is None:
            return raw
        ticks = (raw / tick).to_integral_value(rounding=ROUND_HALF_EVEN)
        return (max(ticks, Decimal(1)) * tick).quantize(tick)


def _microseconds(span: timedelta) -> int:
    return span // _MICROSECOND


def _along_bar(bar: Bar, fraction: Decimal) -> Decimal:
    """The price a third, two thirds... of the way through the bar's open-extremes-close path."""
    first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
    path = (bar.open, first, second, bar.close)
    leg = min(int(fraction * 3), 2)
    within = fraction * 3 - leg
    return path[leg] + (path[leg + 1] - path[leg]) * within


def load_ohlcv_csv(path: Path) -> tuple[Bar, ...]:
    """Bars from a CSV file with a header: timestamp, open, high, low, close[, volume].

    Timestamps are Unix epoch milliseconds (as exchanges and ccxt give them) or ISO-8601 times
    with a zone. Rows are sorted by time; a bad row is an error naming its line.
    """
    return _load_ohlcv_csv(path.resolve(), path.stat().st_mtime_ns)


@lru_cache(maxsize=32)  # one entry per file (and version): every account shares the bars
def _load_ohlcv_csv(path: Path, _mtime_ns: int) -> tuple[Bar, ...]:
    bars = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"timestamp", "open", "high", "low", "close"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: the header lacks {', '.join(sorted(missing))}")
        for row in reader:
            bars.append(_bar(row, path, reader.line_num))
    if not bars:
        raise ValueError(f"{path}: no bars")
    bars.sort(key=lambda bar: bar.start)
    return tuple(bars)


def _bar(row: Mapping[str, str], path: Path, line: int) -> Bar:
    try:
        bar = Bar(
            start=_timestamp(row["timestamp"]),
            open=Decimal(row["open"]),
            high=Decimal(row["high"]),
            low=Decimal(row["low"]),
            close=Decimal(row["close"]),
            volume=Decimal(row.get("volume") or 0),
        )
    except (InvalidOperation, ValueError, TypeError) as error:
        raise ValueError(f"{path}, line {line}: not an OHLCV bar ({error})") from None
    if not 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high:
        raise ValueError(f"{path}, line {line}: prices must be positive, low ≤ open, close ≤ high")
    return bar


def _timestamp(value: str) -> datetime:
    text = value.strip()
    if text.isdigit():
        return _EPOCH + timedelta(milliseconds=int(text))
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return parsed.astimezone(UTC)
