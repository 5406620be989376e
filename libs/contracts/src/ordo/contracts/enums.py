"""Enumerations shared by the contracts. Values are lowercase strings on the wire."""

from enum import StrEnum


class SignalSource(StrEnum):
    TRADINGVIEW = "tradingview"
    API = "api"
    STRATEGY = "strategy"
    OPERATOR = "operator"


class Intent(StrEnum):
    """What a signal asks for, independent of how the sender spelled it."""

    ENTER_LONG = "enter_long"
    ENTER_SHORT = "enter_short"
    ADD = "add"  # a pyramid: a further entry in the direction of the open position
    REDUCE = "reduce"
    EXIT_LONG = "exit_long"
    EXIT_SHORT = "exit_short"
    CLOSE_ALL = "close_all"
    REVERSE = "reverse"


class SizeUnit(StrEnum):
    QUANTITY = "quantity"  # units of the base asset
    QUOTE = "quote"  # notional in the quote currency
    PERCENT_EQUITY = "percent_equity"
    RISK = "risk"  # quote amount risked between entry and stop


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    DAY = "day"
    GTD = "gtd"


class OrderStatus(StrEnum):
    INITIALIZED = "initialized"
    DENIED = "denied"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TRIGGERED = "triggered"
    PENDING_UPDATE = "pending_update"
    PENDING_CANCEL = "pending_cancel"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        OrderStatus.DENIED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
    }
)


class ExecutionStatus(StrEnum):
    """The order status as the venue reports it."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TRIGGERED = "triggered"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"


class GroupStatus(StrEnum):
    """A position group's life: queued for a pool slot, trading, exiting, done."""

    WAITING = "waiting"
    LIVE = "live"
    CLOSING = "closing"
    CLOSED = "closed"


class GroupOrderRole(StrEnum):
    """What an order does for its position group."""

    BASE = "base"  # the first entry
    DCA = "dca"  # a limit order at a level of the grid
    PYRAMID = "pyramid"  # a further entry from an add signal
    TAKE_PROFIT_LEG = "take_profit_leg"  # one filled entry's own take-profit
    TAKE_PROFIT = "take_profit"  # the aggregate take-profit of the group
    STOP_LOSS = "stop_loss"
    CLOSE = "close"  # the reduce-only close of an exit signal


class TakeProfitMode(StrEnum):
    PER_LEG = "per_leg"  # each filled entry its own take-profit from its own fill
    AGGREGATE = "aggregate"  # one take-profit from the group's average entry
    HYBRID = "hybrid"  # per-leg take-profits on the DCA legs, an aggregate one for the rest


class SignalOutcome(StrEnum):
    """What the OMS made of an accepted signal. Every value but DENIED is recorded when the signal
    is handled; DENIED is read from its orders: the risk gate decides after the OMS has planned."""

    PLANNED = "planned"  # orders proposed to the risk gate
    UNPLANNABLE = "unplannable"  # no order could be made (no market rules, below the minimum...)
    REFUSED = "refused"  # the OMS refused it: the trading state, the pyramid limit...
    QUEUED = "queued"  # a position group's entry waiting for a pool slot
    DEQUEUED = "dequeued"  # a queued entry removed by an exit signal of its symbol
    DENIED = "denied"  # planned, but the risk gate denied every order


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that reduce exposure
    HALTED = "halted"  # nothing but cancels


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ReconciliationOutcome(StrEnum):
    CLEAN = "clean"
    DISCREPANCIES = "discrepancies"
    FAILED = "failed"


class DiscrepancyKind(StrEnum):
    MISSING_FILL = "missing_fill"
    UNKNOWN_VENUE_ORDER = "unknown_venue_order"
    ORDER_UNKNOWN_AT_VENUE = "order_unknown_at_venue"
    POSITION_MISMATCH = "position_mismatch"
    BALANCE_MISMATCH = "balance_mismatch"
