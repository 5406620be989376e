"""The OMS's consumers of prices and portfolio commands: quotes, emulated orders, rebalances.

- ``market.quote.v1``: keep the newest mark per venue + symbol; watch the held (emulated) orders
  of that market, and release those the quote triggers as new proposals to the risk gate.
- ``order.rebalance.v1``: plan the sells of a rebalance and propose them; once every sell has
  ended, plan again on the filled positions and propose the buys
  (:meth:`Rebalancing.on_order_settled`).

Orders are placed through :class:`OrderPlacement`, which checks each spec against its venue's
capabilities and holds what the venue cannot take (the signal path uses it too).
"""

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ordo.contracts.enums import OrderType
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.market import MarketQuote
from ordo.contracts.orders import CancelOrder, OrderProposed, OrderSpec, RebalancePortfolio
from ordo.contracts.subjects import Service
from ordo.contracts.types import utc_now
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Outbox, Transaction
from ordo.kit.store import ConcurrentUpdate, Database
from ordo.order import store
from ordo.order.domain import MarketRules, Order
from ordo.order.domain.emulation import Watch, observe
from ordo.order.domain.errors import RebalanceRefused
from ordo.order.domain.marks import Mark
from ordo.order.domain.order_types import VenueCapabilities, prepare
from ordo.order.domain.rebalance import (
    Holding,
    Rebalance,
    RebalancePhase,
    RebalancePlan,
    RebalanceRequest,
    Trade,
    describe_skipped,
    plan_rebalance,
    rebalance_id_of,
)
from ordo.order.market_store import MarketRepositories, all_marks
from ordo.order.store import Repositories

log = get_logger(__name__)

PRODUCER = str(Service.ORDER)
Clock = Callable[[], datetime]
Settle = Callable[[Order, Repositories, Message, Transaction, datetime, str], Awaitable[None]]
"""Save an order and publish what it recorded (OrderManagement.settle_order)."""
MarketBook = Mapping[str, Mapping[str, MarketRules]]

NATIVE = VenueCapabilities()


class OrderPlacement:
    """New orders: checked against their venue, created, and held where the venue lacks the type."""

    def __init__(self, venues: Mapping[str, VenueCapabilities], settle: Settle) -> None:
        self._venues = venues
        self._settle = settle

    def prepare(self, specs: Sequence[OrderSpec], now: datetime) -> list[OrderSpec]:
        """The specs as they will be placed (DAY given its expiry); raises InvalidOrderSpec."""
        return [prepare(spec, self._venue(spec.venue), now) for spec in specs]

    async def place(
        self,
        specs: Sequence[OrderSpec],
        *,
        signal_id: str,
        proposal_id: str,
        cause: Message,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
        detail: str,
    ) -> list[OrderSpec]:
        """Create the orders of prepared ``specs``; return those to propose now (not held)."""
        watches = MarketRepositories(tx.session).watches
        to_propose = []
        for spec in specs:
            held = self._venue(spec.venue).emulates(spec.order_type)
            order = Order.new(spec, signal_id, proposal_id, now, emulated=held)
            await self._settle(order, repos, cause, tx, now, detail)
            if held:
                await watches.add(Watch(order.order_id, spec.venue, spec.symbol, placed_at=now))
                log.info("order held for emulation", order_id=order.order_id, type=spec.order_type)
            else:
                to_propose.append(spec)
        return to_propose

    def _venue(self, venue: str) -> VenueCapabilities:
        return self._venues.get(venue, NATIVE)


def proposal(
    specs: Sequence[OrderSpec], *, proposal_id: str, signal_id: str, cause: Message
) -> OrderProposed:
    """A proposal of ``specs`` in the flow of ``signal_id`` (its correlation id)."""
    return OrderProposed(
        correlation_id=signal_id,
        causation_id=cause.message_id,
        producer=PRODUCER,
        proposal_id=proposal_id,
        signal_id=signal_id,
        account=specs[0].account,
        orders=tuple(specs),
    )


class MarketWatch:
    """market.quote.v1: marks, and the held orders of the quoted market."""

    def __init__(self, settle: Settle, *, clock: Clock = utc_now) -> None:
        self._settle = settle
        self._clock = clock

    async def on_market_quote(self, quote: MarketQuote, tx: Transaction) -> None:
        market = MarketRepositories(tx.session)
        mark = Mark(quote.venue, quote.symbol, quote.last, quote.quoted_at)
        await market.marks.record(mark)
        watches = await market.watches.of_market(quote.venue, quote.symbol)
        if not watches:
            return
        repos = Repositories(tx.session)
        now = self._clock()
        for watch in watches:
            await self._watch(watch, quote, repos, market, tx, now)

    async def _watch(
        self,
        watch: Watch,
        quote: MarketQuote,
        repos: Repositories,
        market: MarketRepositories,
        tx: Transaction,
        now: datetime,
    ) -> None:
        order = await repos.orders.get(watch.order_id)
        if order is None or not order.is_held:
            # Canceled, expired or released (or ended otherwise): nothing left to watch.
            await market.watches.remove(watch)
            return
        if order.expire_at is not None and order.expire_at <= now:
            order.expire(now)
            await self._settle(order, repos, quote, tx, now, "expired while held by the OMS")
            await market.watches.remove(watch)
            return
        decision = observe(order.spec(), watch, quote.last, quote.quoted_at)
        if decision.trigger_price is None:
            if decision.watch != watch:
                await market.watches.save(decision.watch, watch.version)
            return
        proposal_id = new_message_id()
        sent = order.release(decision.trigger_price, proposal_id, now)
        detail = f"last {quote.last} (quote {quote.message_id}) triggered it: {sent.order_type}"
        await self._settle(order, repos, quote, tx, now, detail)
        await market.watches.remove(watch)
        tx.publish(
            proposal([sent], proposal_id=proposal_id, signal_id=order.signal_id, cause=quote)
        )
        log.info(
            "held order released",
            order_id=order.order_id,
            trigger_price=str(decision.trigger_price),
            proposal_id=proposal_id,
        )


