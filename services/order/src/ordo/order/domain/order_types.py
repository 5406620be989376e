"""Which orders make sense, and which of them a venue takes as they are.

:func:`check_spec` refuses the combinations of type, time in force and flags that no venue could
honour, each with a message that says what to change. :class:`VenueCapabilities` says what one
venue supports natively; :func:`prepare` turns a valid spec into what the OMS sends:

- a type the venue lacks (stop, stop-limit, trailing stop) is *emulated*: the OMS holds the order
  and releases it as a market or limit order when the quotes trigger it (:mod:`.emulation`);
- DAY expires at the venue's session close. A venue without one (every crypto venue trades around
  the clock) refuses DAY, by this explicit rule, rather than guessing what "the day" means there:
  use GTC, or GTD with an expiry time. With a session close, the OMS writes the close into the
  order's ``expire_at``, so that a DAY order is a GTD order with a computed expiry from then on.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from ordo.contracts.enums import OrderType, TimeInForce
from ordo.contracts.orders import OrderSpec
from ordo.order.domain.errors import InvalidOrderSpec

_STOPS = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})
# Types that rest until a trigger, so a time in force that only lives at arrival cannot apply.
_IMMEDIATE = frozenset({TimeInForce.IOC, TimeInForce.FOK})
# Orders that take liquidity when they trade: post-only (maker only) contradicts them.
_TAKERS = frozenset({OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TRAILING_STOP})
EMULABLE = _STOPS
"""The types the OMS can hold and release itself."""


@dataclass(frozen=True)
class VenueCapabilities:
    """What one venue takes natively. ``session_close`` is in UTC; None: no session (crypto)."""

    order_types: frozenset[OrderType] = field(default_factory=lambda: frozenset(OrderType))
    session_close: time | None = None

    def emulates(self, order_type: OrderType) -> bool:
        """True when the OMS must hold an order of this type and release it when triggered."""
        return order_type not in self.order_types


def check_spec(spec: OrderSpec, now: datetime) -> None:
    """Refuse an impossible combination with :class:`InvalidOrderSpec`; None when it makes sense."""
    problem = _price_problem(spec) or _time_in_force_problem(spec, now) or _flag_problem(spec)
    if problem is not None:
        raise InvalidOrderSpec(f"order {spec.order_id} ({_describe(spec)}): {problem}")


def prepare(spec: OrderSpec, venue: VenueCapabilities, now: datetime) -> OrderSpec:
    """``spec`` checked, with a DAY order's expiry set to its venue's next session close."""
    check_spec(spec, now)
    if venue.emulates(spec.order_type) and spec.order_type not in EMULABLE:
        raise InvalidOrderSpec(
            f"order {spec.order_id}: venue {spec.venue} does not take {spec.order_type} orders "
            "and the OMS cannot emulate them"
        )
    if spec.time_in_force is not TimeInForce.DAY:
        return spec
    if venue.session_close is None:
        raise InvalidOrderSpec(
            f"order {spec.order_id}: a DAY order expires at the venue's session close, and "
            f"{spec.venue} has none (it trades around the clock): use GTC, or GTD with expire_at"
        )
    return spec.model_copy(update={"expire_at": next_session_close(now, venue.session_close)})


def next_session_close(now: datetime, close: time) -> datetime:
    """The first session close (UTC) after ``now``: today's, or tomorrow's once today's passed."""
    today = datetime.combine(now.astimezone(UTC).date(), close, tzinfo=UTC)
    return today if today > now else today + timedelta(days=1)


def _describe(spec: OrderSpec) -> str:
    return f"{spec.order_type} {spec.time_in_force.upper()}"


def _price_problem(spec: OrderSpec) -> str | None:
    trailing = spec.trailing_amount is not None or spec.trailing_percent is not None
    if spec.order_type is OrderType.TRAILING_STOP:
        if (spec.trailing_amount is None) == (spec.trailing_percent is None):
            return "a trailing stop needs a trailing_amount or a trailing_percent (one of them)"
        if spec.stop_price is not None or spec.limit_price is not None:
            return "a trailing stop's stop follows the price: it takes no stop_price or limit_price"
        return None
    if trailing:
        return "trailing_amount and trailing_percent are for trailing stops only"
    if spec.order_type is OrderType.MARKET and spec.limit_price is not None:
        return "a market order takes no limit_price (use a limit order)"
    if spec.order_type in (OrderType.MARKET, OrderType.LIMIT) and spec.stop_price is not None:
        return "only stop orders take a stop_price"
    if spec.order_type is OrderType.STOP_MARKET and spec.limit_price is not None:
        return "a stop-market order takes no limit_price (use a stop-limit order)"
    return None


def _time_in_force_problem(spec: OrderSpec, now: datetime) -> str | None:
    tif = spec.time_in_force
    if tif in _IMMEDIATE and spec.order_type in _STOPS:
        return f"{tif.upper()} lives only at arrival, and a stop order waits for its trigger"
    if spec.order_type is OrderType.MARKET and tif in (TimeInForce.DAY, TimeInForce.GTD):
        return f"a market order trades at once: {tif.upper()} has nothing to expire"
    if tif is TimeInForce.GTD:
        if spec.expire_at is None:
            return "a GTD order needs expire_at"
        if spec.expire_at <= now:
            return f"expire_at {spec.expire_at.isoformat()} has already passed"
    return None


def _flag_problem(spec: OrderSpec) -> str | None:
    if not spec.post_only:
        return None
    if spec.order_type in _TAKERS:
        return "post-only orders only add liquidity, and this type takes it when it trades"
    if spec.time_in_force in _IMMEDIATE:
        return f"a post-only order must rest, and {spec.time_in_force.upper()} never rests"
    return None
