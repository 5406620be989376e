"""The order-rate window, shared by every replica: in Redis when configured, else in the store.

Both count approved orders in a sliding window per account and per strategy. The store's window
is read and written under the account's lock, so it is exact for all replicas that share the
database; Redis takes that load off the database. In Redis, an order is counted by admitting it
atomically (a Lua script checks every window and adds to all of them, or to none), because the
replicas' decisions on one account are serialised by the database, not by Redis. Order ids are the
members of the windows, so a decision retried after a failed transaction does not count twice.

When Redis fails, the store's window takes over, and it starts empty (Redis's members are out of
reach), as Redis does not hold what the store counted once it is back: for one window after
either switch, an account can be approved up to twice its rate. The rate limit is a throttle; the
exposure and notional limits, exact in the store, are what bound the risk.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.orders import OrderSpec
from ordo.contracts.risk import DenialReason
from ordo.kit.logs import get_logger
from ordo.risk import store
from ordo.risk.domain.checks import DenialCode, OrderCounts
from ordo.risk.domain.limits import AccountLimits

log = get_logger(__name__)

_KEY_PREFIX = "ordo:risk:rate"


class OrderRate(Protocol):
    async def recent(
        self,
        session: AsyncSession,
        orders: Sequence[OrderSpec],
        limits: AccountLimits,
        now: datetime,
    ) -> OrderCounts:
        """The orders approved within the window of the account of ``orders`` (one proposal's),
        in all and per strategy of theirs; ``orders`` themselves are not counted (a retry)."""
        ...

    async def admit(
        self,
        session: AsyncSession,
        orders: Sequence[OrderSpec],
        limits: AccountLimits,
        now: datetime,
    ) -> DenialReason | None:
        """Count approved orders; a denial when the window filled up meanwhile (Redis only)."""
        ...


def _window(limits: AccountLimits, account: str) -> timedelta | None:
    seconds = limits.limits_for(account).order_rate_window_seconds
    return None if seconds is None else timedelta(seconds=seconds)


class StoreOrderRate:
    """The window in the risk store, read and written under the account's lock."""

    async def recent(
        self,
        session: AsyncSession,
        orders: Sequence[OrderSpec],
        limits: AccountLimits,
        now: datetime,
    ) -> OrderCounts:
        # A retried decision's rows went with its rolled-back transaction: nothing to leave out.
        account = orders[0].account
        window = _window(limits, account)
        if window is None:
            return OrderCounts()
        await store.prune_recent_orders(session, account, now - window)
        return await store.count_recent_orders(session, account, now - window)

    async def admit(
        self,
        session: AsyncSession,
        orders: Sequence[OrderSpec],
        limits: AccountLimits,
        now: datetime,
    ) -> DenialReason | None:
        if orders and _window(limits, orders[0].account) is not None:
            await store.record_recent_orders(session, orders, now)
        return None


# KEYS: the windows. ARGV: now (ms), window (ms), then per key: its limit (-1: none), the number
# of members, the members. Either every window takes its members, or none does.
_ADMIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local at = 3
local plans = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[at])
  local count = tonumber(ARGV[at + 1])
  local members = {}
  for j = 1, count do members[j] = ARGV[at + 1 + j] end
  at = at + 2 + count
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local new = 0
  for _, member in ipairs(members) do
    if not redis.call('ZSCORE', key, member) then new = new + 1 end
  end
  local total = redis.call('ZCARD', key) + new
  if limit >= 0 and total > limit then return {i, total} end
  plans[i] = members
end
for i, key in ipairs(KEYS) do
  for _, member in ipairs(plans[i]) do redis.call('ZADD', key, now, member) end
  redis.call('PEXPIRE', key, window)
end
return {0, 0}
"""


# KEYS: the windows. ARGV: since (ms, exclusive), then per key: the number of members, the
# members. Counts each window, leaving out those members (a retried decision's own orders).
_COUNT = """
local since = tonumber(ARGV[1])
local at = 2
local counts = {}
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[at])
  local total = redis.call('ZCOUNT', key, '(' .. since, '+inf')
  for j = 1, count do
    local score = redis.call('ZSCORE', key, ARGV[at + j])
    if score and tonumber(score) > since then total = total - 1 end
  end
  at = at + 1 + count
  counts[i] = total
