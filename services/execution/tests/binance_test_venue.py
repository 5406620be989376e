"""A local Binance spot venue: enough of Binance's REST and WebSocket API for ccxt's ``binance``.

It is how the tests exercise the real ccxt code path without the internet: ccxt's own binance
class signs the requests and parses the answers; only its URLs point here (see ``ccxt_urls``).

Served (spot, ``/api/v3``): ping, server time, exchange info, 24h ticker, create / cancel / query
an order (by order id or client order id), open orders, my trades, account. Private calls are
checked like Binance checks them: the API key header, the HMAC-SHA256 signature of the query
(or form body), and the timestamp within the receive window. The WebSocket API
(``/ws-api/v3``) takes the signed user data stream subscription and then pushes an
``executionReport`` for each change of an order.

Trading: a market order, or a limit order the price has reached, fills at once at the market's
price (taker); a resting limit fills at its limit (maker) when the test moves the price through
it (``set_price``). Commission is charged in the quote asset. Buys need the quote asset, sells
the base asset (spot: no shorts); what a resting order may spend is locked.

Conditional orders, as Binance spot has them: ``STOP_LOSS`` and ``TAKE_PROFIT`` (a market order
once triggered), ``STOP_LOSS_LIMIT`` and ``TAKE_PROFIT_LIMIT`` (a limit order once triggered),
each with its ``stopPrice``. A stop loss triggers when the price reaches its stop against the
order (a buy at or above it, a sell at or below it), a take profit in its favour (a buy at or
below, a sell at or above). One that would trigger at once is refused ("Stop price would trigger
immediately."), and a parameter an order type does not take (a market order's ``timeInForce``)
is refused as Binance refuses it (-1106).

USDⓈ-M futures (``/fapi``), only as far as reading positions goes: exchange info of the
perpetual markets, leverage brackets, and position risk (v3) of the positions the test sets
(``set_position``).

Faults, injected per request (``inject``): an HTTP error status (5xx, 429, ...), a delay before
or after the request is handled (a slow venue, which still handles a request its client gave up
on, or one whose answer comes too late), and a response dropped after the order was created (the
connection closes without an answer).
"""

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import parse_qsl

import ccxt.pro
from aiohttp import WSMsgType, web

API_PREFIX = "/api/v3"
RECV_WINDOW_MS = 5_000
CONDITIONAL_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", *sorted(CONDITIONAL_TYPES))


@dataclass
class SpotMarket:
    symbol: str  # Binance's id, e.g. BTCUSDT
    base: str
    quote: str
    price: Decimal
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.0001")
    min_quantity: Decimal = Decimal("0.0001")
    min_notional: Decimal = Decimal(5)


@dataclass
class SpotOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT / STOP_LOSS(_LIMIT) / TAKE_PROFIT(_LIMIT)
    time_in_force: str
    quantity: Decimal
    price: Decimal  # 0 for a market order
    stop_price: Decimal = Decimal(0)  # 0 for an order without a trigger
    triggered: bool = False  # a conditional order's trigger was reached: it works as its kind
    locked: bool = False  # funds are held for it while it rests
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    time: int = 0
    update_time: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in {"NEW", "PARTIALLY_FILLED"}

    @property
    def is_conditional(self) -> bool:
        return self.type in CONDITIONAL_TYPES

    @property
    def is_working(self) -> bool:
        """On the book (or filled): not a conditional order waiting for its trigger."""
        return not self.is_conditional or self.triggered

    @property
    def works_as_market(self) -> bool:
        return self.type in {"MARKET", "STOP_LOSS", "TAKE_PROFIT"}


@dataclass
class SpotTrade:
    trade_id: int
    order: SpotOrder
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool


@dataclass
class Fault:
    """What goes wrong with the next ``times`` requests to ``method path``."""

    method: str
    path: str  # e.g. /api/v3/order
    status: int | None = None  # answer with this HTTP status (and Binance's error body)
    delay_before: float = 0.0  # seconds before the request is handled
    delay_after: float = 0.0  # seconds after it is handled, before the answer
    drop_after: bool = False  # handle it, then close the connection without an answer
    times: int = 1