class OrderExpiry:
    """GTD/DAY orders past their expiry are canceled by the OMS, whether or not their venue
    expires them itself (the paper venue and the ccxt adapter do not): the cancel's answer reads
    as EXPIRED. Run every second; each order in a unit of work of its own."""

    def __init__(
        self, outbox: Outbox, db: Database, settle: Settle, *, clock: Clock = utc_now
    ) -> None:
        self._outbox = outbox
        self._db = db
        self._settle = settle
        self._clock = clock

    async def run(self) -> int:
        now = self._clock()
        async with self._db.session() as session:
            order_ids = await store.expired_orders(session, now)
        expired = 0
        for order_id in order_ids:
            try:
                async with self._outbox.transaction() as tx:
                    expired += await self._expire(order_id, tx, now)
            except ConcurrentUpdate:
                # A report or another replica changed it first; the next round sees the result.
                log.info("order changed while expiring; next round", order_id=order_id)
        return expired

    async def _expire(self, order_id: str, tx: Transaction, now: datetime) -> bool:
        repos = Repositories(tx.session)
        order = await repos.orders.get(order_id)
        if order is None:
            return False
        held = order.is_held
        if not order.request_expiry(now):
            return False
        cancel = CancelOrder(
            correlation_id=order.signal_id,
            producer=PRODUCER,
            order_id=order.order_id,
            account=order.account,
            venue=order.venue,
            symbol=order.symbol,
            venue_order_id=order.venue_order_id,
            reason=order.reason or "expired",
        )
        await self._settle(order, repos, cancel, tx, now, cancel.reason)
        if held:
            # It ended here (EXPIRED): no venue ever saw it, so no cancel is sent. The unsent
            # cancel still stands as the cause of the order's update: the OMS's own decision.
            log.info("held order expired", order_id=order.order_id, expire_at=str(order.expire_at))
            return True
        tx.publish(cancel)
        log.info("expired order canceled", order_id=order.order_id, expire_at=str(order.expire_at))
        return True


@dataclass(frozen=True)
class RebalanceSettings:
    capital: Mapping[str, Decimal]  # account → the money it started with
    min_trade_notional: Decimal
    max_mark_age_seconds: float = 60.0