end
return counts
"""


@dataclass(frozen=True)
class _Window:
    key: str
    strategy: str | None
    limit: int | None
    members: list[str]


class RedisOrderRate:
    """The window in Redis, shared by every replica; the store's when Redis fails."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._admit = redis.register_script(_ADMIT)
        self._count = redis.register_script(_COUNT)
        self._fallback = StoreOrderRate()
        self._falling_back = False

    async def recent(
        self,
        session: AsyncSession,
        orders: Sequence[OrderSpec],
        limits: AccountLimits,
        now: datetime,
    ) -> OrderCounts:
        window = _window(limits, orders[0].account)
        if window is None:
            return OrderCounts()
        windows = _windows_of(orders, limits)
        args: list[str | int] = [_millis(now - window)]
        for w in windows:
            args += [len(w.members), *w.members]
        try:
            counts = await self._count(keys=[w.key for w in windows], args=args)
        except (RedisError, OSError) as error:
            return await self._fall_back(error).recent(session, orders, limits, now)
        self._recovered()
        total, *by_strategy = (int(count) for count in counts)
        strategies = [w.strategy for w in windows[1:] if w.strategy is not None]
        return OrderCounts(
            account=total, by_strategy=dict(zip(strategies, by_strategy, strict=True))
        )

    async def admit(
        self,
        session: AsyncSession,
        orders: Sequence[OrderSpec],
        limits: AccountLimits,
        now: datetime,
    ) -> DenialReason | None:
        if not orders:
            return None
        account = orders[0].account
        window = _window(limits, account)
        if window is None:
            return None
        windows = _windows_of(orders, limits)
        args: list[str | int] = [_millis(now), int(window.total_seconds() * 1000)]
        for w in windows:
            args += [-1 if w.limit is None else w.limit, len(w.members), *w.members]
        try:
            full, total = await self._admit(keys=[w.key for w in windows], args=args)
        except (RedisError, OSError) as error:
            return await self._fall_back(error).admit(session, orders, limits, now)
        self._recovered()
        if int(full) == 0:
            return None
        return _rate_denial(windows[int(full) - 1], int(total), orders)

    def _fall_back(self, error: BaseException) -> StoreOrderRate:
        if not self._falling_back:
            log.warning(
                "order rate counted in this replica's store: Redis is unavailable",
                error=repr(error),
            )
            self._falling_back = True
        return self._fallback

    def _recovered(self) -> None:
        if self._falling_back:
            log.info("order rate counted in Redis again")
            self._falling_back = False


def _windows_of(orders: Sequence[OrderSpec], limits: AccountLimits) -> list[_Window]:
    account = orders[0].account
    account_limits = limits.limits_for(account)
    strategy_limits = limits.strategy_limits_for(account)
    windows = [_Window(_key(account), None, account_limits.max_orders_per_account, [])]
    by_strategy: dict[str, _Window] = {}
    for order in orders:
        windows[0].members.append(order.order_id)
        if order.strategy not in by_strategy:
            limit = strategy_limits.get(order.strategy, account_limits).max_orders_per_strategy
            by_strategy[order.strategy] = _Window(
                _key(account, order.strategy), order.strategy, limit, []
            )
        by_strategy[order.strategy].members.append(order.order_id)
    return windows + list(by_strategy.values())


def _rate_denial(window: _Window, total: int, orders: Sequence[OrderSpec]) -> DenialReason:
    order = next(o for o in orders if window.strategy in (None, o.strategy))
    if window.strategy is None:
        code, who = DenialCode.ORDER_RATE_ACCOUNT, f"account {order.account}"
    else:
        code, who = DenialCode.ORDER_RATE_STRATEGY, f"strategy {window.strategy}"
    return DenialReason(
        code=code.value,
        message=f"{who} would have {total} orders in the window, counted by every replica, "
        f"above the limit of {window.limit}",
        order_id=order.order_id,
        limit=window.limit,
        actual=total,
    )


def _key(account: str, strategy: str | None = None) -> str:
    # The account in braces: a Redis Cluster keeps all of an account's windows in one slot, as the
    # script needs. Names may hold ':', so the strategy follows a '|', which no name contains.
    base = f"{_KEY_PREFIX}:{{{account}}}"
    return base if strategy is None else f"{base}|{strategy}"


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
