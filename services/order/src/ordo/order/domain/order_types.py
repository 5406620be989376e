"""Which orders make sense, and which of them a venue takes as they are.

:func:`check_spec` refuses the combinations of type, time in force and flags that no venue could
honour, each with a message that says what to change (the rules are the contracts'
:mod:`ordo.contracts.order_terms`, which the signal service applies at intake too).
:class:`VenueCapabilities` says what one venue supports natively; :func:`prepare` turns a valid
spec into what the OMS sends:

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
from ordo.contracts.order_terms import STOP_TYPES, describe, terms_problem
from ordo.contracts.orders import OrderSpec
from ordo.order.domain.errors import InvalidOrderSpec

EMULABLE = STOP_TYPES
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
    problem = terms_problem(spec, now)
    if problem is not None:
        raise InvalidOrderSpec(f"order {spec.order_id} ({describe(spec)}): {problem}")


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
