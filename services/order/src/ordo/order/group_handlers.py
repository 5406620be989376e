"""Position groups in the OMS: entry signals open groups (or queue them), fills keep their exits in
step, exits close them, and a closed group's slot goes to the next waiting group.

Called by :mod:`ordo.order.handlers` inside the same unit of work as the message it handles, so
what this module saves and publishes commits (or retries) together with it. New orders go to the
risk gate as one proposal (a grid passes or fails as a whole); cancels go straight to execution.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from ordo.contracts.enums import (
    GroupOrderRole,
    GroupStatus,
    Intent,
    OrderStatus,
    OrderType,
    Side,
    SignalOutcome,
    SizeUnit,
    TradingState,
)
from ordo.contracts.envelope import Message, new_message_id
from ordo.contracts.groups import (
    GroupLegView,
    GroupsView,
    GroupView,
    PoolView,
    QueryGroups,
    QueryQueue,
    QueueEntryView,
    QueueView,
)
from ordo.contracts.orders import CancelOrder, OrderProposed, OrderSpec
from ordo.contracts.risk import TradingStateChanged
from ordo.contracts.signals import SignalAccepted, SignalRequest
from ordo.contracts.subjects import Service
from ordo.kit.logs import get_logger
from ordo.kit.outbox import Transaction
from ordo.kit.store import Database
from ordo.order import group_store, store
from ordo.order.domain import InvalidTransition, MarketRules, Order, PlanningError
from ordo.order.domain.contingent import (
    ExitOrder,
    an_exit_filled,
    oco_cancels,
    plan_exits,
)
from ordo.order.domain.grid import EntryLeg, plan_entries
from ordo.order.domain.groups import GroupRefused, PositionGroup
from ordo.order.domain.marks import marked, totals
from ordo.order.domain.pool import Priority, WaitingEntry, release_order
from ordo.order.domain.sizing import entry_quantity, equity_of
from ordo.order.domain.strategy import ENTRY_ROLES, StrategyPlan
from ordo.order.group_store import (
    GroupRepository,
    LegRow,
    PoolRepository,
    TradingStateRepository,
)
from ordo.order.market_store import all_marks
from ordo.order.store import Repositories, SignalRecord

log = get_logger(__name__)

PRODUCER = str(Service.ORDER)
ZERO = Decimal(0)
HUNDRED = Decimal(100)

Settle = Callable[[Order, Repositories, Message, Transaction, datetime, str], Awaitable[None]]
"""Save an order and publish what it recorded (the OMS's ``_settle``)."""
RulesFor = Callable[[SignalRequest], MarketRules]
MarksOf = Callable[[Repositories, str], Awaitable[Mapping[str, Decimal]]]
"""(repos, venue) → symbol → its mark"""


class Placement(Protocol):
    """The OMS's order placement (market_handlers.OrderPlacement): venue checks, emulation."""

    def prepare(self, specs: Sequence[OrderSpec], now: datetime) -> list[OrderSpec]: ...

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
    ) -> list[OrderSpec]: ...


_ENTRIES = {Intent.ENTER_LONG: Side.BUY, Intent.ENTER_SHORT: Side.SELL}
_EXITS = {Intent.EXIT_LONG: Side.BUY, Intent.EXIT_SHORT: Side.SELL, Intent.CLOSE_ALL: None}
_ADDS_EXPOSURE = frozenset({Intent.ENTER_LONG, Intent.ENTER_SHORT, Intent.ADD, Intent.REVERSE})
# Orders the venue holds (or is about to): a cancel can reach them. An INITIALIZED order is
# still with the risk gate (cancelled once approved, see after_order_change), or held by the OMS
# for emulation (cancelled at once: Order.is_held).
_CANCELLABLE = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.TRIGGERED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_UPDATE,
    }
)


async def stored_marks(repos: Repositories, venue: str) -> Mapping[str, Decimal]:
    """The newest mark of each symbol at ``venue``, as the OMS keeps them from market.quote.v1."""
    found = await all_marks(repos.session, venue)
    return {symbol: mark.price for (_, symbol), mark in found.items()}


async def trading_refusal(request: SignalRequest, repos: Repositories) -> str | None:
    """Why the account's trading state refuses this signal, or None: HALTED and REDUCING take
    no new exposure (exits and cancels still pass; the risk gate decides on those)."""
    if request.intent not in _ADDS_EXPOSURE:
        return None
    state, why = await TradingStateRepository(repos.session).state_of(request.account)
    if state is TradingState.ACTIVE:
        return None
    taken = "nothing but exits and cancels" if state is TradingState.HALTED else "only exits"
    return f"account {request.account} is {state} ({why}): it takes {taken}, not {request.intent}"


