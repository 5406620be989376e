"""What to report about an order, given what the venue says and what was reported before.

Pure: the handlers turn each draft into an ``ExecutionReport`` in the flow that caused it. The
same venue order may be looked at many times (after a create, a cancel, a timeout, every match
round); each fill is reported once and each status change once, so looking again is harmless.
"""

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ordo.contracts.enums import ExecutionStatus
from ordo.contracts.execution import Fill
from ordo.execution.venues.base import VenueOrder

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ReportDraft:
    """The order-specific part of one execution report (the envelope is the handler's)."""

    status: ExecutionStatus
    cumulative_quantity: Decimal
    average_price: Decimal | None = None
    fill: Fill | None = None
    reason: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "cumulative_quantity": self.cumulative_quantity,
            "average_price": self.average_price,
            "fill": self.fill,
            "reason": self.reason,
        }


def reports_due(
    order: VenueOrder,
    *,
    last_status: ExecutionStatus | None,
    reported_fill_ids: Collection[str],
) -> list[ReportDraft]:
    """The reports ``order`` calls for that were not made yet, oldest news first.

    ``last_status`` is the status last reported for the order (None: nothing reported yet).
    """
    drafts: list[ReportDraft] = []
    if last_status is None and order.status is not ExecutionStatus.REJECTED:
        # The first word on an order says the venue holds it, and under which id.
        drafts.append(ReportDraft(ExecutionStatus.ACCEPTED, ZERO))
    drafts.extend(_new_fills(order, reported_fill_ids))
    said = drafts[-1].status if drafts else last_status
    if (
        order.status is not said
        and order.status is not ExecutionStatus.ACCEPTED
        and not _behind(order.status, said)
    ):
        # Canceled, expired, rejected, triggered: or a fill status the venue gave without the
        # fills that explain it (some venues report a filled order before its trades).
        drafts.append(
            ReportDraft(
                order.status,
                order.filled_quantity,
                order.average_price,
                reason=order.reason,
            )
        )
    return drafts


# How far along its life a status puts an order; the last four end it.
_PROGRESS = {
    ExecutionStatus.ACCEPTED: 0,
    ExecutionStatus.TRIGGERED: 1,
    ExecutionStatus.PARTIALLY_FILLED: 2,
    ExecutionStatus.FILLED: 3,
    ExecutionStatus.CANCELED: 3,
    ExecutionStatus.EXPIRED: 3,
    ExecutionStatus.REJECTED: 3,
}


def _behind(status: ExecutionStatus, said: ExecutionStatus | None) -> bool:
    """Whether ``status`` is older news than what was said: a stale read of the venue (one that
    started before a newer one that was reported), or a venue's lagging replica. Never reported:
    an order does not go back from filled to partially filled, nor out of an end."""
    return said is not None and _PROGRESS[status] <= _PROGRESS[said]


def rejection(reason: str) -> ReportDraft:
    """The venue refused the order: nothing was filled, and the reason says why."""
    return ReportDraft(ExecutionStatus.REJECTED, ZERO, reason=reason)


def withdrawal(reason: str) -> ReportDraft:
    """The order was canceled before it was ever sent to the venue."""
    return ReportDraft(ExecutionStatus.CANCELED, ZERO, reason=reason)


def _new_fills(order: VenueOrder, reported_fill_ids: Collection[str]) -> list[ReportDraft]:
    """One report per fill not reported yet, with the cumulative quantity and average up to it."""
    drafts = []
    quantity, notional = ZERO, ZERO
    for fill in order.fills:
        quantity += fill.quantity
        notional += fill.quantity * fill.price
        if fill.fill_id in reported_fill_ids:
            continue
        status = (
            ExecutionStatus.FILLED
            if quantity >= order.quantity
            else ExecutionStatus.PARTIALLY_FILLED
        )
        drafts.append(ReportDraft(status, quantity, notional / quantity, fill=fill))
    return drafts