class BinanceError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class BinanceTestVenue:
    def __init__(
        self,
        *,
        api_key: str,
        secret: str,
        markets: list[SpotMarket],
        balances: dict[str, str],
        fee_rate: Decimal = Decimal("0.001"),
        perpetuals: list[SpotMarket] | None = None,
    ) -> None:
        self.api_key = api_key
        self.secret = secret
        self.markets = {market.symbol: market for market in markets}
        self.free = {asset: Decimal(amount) for asset, amount in balances.items()}
        self.locked: dict[str, Decimal] = {}
        self.fee_rate = fee_rate
        # USDⓈ-M perpetuals (by Binance id), and the account's signed position in each.
        self.perpetuals = {market.symbol: market for market in perpetuals or []}
        self.positions: dict[str, Decimal] = {}
        self.orders: dict[int, SpotOrder] = {}
        self.trades: list[SpotTrade] = []
        # Every create that reached the venue, by client order id (accepted or not).
        self.create_requests: Counter[str] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.in_flight = 0  # requests received and not answered yet (a slow one, say)
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- control, for the tests -----------------------------------------------------------------

    async def start(self) -> "BinanceTestVenue":
        app = web.Application(middlewares=[self._faults_middleware])
        app.router.add_get(f"{API_PREFIX}/ping", self._ping)
        app.router.add_get(f"{API_PREFIX}/time", self._time)
        app.router.add_get(f"{API_PREFIX}/exchangeInfo", self._exchange_info)
        app.router.add_get(f"{API_PREFIX}/ticker/24hr", self._ticker)
        app.router.add_post(f"{API_PREFIX}/order", self._create_order)
        app.router.add_delete(f"{API_PREFIX}/order", self._cancel_order)
        app.router.add_get(f"{API_PREFIX}/order", self._query_order)
        app.router.add_get(f"{API_PREFIX}/openOrders", self._open_orders)
        app.router.add_get(f"{API_PREFIX}/myTrades", self._my_trades)
        app.router.add_get(f"{API_PREFIX}/account", self._account)
        app.router.add_get("/ws-api/v3", self._websocket)
        app.router.add_get("/fapi/v1/exchangeInfo", self._futures_exchange_info)
        app.router.add_get("/fapi/v1/leverageBracket", self._leverage_brackets)
        app.router.add_get("/fapi/v3/positionRisk", self._position_risk)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # the only way aiohttp tells the port it bound
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ccxt_urls(self) -> dict[str, Any]:
        """Every entry of ccxt's ``binance.urls['api']``, pointed here: nothing leaves the host.

        The spot REST API, the spot WebSocket API and the futures reads above are served; every
        other API (margin, options, market streams) answers 404, as a venue that lacks it would.
        """
        served = {
            ("public",): f"{self.url}{API_PREFIX}",
            ("private",): f"{self.url}{API_PREFIX}",
            ("ws", "ws-api", "spot"): f"ws://127.0.0.1:{self.port}/ws-api/v3",
            ("fapiPublic",): f"{self.url}/fapi/v1",
            ("fapiPrivate",): f"{self.url}/fapi/v1",
            ("fapiPrivateV3",): f"{self.url}/fapi/v3",
        }
        return _localized(ccxt.pro.binance().urls["api"], (), served, self.url)

    def inject(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    async def set_price(self, symbol: str, price: str) -> None:
        """Move a market's price; resting limits it reaches fill at their limit (maker)."""
        market = self.markets[symbol]
        market.price = Decimal(price)
        for order in list(self.orders.values()):
            if order.symbol != symbol or not order.is_open:
                continue
            if not order.is_working and _trigger_reached(order, market.price):
                # Triggered: a market order now, or a limit order that may take at once.
                order.triggered = True
                order.update_time = _now_ms()
                if order.works_as_market or _limit_reached(order, market.price):
                    self._fill(order, market.price, maker=False)
                await self._push(order)
            elif order.is_working and _limit_reached(order, market.price):
                self._fill(order, order.price, maker=True)
                await self._push(order)

    def set_position(self, symbol: str, amount: str) -> None:
        """The account's signed position in a perpetual (short < 0), as the venue holds it."""
        self.positions[self.perpetuals[symbol].symbol] = Decimal(amount)

    async def drop_subscribers(self) -> None:
        """Close every user data stream connection, as a venue's maintenance does."""
        for socket in list(self._sockets):
            await socket.close()
        self._sockets.clear()

    @property
    def subscribers(self) -> int:
        """WebSocket clients subscribed to the user data stream."""
        return len(self._sockets)

    def orders_with_client_id(self, client_order_id: str) -> list[SpotOrder]:
        return [o for o in self.orders.values() if o.client_order_id == client_order_id]

    # -- the middleware: faults, and Binance's error bodies -------------------------------------

    @web.middleware
    async def _faults_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests[(request.method, request.path)] += 1
        self.in_flight += 1
        try:
            return await self._answer(request, handler)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        fault = self._take_fault(request.method, request.path)
        if fault is not None and fault.delay_before:
            # The venue has the whole request before it is slow: a client that gives up
            # meanwhile does not stop it from being handled (aiohttp keeps the body read).
            await request.read()
            await asyncio.sleep(fault.delay_before)
        if fault is not None and fault.status is not None:
            return _error(fault.status, -1003 if fault.status == 429 else -1001, "injected")
        try:
            response = await handler(request)
        except BinanceError as error:
            response = _error(error.status, error.code, error.message)
        if fault is not None and fault.drop_after:
            assert request.transport is not None
            request.transport.abort()  # the client sees the connection close, and no answer
            return response
        if fault is not None and fault.delay_after:
            await asyncio.sleep(fault.delay_after)
        return response

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.path == path and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    # -- public endpoints -----------------------------------------------------------------------

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": _now_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        symbols = [_symbol_info(market) for market in self.markets.values()]
        return web.json_response(
            {"timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [], "symbols": symbols}
        )

    async def _ticker(self, request: web.Request) -> web.Response:
        market = self._market(request.query.get("symbol", ""))
        price = str(market.price)
        return web.json_response(
            {
                "symbol": market.symbol,
                "lastPrice": price,
                "bidPrice": price,
                "askPrice": price,
                "openPrice": price,
                "highPrice": price,
                "lowPrice": price,
                "volume": "0",
                "quoteVolume": "0",
                "openTime": _now_ms() - 86_400_000,
                "closeTime": _now_ms(),
                "count": 0,
            }
        )

    # -- private endpoints ----------------------------------------------------------------------

    async def _create_order(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        client_order_id = params.get("newClientOrderId") or f"venue-{next(self._ids)}"
        self.create_requests[client_order_id] += 1
        market = self._market(params.get("symbol", ""))
        if any(o.is_open for o in self.orders_with_client_id(client_order_id)):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        order = self._new_order(market, client_order_id, params)
        self._check_filters(market, order)
        self._check_balance(market, order)
        if order.is_conditional and _trigger_reached(order, market.price):
            raise BinanceError(400, -2010, "Stop price would trigger immediately.")
        self.orders[order.order_id] = order
        if order.is_conditional:
            self._lock(market, order)  # waits for its trigger
        elif order.type == "MARKET" or _limit_reached(order, market.price):
            self._fill(order, market.price, maker=False)
        elif order.time_in_force in {"IOC", "FOK"}:
            order.status = "EXPIRED"
        else:
            self._lock(market, order)
        await self._push(order)
        return web.json_response(self._order_json(order, full=True))

    async def _cancel_order(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        order = self._find(params, missing=(-2011, "Unknown order sent."))
        if not order.is_open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_time = _now_ms()
        if order.locked:
            self._unlock(self.markets[order.symbol], order)
        await self._push(order)
        return web.json_response(self._order_json(order))

    async def _query_order(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        order = self._find(params, missing=(-2013, "Order does not exist."))
        return web.json_response(self._order_json(order))

    async def _open_orders(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        symbol = params.get("symbol")
        return web.json_response(
            [
                self._order_json(order)
                for order in self.orders.values()
                if order.is_open and (symbol is None or order.symbol == symbol)
            ]
        )

    async def _my_trades(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        market = self._market(params.get("symbol", ""))
        order_id = int(params["orderId"]) if "orderId" in params else None
        since = int(params.get("startTime", 0))
        trades = [
            _trade_json(trade)
            for trade in self.trades
            if trade.order.symbol == market.symbol
            and (order_id is None or trade.order.order_id == order_id)
            and trade.time >= since
        ]
        return web.json_response(trades)

    async def _account(self, request: web.Request) -> web.Response:
        await self._signed(request)
        assets = sorted(set(self.free) | set(self.locked))
        return web.json_response(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "updateTime": _now_ms(),
                "accountType": "SPOT",
                "balances": [
                    {
                        "asset": asset,
                        "free": str(self.free.get(asset, Decimal(0))),
                        "locked": str(self.locked.get(asset, Decimal(0))),
                    }
                    for asset in assets
                ],
                "permissions": ["SPOT"],
            }
        )

    # -- USDⓈ-M futures: positions -------------------------------------------------------------

    async def _futures_exchange_info(self, request: web.Request) -> web.Response:
        symbols = [_perpetual_info(market) for market in self.perpetuals.values()]
        return web.json_response(
            {"timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [], "symbols": symbols}
        )

    async def _leverage_brackets(self, request: web.Request) -> web.Response:
        await self._signed(request)
        bracket = {
            "bracket": 1,
            "initialLeverage": 20,
            "notionalCap": 1_000_000,
            "notionalFloor": 0,
            "maintMarginRatio": 0.005,
            "cum": 0.0,
        }
        return web.json_response(
            [{"symbol": symbol, "brackets": [bracket]} for symbol in self.perpetuals]
        )

    async def _position_risk(self, request: web.Request) -> web.Response:
        await self._signed(request)
        return web.json_response(
            [
                _position_json(self.perpetuals[symbol], amount)
                for symbol, amount in sorted(self.positions.items())
                if amount
            ]
        )

    # -- the WebSocket API: the user data stream ------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                continue
            command = json.loads(message.data)
            await socket.send_json(self._ws_answer(socket, command))
        self._sockets.discard(socket)
        return socket

    def _ws_answer(self, socket: web.WebSocketResponse, command: dict[str, Any]) -> Any:
        request_id = command.get("id")
        if command.get("method") != "userDataStream.subscribe.signature":
            return {"id": request_id, "status": 200, "result": {}}
        params = {key: str(value) for key, value in (command.get("params") or {}).items()}
        signature = params.pop("signature", "")
        payload = "&".join(f"{key}={params[key]}" for key in sorted(params))
        if params.get("apiKey") != self.api_key or not self._signature_matches(payload, signature):
            return {
                "id": request_id,
                "status": 401,
                "error": {"code": -1022, "msg": "Signature for this request is not valid."},
            }
        self._sockets.add(socket)
        return {"id": request_id, "status": 200, "result": {"subscriptionId": 0}}

    async def _push(self, order: SpotOrder) -> None:
        event = {"subscriptionId": 0, "event": self._execution_report(order)}
        for socket in list(self._sockets):
            if socket.closed:
                self._sockets.discard(socket)
                continue
            await socket.send_json(event)

    def _execution_report(self, order: SpotOrder) -> dict[str, Any]:
        last = next((t for t in reversed(self.trades) if t.order is order), None)
        return {
            "e": "executionReport",
            "E": _now_ms(),
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": str(order.quantity),
            "p": str(order.price),
            "P": str(order.stop_price),
            "F": "0",
            "g": -1,
            "C": "",
            "x": "TRADE" if last is not None and order.executed else order.status,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": str(last.quantity) if last else "0",
            "z": str(order.executed),
            "L": str(last.price) if last else "0",
            "n": str(last.commission) if last else "0",
            "N": last.commission_asset if last else None,
            "T": order.update_time,
            "t": last.trade_id if last else -1,
            "I": 0,
            "w": order.is_open and order.is_working,
            "m": bool(last and last.is_maker),
            "M": False,
            "O": order.time,
            "Z": str(order.quote_executed),
            "Y": str(last.price * last.quantity) if last else "0",
            "Q": "0",
        }

    # -- signing --------------------------------------------------------------------------------

    async def _signed(self, request: web.Request) -> dict[str, str]:
        """The request's parameters, once its key, signature and timestamp check out."""
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        raw = request.query_string if request.method in {"GET", "DELETE"} else await request.text()
        payload, marker, signature = raw.rpartition("&signature=")
        if not marker or not self._signature_matches(payload, signature):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload, keep_blank_values=True))
        window = int(params.get("recvWindow", RECV_WINDOW_MS))
        if abs(_now_ms() - int(params.get("timestamp", 0))) > window:
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        return params

    def _signature_matches(self, payload: str, signature: str) -> bool:
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    # -- trading --------------------------------------------------------------------------------

    def _market(self, symbol: str) -> SpotMarket:
        market = self.markets.get(symbol)
        if market is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    def _new_order(
        self, market: SpotMarket, client_order_id: str, params: dict[str, str]
    ) -> SpotOrder:
        now = _now_ms()
        order_type = params.get("type", "")
        if order_type not in ORDER_TYPES or order_type == "LIMIT_MAKER":
            raise BinanceError(400, -1116, "Invalid orderType.")
        _check_parameters(order_type, params)
        return SpotOrder(
            order_id=next(self._ids),
            client_order_id=client_order_id,
            symbol=market.symbol,
            side=params.get("side", ""),
            type=order_type,
            time_in_force=params.get("timeInForce", ""),
            quantity=Decimal(params.get("quantity", "0")),
            price=Decimal(params.get("price", "0")),
            stop_price=Decimal(params.get("stopPrice", "0")),
            time=now,
            update_time=now,
        )

    def _check_filters(self, market: SpotMarket, order: SpotOrder) -> None:
        if order.quantity < market.min_quantity or order.quantity % market.step_size:
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        if order.price % market.tick_size or order.stop_price % market.tick_size:
            raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
        if order.quantity * (order.price or order.stop_price or market.price) < market.min_notional:
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")

    def _check_balance(self, market: SpotMarket, order: SpotOrder) -> None:
        price = order.price or order.stop_price or market.price
        if order.side == "BUY":
            needed, asset = order.quantity * price * (1 + self.fee_rate), market.quote
        else:
            needed, asset = order.quantity, market.base
        if self.free.get(asset, Decimal(0)) < needed:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")

    def _lock(self, market: SpotMarket, order: SpotOrder) -> None:
        asset, amount = self._held(market, order)
        self.free[asset] = self.free.get(asset, Decimal(0)) - amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount
        order.locked = True

    def _unlock(self, market: SpotMarket, order: SpotOrder) -> None:
        asset, amount = self._held(market, order)
        self.free[asset] = self.free.get(asset, Decimal(0)) + amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) - amount
        order.locked = False

    def _held(self, market: SpotMarket, order: SpotOrder) -> tuple[str, Decimal]:
        left = order.quantity - order.executed
        if order.side == "BUY":
            return market.quote, left * (order.price or order.stop_price) * (1 + self.fee_rate)
        return market.base, left

    def _fill(self, order: SpotOrder, price: Decimal, *, maker: bool) -> None:
        market = self.markets[order.symbol]
        if order.locked:
            self._unlock(market, order)
        quantity = order.quantity - order.executed
        notional = quantity * price
        commission = (notional * self.fee_rate).quantize(Decimal("0.00000001"), ROUND_DOWN)
        sign = 1 if order.side == "BUY" else -1
        self.free[market.base] = self.free.get(market.base, Decimal(0)) + sign * quantity
        self.free[market.quote] = (
            self.free.get(market.quote, Decimal(0)) - sign * notional - commission
        )
        now = _now_ms()
        self.trades.append(
            SpotTrade(
                trade_id=next(self._trade_ids),
                order=order,
                price=price,
                quantity=quantity,
                commission=commission,
                commission_asset=market.quote,
                time=now,
                is_maker=maker,
            )
        )
        order.executed += quantity
        order.quote_executed += notional
        order.status = "FILLED"
        order.update_time = now

    def _find(self, params: dict[str, str], *, missing: tuple[int, str]) -> SpotOrder:
        symbol = params.get("symbol", "")
        if "orderId" in params:
            found = [self.orders.get(int(params["orderId"]))]
        else:
            found = self.orders_with_client_id(params.get("origClientOrderId", ""))
        matches = [order for order in found if order is not None and order.symbol == symbol]
        if not matches:
            raise BinanceError(400, *missing)
        return matches[-1]

    def _order_json(self, order: SpotOrder, *, full: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": str(order.price),
            "origQty": str(order.quantity),
            "executedQty": str(order.executed),
            "cummulativeQuoteQty": str(order.quote_executed),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "stopPrice": str(order.stop_price),
            "time": order.time,
            "updateTime": order.update_time,
            "workingTime": order.time if order.is_working else -1,
            "isWorking": order.is_working,
            "origQuoteOrderQty": "0",
            "selfTradePreventionMode": "NONE",
        }
        if full:
            body["transactTime"] = order.update_time
            body["fills"] = [
                {
                    "price": str(trade.price),
                    "qty": str(trade.quantity),
                    "commission": str(trade.commission),
                    "commissionAsset": trade.commission_asset,
                    "tradeId": trade.trade_id,
                }
                for trade in self.trades
                if trade.order is order
            ]
        return body


def _symbol_info(market: SpotMarket) -> dict[str, Any]:
    return {
        "symbol": market.symbol,
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": str(market.tick_size),
                "maxPrice": "1000000",
                "tickSize": str(market.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": str(market.min_quantity),
                "maxQty": "9000",
                "stepSize": str(market.step_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": str(market.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
    }


def _perpetual_info(market: SpotMarket) -> dict[str, Any]:
    spot = _symbol_info(market)
    return {
        "symbol": market.symbol,
        "pair": market.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4_133_404_800_000,
        "onboardDate": 1_569_398_400_000,
        "status": "TRADING",
        "baseAsset": market.base,
        "quoteAsset": market.quote,
        "marginAsset": market.quote,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": spot["filters"],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def _position_json(market: SpotMarket, amount: Decimal) -> dict[str, Any]:
    notional = amount * market.price
    return {
        "symbol": market.symbol,
        "positionSide": "BOTH",
        "positionAmt": str(amount),
        "entryPrice": str(market.price),
        "breakEvenPrice": str(market.price),
        "markPrice": str(market.price),
        "unRealizedProfit": "0",
        "liquidationPrice": "0",
        "isolatedMargin": "0",
        "notional": str(notional),
        "marginAsset": market.quote,
        "isolatedWallet": "0",
        "initialMargin": str(abs(notional) / 20),
        "maintMargin": str(abs(notional) / 200),
        "positionInitialMargin": str(abs(notional) / 20),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": _now_ms(),
    }


def _trade_json(trade: SpotTrade) -> dict[str, Any]:
    return {
        "symbol": trade.order.symbol,
        "id": trade.trade_id,
        "orderId": trade.order.order_id,
        "orderListId": -1,
        "price": str(trade.price),
        "qty": str(trade.quantity),
        "quoteQty": str(trade.price * trade.quantity),
        "commission": str(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time,
        "isBuyer": trade.order.side == "BUY",
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }


def _localized(
    urls: dict[str, Any], path: tuple[str, ...], served: dict[tuple[str, ...], str], base: str
) -> dict[str, Any]:
    localized: dict[str, Any] = {}
    for name, value in urls.items():
        where = (*path, name)
        if isinstance(value, dict):
            localized[name] = _localized(value, where, served, base)
        elif isinstance(value, str):
            scheme = "ws" if value.startswith("ws") else "http"
            unserved = f"{scheme}{base.removeprefix('http')}/unserved/{'/'.join(where)}"
            localized[name] = served.get(where, unserved)
    return localized


def _limit_reached(order: SpotOrder, price: Decimal) -> bool:
    if order.works_as_market or not order.is_working:
        return False
    return price <= order.price if order.side == "BUY" else price >= order.price


def _trigger_reached(order: SpotOrder, price: Decimal) -> bool:
    """A stop loss triggers against the order (a buy on a rise), a take profit in its favour."""
    rising = order.type.startswith("STOP_LOSS") == (order.side == "BUY")
    return price >= order.stop_price if rising else price <= order.stop_price


# The parameters each order type requires, and those it refuses, as Binance spot checks them.
_REQUIRED = {
    "MARKET": (),
    "LIMIT": ("price", "timeInForce"),
    "STOP_LOSS": ("stopPrice",),
    "TAKE_PROFIT": ("stopPrice",),
    "STOP_LOSS_LIMIT": ("price", "stopPrice", "timeInForce"),
    "TAKE_PROFIT_LIMIT": ("price", "stopPrice", "timeInForce"),
}
_OPTIONAL = {"price", "stopPrice", "timeInForce"}


def _check_parameters(order_type: str, params: dict[str, str]) -> None:
    required = _REQUIRED[order_type]
    for name in required:
        if not params.get(name):
            raise BinanceError(
                400,
                -1102,
                f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
            )
    for name in _OPTIONAL - set(required):
        if name in params:
            raise BinanceError(400, -1106, f"Parameter '{name}' sent when not required.")


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status)


def _now_ms() -> int:
    return int(time.time() * 1000)
