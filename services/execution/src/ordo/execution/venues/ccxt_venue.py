"""Any ccxt exchange as a venue: one account, async ccxt, and ccxt.pro's websocket where it has it.

- Markets are loaded once, on first use, for each market's precision and limits: an order that
  breaks them is refused here, before it costs a request.
- The client order id travels in the exchange's own parameter (``newClientOrderId`` on Binance,
  ``clOrdId`` on OKX, ...; ccxt's unified ``clientOrderId`` elsewhere), and orders are looked up
  and canceled by it: directly where the exchange can, else by searching the account's orders.
- Fills come from the order's trades (their ids are the venue's trade ids), so each is reported
  once whichever way it was seen: the create's answer, a lookup, the websocket.
- Every ccxt error is translated once, here (:mod:`ordo.execution.venues.ccxt_errors`).
- Amounts cross the boundary as ccxt's floats, read back through ``str`` (exact for the decimal
  strings exchanges send) and sent as ``Decimal`` strings cut to the market's precision.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS

from ordo.contracts.enums import ExecutionStatus, OrderType, Side, TimeInForce
from ordo.contracts.execution import Fill, VenueBalance, VenuePosition
from ordo.contracts.orders import OrderSpec
from ordo.execution.config import CcxtAccount, VenueMode
from ordo.execution.errors import (
    BadVenueResponse,
    InvalidOrder,
    OrderNotFound,
    UnknownOutcome,
    UnknownVenue,
    VenueError,
)
from ordo.execution.venues.base import MarketRules, VenueFill, VenueOrder, VenueQuote
from ordo.execution.venues.ccxt_errors import TRANSLATED_ERRORS, translate
from ordo.execution.venues.credentials import VenueCredentials

T = TypeVar("T")


@dataclass(frozen=True)
class ClientIdDialect:
    """How an exchange names the client order id: when creating, and when looking up by it."""

    create: str = "clientOrderId"  # ccxt's unified parameter, which most exchanges translate
    lookup: str | None = None  # None: the exchange cannot look an order up by it; search


_BINANCE = ClientIdDialect(create="newClientOrderId", lookup="origClientOrderId")
CLIENT_ID_DIALECTS: Mapping[str, ClientIdDialect] = {
    "binance": _BINANCE,
    "binanceus": _BINANCE,
    "binanceusdm": _BINANCE,
    "binancecoinm": _BINANCE,
    "okx": ClientIdDialect(create="clOrdId", lookup="clOrdId"),
    "kucoin": ClientIdDialect(create="clientOid", lookup="clientOid"),
    "bitget": ClientIdDialect(create="clientOid", lookup="clientOid"),
    "bybit": ClientIdDialect(create="orderLinkId"),
    "gate": ClientIdDialect(create="text"),
}

_STATUSES = {
    "canceled": ExecutionStatus.CANCELED,
    "cancelled": ExecutionStatus.CANCELED,
    "expired": ExecutionStatus.EXPIRED,
    "rejected": ExecutionStatus.REJECTED,
}
_TIME_IN_FORCE = {
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
    TimeInForce.DAY: "DAY",
    TimeInForce.GTD: "GTD",
}


def open_exchange(account: CcxtAccount, credentials: VenueCredentials) -> Any:
    """The account's ccxt exchange: ccxt.pro's class when following orders over the websocket."""
    exchange_id = account.exchange_id
    pro = account.watch_orders and exchange_id in ccxt_pro.exchanges
    module: Any = ccxt_pro if pro else ccxt_async
    if exchange_id not in ccxt_async.exchanges:
        raise ValueError(f"venue {account.venue}: ccxt has no exchange {exchange_id!r}")
    exchange = getattr(module, exchange_id)(
        {
            **credentials.ccxt_config(),
            "enableRateLimit": account.rate_limit,
            "timeout": int(account.timeout_seconds * 1000),
            "options": dict(account.options),
        }
    )
    if account.mode is VenueMode.SANDBOX:
        exchange.set_sandbox_mode(True)  # raises NotSupported if the exchange has no testnet
    exchange.urls["api"] = _merged(exchange.urls["api"], account.urls)
    return exchange


class CcxtVenue:
    """One account on one ccxt exchange; implements :class:`ordo.execution.venues.base.Venue`."""

    def __init__(self, venue: str, account: CcxtAccount, exchange: Any) -> None:
        self._venue = venue
        self._account = account
        self._exchange = exchange
        self._dialect = CLIENT_ID_DIALECTS.get(account.exchange_id, ClientIdDialect())
        # Symbols this adapter placed orders in: their fills are read with the configured ones.
        # Bounded by the markets the account trades.
        self._traded: set[str] = set()
        # What each pushed order (by venue order id) looked like when it was last announced.
        self._announced: dict[str, tuple[Any, ...]] = {}

    @property
    def follows_orders(self) -> bool:
        """Whether the exchange pushes order updates over its websocket (ccxt.pro)."""
        has = getattr(self._exchange, "has", {})
        return self._account.watch_orders and bool(has.get("watchOrders"))

    @property
    def poll_interval_seconds(self) -> float:
        return self._account.poll_interval_seconds

    async def close(self) -> None:
        await self._exchange.close()

    # -- the Venue port ------------------------------------------------------------------------

    async def create_order(self, spec: OrderSpec) -> VenueOrder:
        market = await self._market(spec.symbol)
        self._check_rules(spec, market)
        self._traded.add(spec.symbol)
        order_type, price, params = self._order_request(spec, market)
        amount = self._exchange.amount_to_precision(spec.symbol, str(spec.quantity))
        created = await self._call(
            lambda: self._exchange.create_order(
                spec.symbol, order_type, spec.side.value, amount, price, params
            ),
            creating=True,
        )
        try:
            return await self._venue_order(created, spec.symbol, spec.order_id)
        except VenueError as error:
            # The venue took the order; only its answer could not be read (or its trades
            # fetched). Neither a refusal (a REJECTED report) nor "turned away" (which frees the
            # order to be created again): it is looked up.
            raise UnknownOutcome(
                f"order {spec.order_id} was placed, but the venue's answer could not be read: "
                f"{error.detail}",
                venue=self._venue,
            ) from error

    async def fetch_order(self, order_id: str, symbol: str) -> VenueOrder:
        await self._market(symbol)
        found = await self._find(order_id, symbol)
        return await self._venue_order(found, symbol, order_id)

    async def cancel_order(self, order_id: str, symbol: str) -> VenueOrder:
        await self._market(symbol)
        try:
            if self._dialect.lookup is not None:
                params = {self._dialect.lookup: order_id}
                await self._call(lambda: self._exchange.cancel_order(None, symbol, params))
            else:
                found = await self._find(order_id, symbol)
                await self._call(lambda: self._exchange.cancel_order(found["id"], symbol))
        except OrderNotFound:
            # Many venues refuse to cancel a finished order as if it were unknown: a finished
            # order is returned as it is, and only an order the venue never had is not found.
            pass
        return await self.fetch_order(order_id, symbol)

    async def open_orders(self) -> list[VenueOrder]:
        orders = await self._for_symbols(self._exchange.fetch_open_orders)
        return [await self._venue_order(order, order["symbol"], None) for order in orders]

    async def recent_fills(self, since: datetime) -> list[VenueFill]:
        since_ms = int(since.timestamp() * 1000)
        trades = await self._for_symbols(
            lambda symbol: self._exchange.fetch_my_trades(symbol, since_ms)
        )
        fills = [self._venue_fill(trade) for trade in trades]
        return sorted(fills, key=lambda venue_fill: venue_fill.fill.filled_at)

    async def balances(self) -> list[VenueBalance]:
        balance = await self._call(self._exchange.fetch_balance)
        totals, free = balance.get("total") or {}, balance.get("free") or {}
        return [
            VenueBalance(
                currency=currency,
                total=_decimal(amount),
                free=_decimal(free.get(currency) or 0),
            )
            for currency, amount in sorted(totals.items())
            if amount
        ]

    async def positions(self) -> list[VenuePosition]:
        if self._spot:
            return await self._spot_positions()
        positions = await self._call(
            lambda: self._exchange.fetch_positions(self._symbols() or None)
        )
        held = []
        for position in positions:
            contracts = _decimal(position.get("contracts") or 0)
            size = contracts * _decimal(position.get("contractSize") or 1)
            signed = -size if position.get("side") == "short" else size
            if signed:
                held.append(VenuePosition(symbol=position["symbol"], quantity=signed))
        return sorted(held, key=lambda position: position.symbol)

    async def market_rules(self, symbol: str) -> MarketRules:
        return self._rules(await self._market(symbol))

    async def markets(self) -> list[str]:
        await self._call(self._exchange.load_markets)
        return sorted(self._exchange.symbols or [])

    # -- quotes (QuotedVenue) ------------------------------------------------------------------

    async def quote(self, symbol: str) -> VenueQuote:
        """The market's ticker: its last trade price, best bid and ask, and the venue's time."""
        await self._market(symbol)
        ticker = await self._call(lambda: self._exchange.fetch_ticker(symbol))
        last = ticker.get("last") or ticker.get("close")
        if not last:
            raise BadVenueResponse(f"the ticker of {symbol} holds no last price", venue=self._venue)
        return VenueQuote(
            symbol=symbol,
            last=_decimal(last),
            # An empty side of the book comes as 0 or nothing: no bid (ask) is not a price of 0.
            bid=_decimal(ticker["bid"]) if ticker.get("bid") else None,
            ask=_decimal(ticker["ask"]) if ticker.get("ask") else None,
            # The venue's own time makes the quote's id: two replicas reading one ticker agree.
            quoted_at=_time(ticker.get("timestamp")) or datetime.now(UTC),
        )

    # -- the websocket -------------------------------------------------------------------------

    async def order_updates(self) -> AsyncIterator[str]:
        """The client order ids of the account's orders as the exchange pushes their changes.

        ccxt.pro keeps every order pushed to it in its cache (``exchange.orders``), but a watch
        call only wakes for a push that comes while it waits: one that comes while the caller is
        busy with the last would wait for the next push (or the poll). So the changes are taken
        from the cache, until it holds nothing new, and only then is the next push waited for:
        nothing suspends between that last look and the watch taking its place.
        """
        await self._call(self._exchange.load_markets)
        while True:
            while changed := self._unannounced():
                for client_order_id in changed:
                    yield client_order_id
            await self._call(self._exchange.watch_orders)

    def _unannounced(self) -> list[str]:
        """The client order ids of cached orders that changed since the last look."""
        cached = {str(order["id"]): order for order in self._exchange.orders or ()}
        looks = {order_id: _look(order) for order_id, order in cached.items()}
        changed = [
            order.get("clientOrderId")
            for order_id, order in cached.items()
            if self._announced.get(order_id) != looks[order_id]
        ]
        # Only what the cache still holds (bounded by ccxt's own limit on it).
        self._announced = looks
        return [client_order_id for client_order_id in changed if client_order_id]

    # -- requests ------------------------------------------------------------------------------

    async def _call(self, operation: Callable[[], Awaitable[T]], *, creating: bool = False) -> T:
        """One ccxt call; its errors leave as the engine's, translated once."""
        try:
            return await operation()
        except TRANSLATED_ERRORS as error:
            # Not chained: ccxt's own message names the signed URL, and a logged traceback
            # would show it (``translate`` keeps the rest of the message).
            raise translate(error, self._venue, creating=creating) from None

    async def _market(self, symbol: str) -> dict[str, Any]:
        await self._call(self._exchange.load_markets)
        market = (self._exchange.markets or {}).get(symbol)
        if market is None:
            raise InvalidOrder(f"the venue has no market {symbol!r}", venue=self._venue)
        return dict(market)

    async def _find(self, order_id: str, symbol: str) -> dict[str, Any]:
        """The order with this client order id, asked by it or searched for."""
        if self._dialect.lookup is not None:
            params = {self._dialect.lookup: order_id}
            found: dict[str, Any] = await self._call(
                lambda: self._exchange.fetch_order(None, symbol, params)
            )
            return found
        for fetch in (self._exchange.fetch_open_orders, self._exchange.fetch_closed_orders):
            orders: list[dict[str, Any]] = await self._call(partial(fetch, symbol))
            for order in orders:
                if order.get("clientOrderId") == order_id:
                    return dict(order)
        raise OrderNotFound(
            f"no order with client order id {order_id!r} in {symbol}", venue=self._venue
        )

    async def _for_symbols(
        self, fetch: Callable[[str], Awaitable[list[dict[str, Any]]]]
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for symbol in self._symbols():
            results.extend(await self._call(partial(fetch, symbol)))
        return results

    def _symbols(self) -> list[str]:
        return sorted(set(self._account.symbols) | self._traded)

    @property
    def _spot(self) -> bool:
        options = getattr(self._exchange, "options", {}) or {}
        return options.get("defaultType", "spot") == "spot"

    async def _spot_positions(self) -> list[VenuePosition]:
        """On spot, a position is what the account holds of the market's base currency."""
        totals = {balance.currency: balance.total for balance in await self.balances()}
        positions = []
        for symbol in self._symbols():
            base, _, quote = symbol.partition("/")
            if quote.partition(":")[0] == self._account.quote_currency and totals.get(base):
                positions.append(VenuePosition(symbol=symbol, quantity=totals[base]))
        return positions

    # -- orders in, orders out -----------------------------------------------------------------

    def _order_request(
        self, spec: OrderSpec, market: Mapping[str, Any]
    ) -> tuple[str, str | None, dict[str, Any]]:
        """ccxt's (type, price, params) for the spec, in the exchange's own parameters.

        A stop is ccxt's trigger order (``triggerPrice``): a market order once triggered, or the
        stop-limit's limit order; on Binance spot, STOP_LOSS and STOP_LOSS_LIMIT, which trigger
        as our stops do (a buy at or above its stop, a sell at or below). An order type the
        market cannot take is refused here, as an invalid order: the OMS may emulate it.
        """
        params: dict[str, Any] = {self._dialect.create: spec.order_id}
        if spec.post_only:
            params["postOnly"] = True
        if spec.reduce_only and market.get("contract"):
            params["reduceOnly"] = True  # spot has no such flag: selling what is held reduces
        price = self._price(spec.symbol, spec.limit_price)
        if spec.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            # Only a limit order rests: a market order takes no time in force (Binance refuses
            # one it is sent).
            params["timeInForce"] = _TIME_IN_FORCE[spec.time_in_force]
        if spec.order_type in (OrderType.MARKET, OrderType.LIMIT):
            return spec.order_type.value, price, params
        if spec.order_type is OrderType.TRAILING_STOP:
            self._require_support(market, spec)
            if spec.trailing_percent is not None:
                params["trailingPercent"] = str(spec.trailing_percent)
            else:
                params["trailingAmount"] = self._price(spec.symbol, spec.trailing_amount)
            return "market", None, params
        self._require_support(market, spec)
        params["triggerPrice"] = self._price(spec.symbol, spec.stop_price)
        order_type = "limit" if spec.order_type is OrderType.STOP_LIMIT else "market"
        return order_type, price, params

    def _require_support(self, market: Mapping[str, Any], spec: OrderSpec) -> None:
        if not self._supports(market, spec):
            kind = market.get("type") or "its"
            raise InvalidOrder(
                f"order {spec.order_id}: the venue takes no {spec.order_type} orders on "
                f"{kind} markets such as {spec.symbol}; the OMS emulates them",
                venue=self._venue,
            )

    def _supports(self, market: Mapping[str, Any], spec: OrderSpec) -> bool:
        """Whether the market takes the spec's conditional order: by ccxt's ``features`` of its
        market type, and the exchange's ``has`` flags where ccxt states no features."""
        has, features = self._exchange.has, self._create_features(market)
        if spec.order_type is OrderType.TRAILING_STOP:
            flag = (
                "createTrailingPercentOrder"
                if spec.trailing_percent is not None
                else "createTrailingAmountOrder"
            )
            return bool(has.get(flag)) and (features is None or bool(features.get("trailing")))
        if features is not None:
            return bool(features.get("triggerPrice"))
        return bool(has.get("createTriggerOrder"))

    def _create_features(self, market: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """ccxt's ``features[<market type>][<linear|inverse>].createOrder`` of the market."""
        features = getattr(self._exchange, "features", None) or {}
        section = features.get(market.get("type") or "spot")
        if isinstance(section, Mapping) and market.get("contract"):
            section = section.get("linear" if market.get("linear") else "inverse")
        if not isinstance(section, Mapping):
            return None
        create = section.get("createOrder")
        return create if isinstance(create, Mapping) else None

    def _price(self, symbol: str, price: Decimal | None) -> str | None:
        return None if price is None else self._exchange.price_to_precision(symbol, str(price))

    def _check_rules(self, spec: OrderSpec, market: Mapping[str, Any]) -> None:
        rules = self._rules(market)
        price = spec.limit_price or spec.stop_price or spec.reference_price
        violation = (
            rules.quantity_violation(spec.quantity)
            or (spec.limit_price is not None and rules.price_violation(spec.limit_price))
            or (spec.stop_price is not None and rules.price_violation(spec.stop_price))
            or (price is not None and rules.notional_violation(spec.quantity, price))
        )
        if violation:
            raise InvalidOrder(f"order {spec.order_id}: {violation}", venue=self._venue)

    def _rules(self, market: Mapping[str, Any]) -> MarketRules:
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        return MarketRules(
            tick_size=self._unit(precision.get("price")),
            step_size=self._unit(precision.get("amount")),
            min_quantity=_decimal((limits.get("amount") or {}).get("min") or 0),
            min_notional=_decimal((limits.get("cost") or {}).get("min") or 0),
        )

    def _unit(self, precision: Any) -> Decimal:
        """The smallest step a precision allows, whichever way the exchange states it."""
        if precision is None:
            return Decimal("1e-8")  # the exchange states none: anything to eight places
        mode = getattr(self._exchange, "precisionMode", None)
        if mode in (DECIMAL_PLACES, SIGNIFICANT_DIGITS):
            return Decimal(1).scaleb(-int(precision))
        return _decimal(precision)

    async def _venue_order(
        self, order: Mapping[str, Any], symbol: str, client_order_id: str | None
    ) -> VenueOrder:
        try:
            quantity = _decimal(order["amount"])
            filled = _decimal(order.get("filled") or 0)
            fills = await self._fills(order, symbol, filled)
            return VenueOrder(
                order_id=order.get("clientOrderId") or client_order_id or "",
                venue_order_id=str(order["id"]),
                symbol=symbol,
                side=Side(order["side"]),
                status=_status(order, quantity, filled),
                quantity=quantity,
                filled_quantity=filled,
                average_price=_decimal_or_none(order.get("average")),
                fills=fills,
                reason=(order.get("info") or {}).get("rejectReason") or None,
                venue_time=_time(
                    order.get("lastUpdateTimestamp")
                    or order.get("lastTradeTimestamp")
                    or order.get("timestamp")
                ),
            )
        except TRANSLATED_ERRORS as error:
            raise translate(error, self._venue) from error

    async def _fills(
        self, order: Mapping[str, Any], symbol: str, filled: Decimal
    ) -> tuple[Fill, ...]:
        """The order's trades as fills: from the order itself when it carries them."""
        if not filled:
            return ()
        trades = list(order.get("trades") or [])
        if sum((_decimal(t["amount"]) for t in trades), Decimal(0)) < filled:
            trades = await self._order_trades(str(order["id"]), symbol, order.get("timestamp"))
        fallback_time = order.get("lastTradeTimestamp") or order.get("timestamp")
        quote = symbol.partition("/")[2].partition(":")[0]
        return tuple(_fill(trade, quote, fallback_time) for trade in trades)

    async def _order_trades(
        self, venue_order_id: str, symbol: str, since_ms: int | None
    ) -> list[dict[str, Any]]:
        if self._exchange.has.get("fetchOrderTrades"):
            return list(
                await self._call(lambda: self._exchange.fetch_order_trades(venue_order_id, symbol))
            )
        trades = await self._call(lambda: self._exchange.fetch_my_trades(symbol, since_ms))
        return [trade for trade in trades if str(trade.get("order")) == venue_order_id]

    def _venue_fill(self, trade: Mapping[str, Any]) -> VenueFill:
        symbol = trade["symbol"]
        quote = symbol.partition("/")[2].partition(":")[0]
        return VenueFill(
            order_id=trade.get("clientOrderId"),
            venue_order_id=str(trade.get("order")),
            symbol=symbol,
            side=Side(trade["side"]),
            fill=_fill(trade, quote, None),
        )


def _look(order: Mapping[str, Any]) -> tuple[Any, ...]:
    """What tells one pushed state of an order from the next."""
    return (
        order.get("status"),
        order.get("filled"),
        order.get("lastUpdateTimestamp"),
        order.get("lastTradeTimestamp"),
    )


def _fill(trade: Mapping[str, Any], quote: str, fallback_time: int | None) -> Fill:
    fee = trade.get("fee") or {}
    return Fill(
        fill_id=str(trade["id"]),
        quantity=_decimal(trade["amount"]),
        price=_decimal(trade["price"]),
        fee=_decimal(fee.get("cost") or 0),
        fee_currency=fee.get("currency") or quote,
        liquidity="maker" if trade.get("takerOrMaker") == "maker" else "taker",
        filled_at=_time(trade.get("timestamp") or fallback_time) or datetime.now(UTC),
    )


def _status(order: Mapping[str, Any], quantity: Decimal, filled: Decimal) -> ExecutionStatus:
    status = order.get("status")
    if status in _STATUSES:
        return _STATUSES[status]
    if status == "closed" or (quantity and filled >= quantity):
        return ExecutionStatus.FILLED
    return ExecutionStatus.PARTIALLY_FILLED if filled else ExecutionStatus.ACCEPTED


def _decimal(value: Any) -> Decimal:
    # ccxt hands numbers as floats parsed from the exchange's decimal strings: str() gives the
    # shortest text that reads back as the same float, which is the string the exchange sent.
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else _decimal(value)


def _time(milliseconds: Any) -> datetime | None:
    if milliseconds is None:
        return None
    return datetime.fromtimestamp(int(milliseconds) / 1000, tz=UTC)


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _merged(current, value)
        else:
            merged[key] = value
    return merged


def ccxt_venue_factory(
    venue: str,
    accounts: Iterable[CcxtAccount],
    credentials: Callable[[CcxtAccount], VenueCredentials],
) -> Callable[[str], CcxtVenue]:
    """A registry factory: an adapter for each configured account, and none for others."""
    configured = {entry.account: entry for entry in accounts}

    def create(account: str) -> CcxtVenue:
        entry = configured.get(account)
        if entry is None:
            raise UnknownVenue(
                f"account {account!r} is not configured on {venue} "
                f"(configured: {', '.join(sorted(configured)) or 'none'})",
                venue=venue,
            )
        return CcxtVenue(venue, entry, open_exchange(entry, credentials(entry)))

    return create