class GroupManagement:
    """The OMS's position groups: one per strategy with a configured plan."""

    def __init__(
        self,
        strategies: Mapping[str, StrategyPlan],
        *,
        max_open_groups: Callable[[str], int],
        capital: Mapping[str, Decimal],
        settle: Settle,
        rules_for: RulesFor,
        marks_of: MarksOf = stored_marks,
    ) -> None:
        self._strategies = strategies
        self._max_open_groups = max_open_groups
        self._capital = capital
        self._settle = settle
        self._rules_for = rules_for
        self._marks_of = marks_of
        self._placement: Placement | None = None

    def use_placement(self, placement: Placement) -> None:
        """Place the groups' orders as the OMS places every order (see market_handlers)."""
        self._placement = placement

    def manages(self, strategy: str) -> bool:
        return strategy in self._strategies

    # --- signals ---------------------------------------------------------------------------------

    async def on_signal(
        self, signal: SignalAccepted, repos: Repositories, tx: Transaction, now: datetime
    ) -> bool:
        """Open, queue, add to or exit the signal's group, and record the signal's outcome.

        False for an exit or reduce that finds no group but an open position (one left by a fill
        that raced the close of its group, or opened before the strategy had a plan): the plain
        path closes it.
        """
        request = signal.signal
        closes = request.intent in _EXITS or request.intent is Intent.REDUCE
        if closes and await self._orphan_position(request, repos):
            return False
        try:
            if request.intent in _ENTRIES:
                await self._enter(signal, _ENTRIES[request.intent], repos, tx, now)
            elif request.intent is Intent.ADD:
                await self._pyramid(signal, repos, tx, now)
            elif request.intent in _EXITS:
                await self._exit(signal, _EXITS[request.intent], repos, tx, now)
            elif request.intent is Intent.REDUCE:
                await self._reduce(signal, repos, tx, now)
            else:
                raise GroupRefused(
                    f"{request.intent} does not apply to position groups (strategy "
                    f"{request.strategy}): exit the group, then enter the other way"
                )
        except GroupRefused as exc:
            await record_outcome(signal, SignalOutcome.REFUSED, repos, now, reason=str(exc))
            log.warning("signal refused", reason=str(exc), intent=request.intent.value)
        except PlanningError as exc:
            await record_outcome(signal, SignalOutcome.UNPLANNABLE, repos, now, reason=str(exc))
            log.warning("signal cannot be planned", reason=str(exc), intent=request.intent.value)
        return True

    @staticmethod
    async def _orphan_position(request: SignalRequest, repos: Repositories) -> bool:
        key = (request.account, request.strategy, request.venue, request.symbol)
        if await GroupRepository(repos.session).open_group_of(*key) is not None:
            return False
        position = await repos.positions.get(*key)
        return position is not None and not position.is_flat

    async def _enter(
        self,
        signal: SignalAccepted,
        side: Side,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> None:
        request = signal.signal
        groups = GroupRepository(repos.session)
        key = (request.account, request.strategy, request.venue, request.symbol)
        current = await groups.open_group_of(*key)
        if current is not None:
            raise GroupRefused(
                f"group {current.group_id} of {request.strategy} in {request.symbol} is "
                f"{current.status}: send add for a pyramid, or exit it first"
            )
        position = await repos.positions.get(*key)
        if position is not None and not position.is_flat:
            raise PlanningError(
                f"{request.symbol} has an open position of {position.quantity} for "
                f"{request.strategy} that belongs to no group: close it first"
            )
        # Planned now so that a signal that can never be planned is refused at once, not
        # after it waited; a waiting one is planned again from its signal when released.
        entries = await self._plan_entries(signal, side, repos)
        group = PositionGroup(
            group_id=new_message_id(),
            account=request.account,
            strategy=request.strategy,
            venue=request.venue,
            symbol=request.symbol,
            side=side,
            status=GroupStatus.WAITING,
            signal_id=signal.signal_id,
            stop_price=request.stop_price,
            created_at=now,
            updated_at=now,
            enqueued_at=now,
            queued_signal=signal.to_json().decode(),
        )
        pool = await PoolRepository(repos.session).claim(request.account, now=now)
        holders = await groups.slot_holders_of(request.account)
        if len(holders) >= self._max_open_groups(pool.account):
            group.reason = (
                f"the pool of {request.account} is full ({len(holders)} of "
                f"{self._max_open_groups(pool.account)} groups open)"
            )
            await groups.save(group)
            await record_outcome(signal, SignalOutcome.QUEUED, repos, now, reason=group.reason)
            log.info("group queued", group_id=group.group_id, reason=group.reason)
            return
        group.go_live(now)
        await groups.save(group)
        await self._propose_entries(signal, group, entries, repos, tx, now)

    async def _plan_entries(
        self, signal: SignalAccepted, side: Side, repos: Repositories
    ) -> list[EntryLeg]:
        request = signal.signal
        plan = self._strategies[request.strategy]
        rules = self._rules_for(request)
        unit, value = _size_of(request, plan)
        price = request.reference_price
        total = entry_quantity(
            unit,
            value,
            side=side,
            rules=rules,
            price=price,
            stop=_stop_for_sizing(request, plan, side),
            equity=await self.equity(request.account, repos),
        )
        return plan_entries(side, total, price, plan.grid, rules)

    async def equity(self, account: str, repos: Repositories) -> Decimal | None:
        """The account's equity for sizing by percent of equity; None without its capital."""
        capital = self._capital.get(account)
        if capital is None:
            return None
        realised, unrealised = await _pnl_of(repos, account)
        return equity_of(capital, realised, unrealised)

    async def _propose_entries(
        self,
        signal: SignalAccepted,
        group: PositionGroup,
        entries: list[EntryLeg],
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> None:
        specs = _entry_specs(group, entries, signal)
        proposal_id = await self._propose(group, specs, signal, repos, tx, now)
        await record_outcome(signal, SignalOutcome.PLANNED, repos, now, proposal_id=proposal_id)
        log.info(
            "group live",
            group_id=group.group_id,
            proposal_id=proposal_id,
            entries=[f"{e.role} {e.quantity} @ {e.limit_price or 'market'}" for e in entries],
        )

    async def _pyramid(
        self, signal: SignalAccepted, repos: Repositories, tx: Transaction, now: datetime
    ) -> None:
        request = signal.signal
        groups = GroupRepository(repos.session)
        group = await groups.open_group_of(
            request.account, request.strategy, request.venue, request.symbol
        )
        if group is None:
            raise GroupRefused(f"add: {request.strategy} has no group open in {request.symbol}")
        plan = self._strategies[request.strategy]
        group.add_pyramid(plan.max_pyramids, now)
        rules = self._rules_for(request)
        unit, value = _size_of(request, plan)
        quantity = entry_quantity(
            unit,
            value,
            side=group.side,
            rules=rules,
            price=request.reference_price,
            stop=_stop_for_sizing(request, plan, group.side),
            equity=await self.equity(request.account, repos),
        )
        problem = rules.violation(quantity, request.reference_price)
        if problem is not None:
            raise PlanningError(f"the pyramid is too small to send: {problem}")
        spec = _spec(group, group.side, OrderType.MARKET, quantity, request.reference_price)
        await groups.save(group)
        proposal_id = await self._propose(
            group, [(spec, GroupOrderRole.PYRAMID, None)], signal, repos, tx, now
        )
        await record_outcome(signal, SignalOutcome.PLANNED, repos, now, proposal_id=proposal_id)

    async def _reduce(
        self, signal: SignalAccepted, repos: Repositories, tx: Transaction, now: datetime
    ) -> None:
        """A reduce-only market order for part of a live group; its exits follow on the fill."""
        request = signal.signal
        group = await GroupRepository(repos.session).open_group_of(
            request.account, request.strategy, request.venue, request.symbol
        )
        if group is None or group.status is not GroupStatus.LIVE:
            state = "no group" if group is None else f"a {group.status} group"
            raise GroupRefused(f"reduce: {request.strategy} has {state} in {request.symbol}")
        if request.size is None:
            raise PlanningError("reduce needs a size; send an exit to close the whole group")
        rules = self._rules_for(request)
        wanted = request.size.value
        if request.size.unit is SizeUnit.QUOTE and request.reference_price is not None:
            wanted = request.size.value / request.reference_price
        elif request.size.unit is not SizeUnit.QUANTITY:
            raise PlanningError(
                f"a reduce is sized by quantity or quote amount, not {request.size.unit}"
            )
        quantity = rules.floor_quantity(min(wanted, await self._open_quantity(group, repos)))
        problem = rules.violation(quantity, request.reference_price)
        if problem is not None:
            raise PlanningError(f"the reduce is too small to send: {problem}")
        spec = _spec(
            group,
            group.side.opposite,
            OrderType.MARKET,
            quantity,
            request.reference_price or await self._mark_of(group, repos),
            reduce_only=True,
        )
        proposal_id = await self._propose(
            group, [(spec, GroupOrderRole.CLOSE, None)], signal, repos, tx, now
        )
        await record_outcome(signal, SignalOutcome.PLANNED, repos, now, proposal_id=proposal_id)

    async def _exit(
        self,
        signal: SignalAccepted,
        direction: Side | None,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> None:
        request = signal.signal
        groups = GroupRepository(repos.session)
        group = await groups.open_group_of(
            request.account, request.strategy, request.venue, request.symbol
        )
        if group is None:
            raise GroupRefused(
                f"{request.intent}: {request.strategy} has no group in {request.symbol}"
            )
        if direction is not None and group.side is not direction:
            raise GroupRefused(
                f"{request.intent}: the group {group.group_id} in {request.symbol} is "
                f"{'long' if group.side is Side.BUY else 'short'}"
            )
        reason = f"exit signal {signal.signal_id}"
        if group.status is GroupStatus.WAITING:
            group.close(f"removed from the queue by {reason}", now)
            await groups.save(group)
            await record_outcome(signal, SignalOutcome.DEQUEUED, repos, now, reason=group.reason)
            log.info("waiting group removed from the queue", group_id=group.group_id)
            return
        if group.status is GroupStatus.LIVE:
            group.start_closing(reason, now)
            await groups.save(group)
        # A closing group takes the exit again: whatever its first close left (a denied close,
        # a fill that raced the cancels) is closed now.
        proposal_id = await self._close_group(
            group, signal, repos, tx, now, price=request.reference_price
        )
        await record_outcome(signal, SignalOutcome.PLANNED, repos, now, proposal_id=proposal_id)
        await self._close_if_done(group, signal, repos, tx, now)

    async def _close_group(
        self,
        group: PositionGroup,
        cause: Message,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
        *,
        price: Decimal | None,
    ) -> str | None:
        """Cancel the group's working orders, then close what is open with a reduce-only market
        order valued at ``price`` (else the symbol's mark); the proposal id of the close, if one
        was needed."""
        legs = await group_store.legs_of(repos.session, group.group_id)
        await self._cancel(
            [row.leg.order_id for row in legs if row.leg.role is not GroupOrderRole.CLOSE],
            f"group {group.group_id} is closing ({group.reason})",
            repos,
            cause,
            tx,
            now,
        )
        held = await self._open_quantity(group, repos)
        closing = sum(
            (
                row.leg.remaining
                for row in legs
                if row.leg.role is GroupOrderRole.CLOSE and row.leg.is_open
            ),
            ZERO,
        )
        rules = self._rules_for_group(group)
        quantity = rules.floor_quantity(held - closing)
        if quantity <= ZERO:
            return None
        group.claim(now)
        await GroupRepository(repos.session).save(group)
        reference = price or await self._mark_of(group, repos)
        spec = _spec(
            group, group.side.opposite, OrderType.MARKET, quantity, reference, reduce_only=True
        )
        return await self._propose(
            group, [(spec, GroupOrderRole.CLOSE, None)], cause, repos, tx, now
        )

    # --- orders of a group change ----------------------------------------------------------------

    async def after_order_change(
        self,
        order: Order,
        *,
        filled: bool,
        repos: Repositories,
        cause: Message,
        tx: Transaction,
        now: datetime,
    ) -> None:
        """Move the order's group on: exits in step after a fill, OCO once flat, then CLOSED."""
        groups = GroupRepository(repos.session)
        membership = await groups.group_order(order.order_id)
        if membership is None:
            return
        group = await self._open_group(membership.group_id, order, filled, groups)
        if group is None:
            return
        if order.status.is_terminal:
            # Every ending of one of its orders is a new version of the group: two replicas
            # ending its last two orders at once cannot both see "one still open" and leave it
            # unclosed; one of them fails its save and runs again on fresh state.
            group.claim(now)
            await groups.save(group)
        legs = await group_store.legs_of(repos.session, group.group_id)
        held = await self._open_quantity(group, repos)
        if group.status is GroupStatus.CLOSING:
            await self._keep_closing(
                group,
                legs,
                membership.role,
                filled,
                order.average_fill_price,
                repos,
                cause,
                tx,
                now,
            )
        elif held == ZERO and an_exit_filled([row.leg for row in legs]):
            group.start_closing(f"{membership.role} {order.order_id} filled", now)
            await groups.save(group)
            await self._cancel(
                list(oco_cancels([row.leg for row in legs])),
                f"one-cancels-the-other: {membership.role} {order.order_id} of group "
                f"{group.group_id} filled",
                repos,
                cause,
                tx,
                now,
            )
        elif filled or (
            membership.role not in ENTRY_ROLES and order.status is OrderStatus.SUBMITTED
        ):
            # A fill moves the open quantity and the average entry; an approved exit may have
            # been superseded while it waited for the risk gate.
            await self._sync_exits(group, legs, held, repos, cause, tx, now)
        await self._close_if_done(group, cause, repos, tx, now)

    @staticmethod
    async def _open_group(
        group_id: str, order: Order, filled: bool, groups: GroupRepository
    ) -> PositionGroup | None:
        """The order's group, unless it is closed (or gone)."""
        group = await groups.get(group_id)
        if group is not None and group.status is GroupStatus.CLOSED:
            if filled:
                # A fill that raced its cancel after the group closed: the position moved with
                # no group to manage it. An exit signal closes it on the plain path.
                log.error(
                    "fill for an order of a closed group; the position is left to the desk",
                    group_id=group.group_id,
                    order_id=order.order_id,
                )
            return None
        return group

    async def _keep_closing(
        self,
        group: PositionGroup,
        legs: list[LegRow],
        role: GroupOrderRole,
        filled: bool,
        fill_price: Decimal | None,
        repos: Repositories,
        cause: Message,
        tx: Transaction,
        now: datetime,
    ) -> None:
        # An order approved after the group began closing (it was with the risk gate when the
        # exit came) is cancelled now; an entry fill that raced the cancels is closed too.
        late = [
            row.leg.order_id
            for row in legs
            if row.leg.role is not GroupOrderRole.CLOSE and row.leg.is_open
        ]
        await self._cancel(late, f"group {group.group_id} is closing", repos, cause, tx, now)
        if filled and role in ENTRY_ROLES:
            await self._close_group(group, cause, repos, tx, now, price=fill_price)

    async def _sync_exits(
        self,
        group: PositionGroup,
        legs: list[LegRow],
        held: Decimal,
        repos: Repositories,
        cause: Message,
        tx: Transaction,
        now: datetime,
    ) -> None:
        position = await repos.positions.get(*group.key)
        plan = plan_exits(
            group.side,
            held,
            position.average_entry if position is not None else None,
            [row.leg for row in legs],
            self._strategies[group.strategy],
            self._rules_for_group(group),
            stop_price=group.stop_price,
        )
        for skipped in plan.skipped:
            log.warning("exit not placed", group_id=group.group_id, reason=skipped)
        if plan.is_empty:
            return
        group.claim(now)
        await GroupRepository(repos.session).save(group)
        await self._cancel(
            list(plan.cancel), f"re-placed for group {group.group_id}", repos, cause, tx, now
        )
        if plan.place:
            exits = [
                (self._exit_spec(group, exit_order), exit_order.role, exit_order.parent_order_id)
                for exit_order in plan.place
            ]
            await self._propose(group, exits, cause, repos, tx, now)
        log.info(
            "group exits in step",
            group_id=group.group_id,
            cancelled=list(plan.cancel),
            placed=[f"{e.role} {e.quantity} @ {e.limit_price or e.stop_price}" for e in plan.place],
        )

    @staticmethod
    def _exit_spec(group: PositionGroup, exit_order: ExitOrder) -> OrderSpec:
        return _spec(
            group,
            group.side.opposite,
            exit_order.order_type,
            exit_order.quantity,
            exit_order.limit_price or exit_order.stop_price,
            reduce_only=True,
            limit_price=exit_order.limit_price,
            stop_price=exit_order.stop_price,
        )

    async def _close_if_done(
        self,
        group: PositionGroup,
        cause: Message,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> None:
        """A group at zero quantity with no open orders is CLOSED, and its slot goes on."""
        if group.status not in (GroupStatus.LIVE, GroupStatus.CLOSING):
            return
        legs = await group_store.legs_of(repos.session, group.group_id)
        if any(row.leg.is_open for row in legs) or await self._open_quantity(group, repos) != ZERO:
            return
        if group.status is GroupStatus.LIVE:
            reason = "its entries ended without a fill (denied, rejected or cancelled)"
        else:
            reason = group.reason or "closed"
        group.close(reason, now)
        await GroupRepository(repos.session).save(group)
        log.info("group closed", group_id=group.group_id, reason=reason)
        await PoolRepository(repos.session).claim(
            group.account, closed_symbol=group.symbol, now=now
        )
        await self.release(group.account, cause, repos, tx, now)

    # --- the pool --------------------------------------------------------------------------------

    async def release(
        self, account: str, cause: Message, repos: Repositories, tx: Transaction, now: datetime
    ) -> None:
        """Give the account's free slots to its waiting groups, by priority. Nothing is released
        while the account is not ACTIVE: the risk gate would deny the entries anyway."""
        state, _ = await TradingStateRepository(repos.session).state_of(account)
        if state is not TradingState.ACTIVE:
            return
        groups = GroupRepository(repos.session)
        waiting = await groups.waiting_of(account)
        if not waiting:
            return
        pool = await PoolRepository(repos.session).claim(account, now=now)
        holders = await groups.slot_holders_of(account)
        free = self._max_open_groups(account) - len(holders)
        ranked = await _ranked(waiting, holders, pool.last_closed_symbol, repos, self._marks_of)
        by_id = {group.group_id: group for group in waiting}
        for entry, priority in ranked:
            if free <= 0:
                return
            if await self._go_live(by_id[entry.group_id], priority.why, cause, repos, tx, now):
                free -= 1

    async def _go_live(
        self,
        group: PositionGroup,
        why: str,
        cause: Message,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> bool:
        assert group.queued_signal is not None  # a waiting group keeps its entry signal
        signal = SignalAccepted.from_json(group.queued_signal)
        groups = GroupRepository(repos.session)
        try:
            entries = await self._plan_entries(signal, group.side, repos)
        except PlanningError as exc:
            group.close(f"its entry could not be planned when released: {exc}", now)
            await groups.save(group)
            await repos.signals.dequeued(signal.signal_id, SignalOutcome.UNPLANNABLE, group.reason)
            return False
        group.go_live(now)
        group.reason = f"released from the queue: {why}"
        await groups.save(group)
        proposal_id = await self._propose(
            group, _entry_specs(group, entries, signal), signal, repos, tx, now
        )
        await repos.signals.dequeued(signal.signal_id, SignalOutcome.PLANNED, None, proposal_id)
        log.info("waiting group released", group_id=group.group_id, why=why)
        return True

    async def on_trading_state(self, changed: TradingStateChanged, tx: Transaction) -> None:
        repos = Repositories(tx.session)
        kept = await TradingStateRepository(repos.session).record(
            changed.account, changed.state, changed.reason, changed.actor, changed.occurred_at
        )
        log.info("trading state", account=changed.account, state=changed.state.value, kept=kept)
        if kept and changed.state is TradingState.ACTIVE:
            await self.release(changed.account, changed, repos, tx, changed.occurred_at)

    # --- helpers ---------------------------------------------------------------------------------

    async def _propose(
        self,
        group: PositionGroup,
        specs: list[tuple[OrderSpec, GroupOrderRole, str | None]],
        cause: Message,
        repos: Repositories,
        tx: Transaction,
        now: datetime,
    ) -> str:
        """One proposal for all ``specs``: it passes or fails at the risk gate as a whole.

        With the OMS's order placement, an order of a type the venue lacks (a stop-loss on a
        venue without stops) is held and emulated instead of proposed now.
        """
        proposal_id = new_message_id()
        groups = GroupRepository(repos.session)
        detail = f"group {group.group_id}: " + ", ".join(str(role) for _, role, _ in specs)
        for spec, role, parent in specs:
            await groups.add_order(group.group_id, spec.order_id, role, parent)
        orders = [spec for spec, _, _ in specs]
        if self._placement is not None:
            orders = await self._placement.place(
                self._placement.prepare(orders, now),
                signal_id=group.signal_id,
                proposal_id=proposal_id,
                cause=cause,
                repos=repos,
                tx=tx,
                now=now,
                detail=detail,
            )
        else:
            for spec in orders:
                order = Order.new(spec, group.signal_id, proposal_id, now)
                await self._settle(order, repos, cause, tx, now, detail)
        if orders:
            tx.publish(
                OrderProposed.caused_by(
                    cause,
                    producer=PRODUCER,
                    proposal_id=proposal_id,
                    signal_id=group.signal_id,
                    account=group.account,
                    orders=tuple(orders),
                )
            )
        return proposal_id

    async def _cancel(
        self,
        order_ids: list[str],
        reason: str,
        repos: Repositories,
        cause: Message,
        tx: Transaction,
        now: datetime,
    ) -> None:
        """Cancel those of ``order_ids`` that can be: an order the OMS holds (emulated, not yet
        triggered) ends here and now, with no cancel to a venue that never saw it; one at its
        venue is asked to cancel. Orders still with the risk gate are cancelled once approved
        (see _keep_closing)."""
        for order_id in order_ids:
            order = await repos.orders.get(order_id)
            if order is None or not (order.is_held or order.status in _CANCELLABLE):
                continue
            held = order.is_held
            try:
                changed = order.request_cancel(reason, now)
            except InvalidTransition:
                continue
            if not changed:
                continue
            await self._settle(order, repos, cause, tx, now, reason)
            if held:
                continue
            tx.publish(
                CancelOrder.caused_by(
                    cause,
                    producer=PRODUCER,
                    order_id=order.order_id,
                    account=order.account,
                    venue=order.venue,
                    symbol=order.symbol,
                    venue_order_id=order.venue_order_id,
                    reason=reason,
                )
            )

    async def _mark_of(self, group: PositionGroup, repos: Repositories) -> Decimal | None:
        """The symbol's last quoted price: what a market order is valued at without a signal's
        reference price (a real quote or nothing, never a made-up price)."""
        return (await self._marks_of(repos, group.venue)).get(group.symbol)

    async def _open_quantity(self, group: PositionGroup, repos: Repositories) -> Decimal:
        position = await repos.positions.get(*group.key)
        return abs(position.quantity) if position is not None else ZERO

    def _rules_for_group(self, group: PositionGroup) -> MarketRules:
        return self._rules_for(
            SignalRequest(
                account=group.account,
                strategy=group.strategy,
                venue=group.venue,
                symbol=group.symbol,
                intent=Intent.CLOSE_ALL,
            )
        )


# --- queries -----------------------------------------------------------------------------------


class GroupQueries:
    """``query.groups.v1`` and ``query.queue.v1`` (read-only)."""

    def __init__(
        self,
        db: Database,
        strategies: Mapping[str, StrategyPlan],
        max_open_groups: Callable[[str], int],
        marks_of: MarksOf = stored_marks,
    ) -> None:
        self._db = db
        self._strategies = strategies
        self._max_open_groups = max_open_groups
        self._marks_of = marks_of

    async def groups(self, query: QueryGroups) -> GroupsView:
        async with self._db.session() as session:
            found = await group_store.find_groups(
                session,
                account=query.account,
                status=query.status,
                symbol=query.symbol,
                limit=query.limit,
            )
            repos = Repositories(session)
            views = [await self._view(group, repos) for group in found]
        return GroupsView.caused_by(query, producer=PRODUCER, groups=tuple(views))

    async def _view(self, group: PositionGroup, repos: Repositories) -> GroupView:
        legs = await group_store.legs_of(repos.session, group.group_id)
        position = await repos.positions.get(*group.key) if group.is_open else None
        plan = self._strategies.get(group.strategy)
        return GroupView(
            group_id=group.group_id,
            account=group.account,
            strategy=group.strategy,
            venue=group.venue,
            symbol=group.symbol,
            side=group.side,
            status=group.status,
            signal_id=group.signal_id,
            quantity=position.quantity if position is not None else ZERO,
            average_entry=position.average_entry if position is not None else None,
            pyramids=group.pyramids,
            max_pyramids=plan.max_pyramids if plan is not None else 0,
            take_profit_mode=plan.take_profit.mode if plan and plan.take_profit else None,
            legs=tuple(_leg_view(row) for row in legs),
            reason=group.reason,
            created_at=group.created_at,
            updated_at=group.updated_at,
            closed_at=group.closed_at,
        )

    async def queue(self, query: QueryQueue) -> QueueView:
        async with self._db.session() as session:
            repos = Repositories(session)
            accounts = (
                [query.account]
                if query.account
                else await group_store.accounts_with_groups(session)
            )
            last_closed = await group_store.last_closed_symbols(session)
            pools, entries = [], []
            for account in accounts:
                groups = GroupRepository(session)
                waiting = await groups.waiting_of(account)
                holders = await groups.slot_holders_of(account)
                state, _ = await TradingStateRepository(session).state_of(account)
                pools.append(
                    PoolView(
                        account=account,
                        open_groups=len(holders),
                        max_open_groups=self._max_open_groups(account),
                        waiting=len(waiting),
                        trading_state=state,
                    )
                )
                if not waiting:
                    continue
                ranked = await _ranked(
                    waiting, holders, last_closed.get(account), repos, self._marks_of
                )
                by_id = {group.group_id: group for group in waiting}
                for rank, (entry, priority) in enumerate(ranked, start=1):
                    group = by_id[entry.group_id]
                    entries.append(
                        QueueEntryView(
                            rank=rank,
                            group_id=group.group_id,
                            signal_id=group.signal_id,
                            account=group.account,
                            strategy=group.strategy,
                            venue=group.venue,
                            symbol=group.symbol,
                            side=group.side,
                            tier=priority.tier,
                            why=priority.why,
                            loss_percent=priority.loss_percent,
                            enqueued_at=entry.enqueued_at,
                        )
                    )
        return QueueView.caused_by(
            query, producer=PRODUCER, pools=tuple(pools), entries=tuple(entries)
        )


# --- module helpers ----------------------------------------------------------------------------


async def record_outcome(
    signal: SignalAccepted,
    outcome: SignalOutcome,
    repos: Repositories,
    now: datetime,
    *,
    reason: str | None = None,
    proposal_id: str | None = None,
) -> None:
    request = signal.signal
    await repos.signals.add(
        SignalRecord(
            signal_id=signal.signal_id,
            outcome=outcome,
            account=request.account,
            strategy=request.strategy,
            venue=request.venue,
            symbol=request.symbol,
            intent=request.intent,
            recorded_at=now,
            proposal_id=proposal_id,
            reason=reason,
        )
    )


async def _pnl_of(repos: Repositories, account: str) -> tuple[Decimal, Decimal]:
    """The account's realised P&L (after fees), and its unrealised P&L at the marks it has: a
    position without a mark adds nothing, rather than a value at a made-up price."""
    found = await store.find_positions(repos.session, account=account, include_flat=True)
    marks = await all_marks(repos.session)
    for total in totals(marked(position, marks) for position in found):
        if total.strategy is None:  # the account's own total
            return total.realised_pnl, total.unrealised_pnl
    return ZERO, ZERO


def _size_of(request: SignalRequest, plan: StrategyPlan) -> tuple[SizeUnit, Decimal]:
    if request.size is not None:
        return request.size.unit, request.size.value
    if plan.default_size is not None:
        return plan.default_size
    raise PlanningError(
        f"{request.intent} needs a size: the signal has none and strategy {request.strategy} "
        "configures no sizing"
    )


def _stop_for_sizing(request: SignalRequest, plan: StrategyPlan, side: Side) -> Decimal | None:
    if request.stop_price is not None:
        return request.stop_price
    if plan.stop_loss_percent is None or request.reference_price is None:
        return None
    return request.reference_price * (1 - side.sign * plan.stop_loss_percent / HUNDRED)


def _spec(
    group: PositionGroup,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    reference_price: Decimal | None,
    *,
    reduce_only: bool = False,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
) -> OrderSpec:
    return OrderSpec(
        order_id=new_message_id(),
        account=group.account,
        strategy=group.strategy,
        venue=group.venue,
        symbol=group.symbol,
        side=side,
        order_type=order_type,
        quantity=quantity,
        limit_price=limit_price,
        stop_price=stop_price,
        reduce_only=reduce_only,
        reference_price=reference_price,
    )


def _entry_specs(
    group: PositionGroup, entries: list[EntryLeg], signal: SignalAccepted
) -> list[tuple[OrderSpec, GroupOrderRole, str | None]]:
    return [
        (
            _spec(
                group,
                group.side,
                entry.order_type,
                entry.quantity,
                entry.limit_price or signal.signal.reference_price,
                limit_price=entry.limit_price,
            ),
            entry.role,
            None,
        )
        for entry in entries
    ]


async def _ranked(
    waiting: Sequence[PositionGroup],
    holders: Sequence[PositionGroup],
    last_closed_symbol: str | None,
    repos: Repositories,
    marks_of: MarksOf,
) -> list[tuple[WaitingEntry, Priority]]:
    """An account's waiting groups in the order the pool releases them, each with why; marks
    from each waiting group's own venue."""
    marks: dict[tuple[str, str], Decimal] = {}
    for venue in sorted({group.venue for group in waiting}):
        found = await marks_of(repos, venue)
        marks.update(((venue, symbol), price) for symbol, price in found.items())
    return release_order(
        [_waiting_entry(group) for group in waiting],
        live=frozenset((group.symbol, group.side) for group in holders),
        marks=marks,
        last_closed_symbol=last_closed_symbol,
    )


def _waiting_entry(group: PositionGroup) -> WaitingEntry:
    reference = None
    if group.queued_signal is not None:
        reference = SignalAccepted.from_json(group.queued_signal).signal.reference_price
    return WaitingEntry(
        group_id=group.group_id,
        strategy=group.strategy,
        venue=group.venue,
        symbol=group.symbol,
        side=group.side,
        reference_price=reference,
        enqueued_at=group.enqueued_at or group.created_at,
    )


def _leg_view(row: LegRow) -> GroupLegView:
    leg = row.leg
    return GroupLegView(
        order_id=leg.order_id,
        role=leg.role,
        side=row.side,
        order_type=row.order_type,
        quantity=leg.quantity,
        limit_price=leg.limit_price,
        stop_price=leg.stop_price,
        status=leg.status,
        filled_quantity=leg.filled_quantity,
        parent_order_id=leg.parent_order_id,
    )
