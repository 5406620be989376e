"""The order state machine: one transition table, and nothing else decides a status change.

Statuses the OMS sets itself: INITIALIZED (created, waiting for the risk gate; or held by the OMS
until its trigger, when the venue lacks its type), DENIED (the risk gate said no), SUBMITTED
(approved; execution places it), PENDING_CANCEL / PENDING_UPDATE (we asked the venue to cancel /
amend), and CANCELED / EXPIRED for an order it holds. Every other status is the venue's word,
from an execution report.

Reports travel on a different stream (EXEC) from risk decisions (RISK) and may be redelivered or
overtake one another, so the table also holds the edges that the real world produces even though
a tidy venue never would. Each of those is marked "real world possibility" with the reason.
A report that implies a transition the table lacks is stale; :mod:`ordo.order.domain.order`
ignores its status (but still applies its fill, which is a fact about money).
"""

from collections.abc import Mapping
from types import MappingProxyType

from ordo.contracts.enums import OrderStatus
from ordo.order.domain.errors import InvalidTransition

_S = OrderStatus

_TABLE: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.INITIALIZED: frozenset(
        {
            _S.DENIED,
            _S.SUBMITTED,
            # Real world possibility: execution places the order as soon as it sees the approval
            # on the RISK stream; the venue's reports come back on the EXEC stream and may be
            # handled by the OMS before it has handled that same approval.
            _S.ACCEPTED,
            _S.REJECTED,
            _S.TRIGGERED,
            _S.PARTIALLY_FILLED,
            _S.FILLED,
            # Also the OMS's own doing for an order it holds (a stop the venue lacks, emulated:
            # see .emulation): canceled, or expired (GTD/DAY), before its trigger released it.
            # A held order stays INITIALIZED while held; its release proposes it to the risk
            # gate and it goes on to SUBMITTED like any other.
            _S.CANCELED,
            _S.EXPIRED,
        }
    ),
    _S.DENIED: frozenset(),  # never sent to a venue: nothing can follow
    _S.SUBMITTED: frozenset(
        {
            _S.ACCEPTED,
            _S.REJECTED,
            _S.PENDING_CANCEL,  # we may cancel before the venue has acknowledged the order
            # Real world possibility: a market or marketable limit order fills before (or
            # without) a separate acceptance report.
            _S.PARTIALLY_FILLED,
            _S.FILLED,
            # Real world possibility: an IOC/FOK or post-only order is killed on arrival; some
            # venues (Binance) report an unfilled IOC/FOK as EXPIRED rather than CANCELED.
            _S.CANCELED,
            _S.EXPIRED,
            # Real world possibility: a stop whose trigger price is already crossed triggers on
            # arrival, before any acceptance report.
            _S.TRIGGERED,
        }
    ),
    _S.ACCEPTED: frozenset(
        {
            _S.PARTIALLY_FILLED,
            _S.FILLED,
            _S.PENDING_CANCEL,
            _S.PENDING_UPDATE,
            _S.TRIGGERED,  # stop types: the trigger price was reached
            _S.EXPIRED,  # GTD/DAY reached its end
            # Real world possibility: canceled without our asking (self-trade prevention,
            # liquidation, someone using the venue's own UI).
            _S.CANCELED,
            # Real world possibility: a stop-limit was accepted, then its limit order was
            # refused when the stop triggered (e.g. a post-only limit that would cross).
            _S.REJECTED,
        }
    ),
    _S.TRIGGERED: frozenset(
        {
            _S.PARTIALLY_FILLED,
            _S.FILLED,
            _S.PENDING_CANCEL,
            _S.PENDING_UPDATE,
            _S.CANCELED,
            _S.EXPIRED,
            _S.REJECTED,  # the order released by the trigger was refused by the venue
        }
    ),
    _S.PENDING_UPDATE: frozenset(
        {
            # The venue answers an amendment with the order's new working state; a refused
            # amendment leaves the order working as it was, which reads the same way.
            _S.ACCEPTED,
            _S.TRIGGERED,
            _S.PARTIALLY_FILLED,
            _S.PENDING_CANCEL,  # a cancel may follow an amendment before its answer arrives
            # Real world possibility: the order filled, was canceled or expired while the
            # amendment was on its way.
            _S.FILLED,
            _S.CANCELED,
            _S.EXPIRED,
        }
    ),
    _S.PENDING_CANCEL: frozenset(
        {
            _S.CANCELED,
            # Real world possibility: a fill raced the cancel. After a partial fill the cancel
            # is still outstanding; its CANCELED report moves the order on from there.
            _S.PARTIALLY_FILLED,
            _S.FILLED,
            # Real world possibility: the order reached its expiry before the cancel did.
            _S.EXPIRED,
            # Deliberately absent: ACCEPTED / TRIGGERED. The contracts have no cancel-rejected
            # report, so a "still working" report arriving now is almost always one that was
            # sent before our cancel; it must not be taken as the cancel's answer. The order
            # stays PENDING_CANCEL until the venue reports its end or reconciliation does.
        }
    ),
    _S.PARTIALLY_FILLED: frozenset(
        {
            _S.FILLED,
            _S.PENDING_CANCEL,
            _S.PENDING_UPDATE,
            _S.CANCELED,  # canceled with the rest unfilled (ours, or the venue's own doing)
            _S.EXPIRED,  # IOC remainder, or GTD/DAY end, with the rest unfilled
        }
    ),
    _S.FILLED: frozenset(),  # complete: every later report is stale
    _S.CANCELED: frozenset(
        {
            # Real world possibility: a fill that raced the cancel (matched at the venue before
            # the cancel arrived, reported to us after it) completes the order. A fill that
            # raced it without completing the order leaves it CANCELED, with the fill recorded:
            # the order is not working again, so PARTIALLY_FILLED would be a lie.
            _S.FILLED,
        }
    ),
    _S.EXPIRED: frozenset(
        {
            # Real world possibility: as for CANCELED, a fill that raced the expiry.
            _S.FILLED,
        }
    ),
    _S.REJECTED: frozenset(),  # the venue never held it
}

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(_TABLE)
"""Every status the order may move to from each status. Self-loops are not transitions."""


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """The new status, or :class:`InvalidTransition` when the table has no such edge."""
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
    return target