class Rebalancing:
    """order.rebalance.v1: sells first, then buys once the sells have ended."""

    def __init__(
        self,
        markets: MarketBook,
        settings: RebalanceSettings,
        placement: OrderPlacement,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._markets = markets
        self._settings = settings
        self._placement = placement
        self._clock = clock

    async def on_rebalance(self, command: RebalancePortfolio, tx: Transaction) -> None:
        market = MarketRepositories(tx.session)
        if await market.rebalances.get(command.rebalance_id) is not None:
            log.info("rebalance already handled", rebalance_id=command.rebalance_id)
            return
        now = self._clock()
        rebalance = Rebalance(
            rebalance_id=command.rebalance_id,
            account=command.account,
            strategy=command.strategy,
            venue=command.venue,
            targets={target.symbol: target.weight for target in command.targets},
            reserve=command.reserve,
            phase=RebalancePhase.SELLING,
            created_at=now,
            updated_at=now,
        )
        repos = Repositories(tx.session)
        try:
            problem = command.allocation_problem()
            if problem is not None:
                raise RebalanceRefused(problem)
            plan = await self._plan(rebalance, tx, now)
        except RebalanceRefused as refused:
            rebalance.phase, rebalance.detail = RebalancePhase.REFUSED, str(refused)
            await market.rebalances.save(rebalance)
            log.warning(
                "rebalance refused", rebalance_id=rebalance.rebalance_id, reason=str(refused)
            )
            return
        rebalance.detail = describe_skipped(plan.skipped)
        if plan.sells:
            await self._propose(rebalance, plan.sells, command, repos, tx, now)
        else:
            await self._buy(rebalance, plan, command, repos, tx, now)
        await market.rebalances.save(rebalance)

    async def on_order_settled(
        self, order: Order, repos: Repositories, cause: Message, tx: Transaction, now: datetime
    ) -> None:
        """One of a rebalance's orders ended: the buys follow the last sell, DONE the last buy."""
        rebalance_id = rebalance_id_of(order.signal_id)
        if rebalance_id is None or not order.status.is_terminal:
            return
        market = MarketRepositories(tx.session)
        rebalance = await market.rebalances.get(rebalance_id)
        if rebalance is None or rebalance.phase.is_final:
            return
        # Every ending of one of its orders is a new version: two replicas ending its last two
        # orders at once cannot both see "one still open" (or both propose the buys).
        rebalance.touch(now)
        if not await self._all_ended(rebalance, tx):
            await market.rebalances.save(rebalance)
            return
        if rebalance.phase is RebalancePhase.SELLING:
            try:
                plan = await self._plan(rebalance, tx, now)
            except RebalanceRefused as refused:
                rebalance.move_to(RebalancePhase.REFUSED, now, f"buys not placed: {refused}")
            else:
                await self._buy(rebalance, plan, cause, repos, tx, now)
        else:
            rebalance.move_to(RebalancePhase.DONE, now)
            log.info("rebalance done", rebalance_id=rebalance.rebalance_id)
        await market.rebalances.save(rebalance)

    @staticmethod
    async def _all_ended(rebalance: Rebalance, tx: Transaction) -> bool:
        working = await store.find_orders(
            tx.session, signal_id=rebalance.signal_id, open_only=True, limit=1
        )
        return not working

    async def _plan(self, rebalance: Rebalance, tx: Transaction, now: datetime) -> RebalancePlan:
        capital = self._settings.capital.get(rebalance.account)
        if capital is None:
            raise RebalanceRefused(
                f"no capital configured for account {rebalance.account} (order.capital): the "
                "portfolio's cash is unknown"
            )
        positions = await store.find_positions(
            tx.session,
            account=rebalance.account,
            venue=rebalance.venue,
            strategy=rebalance.strategy,
            include_flat=True,
        )
        marks = await all_marks(tx.session, rebalance.venue)
        needed = set(rebalance.targets) | {p.symbol for p in positions if p.quantity}
        self._refuse_stale(needed, marks.values(), now)
        request = RebalanceRequest(
            targets=rebalance.targets,
            reserve=rebalance.reserve,
            capital=capital,
            min_trade_notional=self._settings.min_trade_notional,
        )
        return plan_rebalance(
            request,
            [Holding(p.symbol, p.quantity, p.average_entry, p.realised_pnl) for p in positions],
            {symbol: mark.price for (_, symbol), mark in marks.items()},
            self._markets.get(rebalance.venue, {}),
        )

    def _refuse_stale(self, symbols: set[str], marks: Iterable[Mark], now: datetime) -> None:
        """A quote older than the configured age is no price to trade on (nor a made-up one)."""
        oldest = now - timedelta(seconds=self._settings.max_mark_age_seconds)
        stale = sorted(m.symbol for m in marks if m.symbol in symbols and m.quoted_at < oldest)
        if stale:
            raise RebalanceRefused(
                f"the newest quote for {', '.join(stale)} is older than "
                f"{self._settings.max_mark_age_seconds:g}s: no price to trade on"
            )

    async def _buy(
        self,
        rebalance: Rebalance,
        plan: RebalancePlan,
        cause: Message,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> None:
        skipped = describe_skipped(plan.skipped)
        if not plan.buys:
            rebalance.move_to(RebalancePhase.DONE, now, skipped)
            return
        rebalance.move_to(RebalancePhase.BUYING, now, skipped)
        await self._propose(rebalance, plan.buys, cause, repos, tx, now)

    async def _propose(
        self,
        rebalance: Rebalance,
        trades: Sequence[Trade],
        cause: Message,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> None:
        specs = [self._spec(rebalance, trade) for trade in trades]
        proposal_id = new_message_id()
        detail = f"rebalance {rebalance.rebalance_id} ({rebalance.phase})"
        sent = await self._placement.place(
            self._placement.prepare(specs, now),
            signal_id=rebalance.signal_id,
            proposal_id=proposal_id,
            cause=cause,
            repos=repos,
            tx=tx,
            now=now,
            detail=detail,
        )
        if sent:
            tx.publish(
                proposal(sent, proposal_id=proposal_id, signal_id=rebalance.signal_id, cause=cause)
            )
        log.info(
            "rebalance orders proposed",
            rebalance_id=rebalance.rebalance_id,
            phase=str(rebalance.phase),
            order_ids=[spec.order_id for spec in sent],
        )

    @staticmethod
    def _spec(rebalance: Rebalance, trade: Trade) -> OrderSpec:
        return OrderSpec(
            order_id=new_message_id(),
            account=rebalance.account,
            strategy=rebalance.strategy,
            venue=rebalance.venue,
            symbol=trade.symbol,
            side=trade.side,
            order_type=OrderType.MARKET,
            quantity=trade.quantity,
            reduce_only=trade.reduce_only,
            reference_price=trade.price,
        )
