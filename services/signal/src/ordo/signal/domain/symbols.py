"""Normalise a sender's ticker to the venue's unified symbol, using the venue's market list.

Tickers arrive as ``BTCUSDT``, ``BINANCE:BTCUSDT``, ``BTCUSDT.P`` (a perpetual) or ``BTC/USDT``.
Unified symbols are ``BASE/QUOTE`` for spot and ``BASE/QUOTE:SETTLE`` for perpetual swaps. The
ticker is matched against the base+quote concatenation of every market, so no list of quote
currencies is needed and a new listing works as soon as the venue lists it.
"""

from collections.abc import Collection
from dataclasses import dataclass

from ordo.signal.domain.errors import UnknownSymbol

PERPETUAL_SUFFIX = ".P"


@dataclass(frozen=True)
class _Market:
    symbol: str
    base: str
    quote: str
    settle: str | None

    @property
    def is_perpetual(self) -> bool:
        return self.settle is not None

    @property
    def is_linear(self) -> bool:
        return self.settle == self.quote


def normalise_symbol(ticker: str, markets: Collection[str]) -> str:
    """The venue's unified symbol for ``ticker``; raises :class:`UnknownSymbol` if there is none.

    A ticker without the ``.P`` suffix prefers the spot market and falls back to the perpetual,
    so that a futures-only venue accepts plain ``BTCUSDT``. Where two perpetuals share a pair
    (linear and inverse), the linear one (settled in the quote currency) is chosen.
    """
    text = ticker.strip()
    if not text:
        raise UnknownSymbol(ticker, "is empty")
    by_upper = {symbol.upper(): symbol for symbol in sorted(markets)}
    for candidate in (text, _without_exchange_prefix(text)):
        if candidate.upper() in by_upper:
            return by_upper[candidate.upper()]
    return _match_concatenation(ticker, _without_exchange_prefix(text), by_upper.values())


def _without_exchange_prefix(ticker: str) -> str:
    # "BINANCE:BTCUSDT" -> "BTCUSDT"; the colon of a unified "BTC/USDT:USDT" follows a slash.
    prefix, colon, rest = ticker.partition(":")
    if colon and rest and "/" not in prefix:
        return rest
    return ticker


def _match_concatenation(ticker: str, bare: str, markets: Collection[str]) -> str:
    perpetual = bare.upper().endswith(PERPETUAL_SUFFIX)
    if perpetual:
        bare = bare[: -len(PERPETUAL_SUFFIX)]
    pair = bare.replace("/", "").upper()
    matches = [m for m in map(_parse_market, markets) if m and m.base + m.quote == pair]
    spot = [m for m in matches if not m.is_perpetual]
    perpetuals = [m for m in matches if m.is_perpetual]
    if perpetual or not spot:
        return _single(ticker, perpetuals)
    return _single(ticker, spot)


def _single(ticker: str, candidates: list[_Market]) -> str:
    if len(candidates) > 1:
        candidates = [m for m in candidates if m.is_linear] or candidates
    if len(candidates) == 1:
        return candidates[0].symbol
    if not candidates:
        raise UnknownSymbol(ticker, f"unknown symbol {ticker!r}: not in the venue's market list")
    names = ", ".join(sorted(m.symbol for m in candidates))
    raise UnknownSymbol(ticker, f"ambiguous symbol {ticker!r}: matches {names}")


def _parse_market(symbol: str) -> _Market | None:
    pair, _, settle = symbol.partition(":")
    base, slash, quote = pair.partition("/")
    if not (slash and base and quote):
        return None
    # Dated futures and options ("BTC/USDT:USDT-241227") have no TradingView ticker form here.
    if "-" in settle:
        return None
    return _Market(symbol, base.upper(), quote.upper(), settle.upper() or None)
