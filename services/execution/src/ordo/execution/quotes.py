"""Market quotes: each traded market's price, read from its venue and published on market.quote.v1.

Execution is the only service that talks to venues, so it reads prices for everyone: the OMS
(marks, emulated triggers) and the risk gate (price collar). Every ``quote_interval_seconds``:

- the paper venue quotes each of its markets from its price feed (``PaperPrices``), stamped with
  the whole second the feed's price holds for;
- each ccxt account reads the ticker of each of its configured symbols, through the account's
  breaker and read retries like any other read, stamped with the venue's own time. A market two
  accounts trade at one venue is read once per round.

Quotes are not business facts that must not be lost: they go straight to NATS (the kit's
breaker-wrapped publish), not through the outbox; a quote that fails is replaced by the next.
Every replica publishes. A quote's message id is made of venue, symbol and ``quoted_at``, so the
same quote published twice (two replicas, or an unchanged ticker read again) is dropped by
JetStream's duplicate window. Paper replicas that share a feed origin (saved books, or a configured
``feed_origin``) publish identical quotes; ccxt replicas may read a ticker at different moments,
and a consumer keeps the newest ``quoted_at`` per venue and symbol.
"""

import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal

from nats.errors import Error as NatsError
from pydantic import ValidationError

from ordo.contracts.market import MarketQuote
from ordo.contracts.subjects import STREAM_OF_SUBJECT, Subject
from ordo.execution.errors import VenueError
from ordo.execution.gateway import VenueGateway
from ordo.execution.venues.base import VenueQuote
from ordo.execution.venues.paper import VENUE_NAME as PAPER_VENUE
from ordo.execution.venues.paper import PaperPrices
from ordo.kit.breaker import CircuitOpenError
from ordo.kit.logs import get_logger
from ordo.kit.outbox import OutgoingMessage
from ordo.kit.telemetry import inject_headers

PRODUCER = "execution"
log = get_logger(__name__)

# Fixed for good: a quote's id must come out the same in every replica and every release.
_QUOTE_IDS = uuid.UUID("6f1c8d2e-5a47-4b1e-9c3f-0d8e7b6a5c41")

Publish = Callable[[OutgoingMessage], Awaitable[None]]
Clock = Callable[[], datetime]


def quote_message_id(venue: str, symbol: str, quoted_at: datetime) -> str:
    """The same quote gets the same id, whoever publishes it (JetStream drops the repeat)."""
    stamp = quoted_at.astimezone(UTC).isoformat()
    return str(uuid.uuid5(_QUOTE_IDS, f"{venue}|{symbol}|{stamp}"))


def market_quote(venue: str, quote: VenueQuote) -> MarketQuote:
    message_id = quote_message_id(venue, quote.symbol, quote.quoted_at)
    return MarketQuote(
        message_id=message_id,
        correlation_id=message_id,  # a quote starts no flow but its own
        producer=PRODUCER,
        venue=venue,
        symbol=quote.symbol,
        bid=quote.bid,
        ask=quote.ask,
        last=quote.last,
        quoted_at=quote.quoted_at,
    )


def paper_quote(prices: PaperPrices, symbol: str, now: datetime) -> VenueQuote:
    """The paper venue trades both ways at its feed's price, which holds for a whole second."""
    second = now.astimezone(UTC).replace(microsecond=0)
    price: Decimal = prices.price(symbol, second)
    return VenueQuote(symbol=symbol, last=price, bid=price, ask=price, quoted_at=second)


class QuotePublisher:
    """The periodic job that reads and publishes every traded market's quote."""

    def __init__(
        self,
        gateway: VenueGateway,
        paper: PaperPrices,
        accounts: Callable[[], Iterable[tuple[str, str, tuple[str, ...]]]],
        publish: Publish,
        clock: Clock,
    ) -> None:
        self._gateway = gateway
        self._paper = paper
        # (venue, account, symbols) of each configured ccxt account.
        self._accounts = accounts
        self._send = publish
        self._clock = clock

    async def publish_quotes(self) -> None:
        now = self._clock()
        paper = [
            (PAPER_VENUE, paper_quote(self._paper, symbol, now)) for symbol in self._paper.symbols
        ]
        # The paper quotes first: a slow venue must not make them stale.
        if await self._publish(paper):
            await self._publish(await self._venue_quotes())

    async def _publish(self, quotes: Iterable[tuple[str, VenueQuote]]) -> bool:
        """Publish each quote; False if NATS would not take them (the next round replaces them)."""
        for venue, quote in quotes:
            try:
                message = market_quote(venue, quote)
            except ValidationError as exc:
                log.warning("the venue's quote is not one; skipped", venue=venue, error=str(exc))
                continue
            try:
                await self._send(_outgoing(message))
            except (CircuitOpenError, NatsError, TimeoutError) as exc:
                log.warning("quotes not published; trying next round", error=str(exc))
                return False
        return True

    async def _venue_quotes(self) -> list[tuple[str, VenueQuote]]:
        quotes: list[tuple[str, VenueQuote]] = []
        read: set[tuple[str, str]] = set()
        for venue, account, symbols in self._accounts():
            for symbol in symbols:
                if (venue, symbol) in read:
                    continue
                try:
                    quote = await self._gateway.quote(venue, account, symbol)
                except (CircuitOpenError, VenueError) as exc:
                    # A failed read counted on the account's breaker; the next round tries again.
                    log.warning(
                        "could not read a quote",
                        venue=venue,
                        account=account,
                        symbol=symbol,
                        error=str(exc),
                    )
                    continue
                read.add((venue, symbol))
                quotes.append((venue, quote))
        return quotes


def _outgoing(quote: MarketQuote) -> OutgoingMessage:
    subject = Subject.MARKET_QUOTE
    return OutgoingMessage(
        message_id=quote.message_id,
        subject=str(subject),
        stream=STREAM_OF_SUBJECT[subject],
        payload=quote.to_json(),
        headers=inject_headers(),
        correlation_id=quote.correlation_id,
    )
