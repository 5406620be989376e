"""What is worth telling people, and how it reads on a phone. Pure: no I/O."""

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ordo.contracts.enums import BreakerState, ExecutionStatus, Severity, TradingState
from ordo.contracts.execution import ExecutionReport, VenueStatusChanged
from ordo.contracts.reconciliation import DiscrepancyFound
from ordo.contracts.risk import OrderDenied, TradingStateChanged
from ordo.kit.messaging import DeadLetter


class EventKind(StrEnum):
    FILL = "fill"
    DENIAL = "denial"
    TRADING_STATE = "trading_state"
    BREAKER = "breaker"
    DISCREPANCY = "discrepancy"
    DEAD_LETTER = "dead_letter"
    REPORT = "report"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def at_least(severity: Severity, threshold: Severity) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


@dataclass(frozen=True)
class Attachment:
    """A file sent with a notification where the channel allows (the report's chart)."""

    filename: str
    content: bytes
    media_type: str = "image/png"


@dataclass(frozen=True)
class Notification:
    """``topic`` names what the notification is about (a venue's breaker, an account's trading
    state): a repeat is a notification with the same text on the same topic as the last one."""

    kind: EventKind
    severity: Severity
    title: str
    body: str
    topic: str
    attachment: Attachment | None = None

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}" if self.body else self.title

    @property
    def fingerprint(self) -> str:
        return _sha256(self.text)

    @property
    def topic_key(self) -> str:
        """The topic, of a fixed length (it is made of names that may each be 64 long)."""
        return _sha256(self.topic)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def amount(value: Decimal) -> str:
    """A decimal as people write it: never an exponent (``5E-8``), no trailing zeros.

    Plain string work, not ``normalize()``, which would round past 28 digits.
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def for_execution_report(report: ExecutionReport) -> Notification | None:
    """Fills are worth a message; acknowledgements and other reports are not."""
    if report.fill is None or report.status not in (
        ExecutionStatus.FILLED,
        ExecutionStatus.PARTIALLY_FILLED,
    ):
        return None
    fill = report.fill
    verb = "Filled" if report.status is ExecutionStatus.FILLED else "Partially filled"
    origin = " (found by reconciliation)" if report.reconciliation else ""
    return Notification(
        kind=EventKind.FILL,
        severity=Severity.INFO,
        topic=f"fill:{report.order_id}:{fill.fill_id}",
        title=(
            f"{verb}: {report.side.value.upper()} {amount(fill.quantity)} {report.symbol} "
            f"@ {amount(fill.price)}"
        ),
        body=(
            f"account {report.account} · {report.venue} · order {report.order_id}\n"
            f"fee {amount(fill.fee)} {fill.fee_currency} · "
            f"filled {amount(report.cumulative_quantity)}{origin}"
        ),
    )


def for_denial(denied: OrderDenied) -> Notification:
    reasons = "\n".join(f"• {r.code}: {r.message}" for r in denied.reasons)
    return Notification(
        kind=EventKind.DENIAL,
        severity=Severity.WARNING,
        topic=f"denial:{denied.account}:{denied.proposal_id}",
        title=f"Order denied by risk: account {denied.account}",
        body=f"orders {', '.join(denied.order_ids)}\n{reasons}",
    )


def for_trading_state(changed: TradingStateChanged) -> Notification:
    severity = Severity.CRITICAL if changed.state is TradingState.HALTED else Severity.WARNING
    if changed.state is TradingState.ACTIVE:
        severity = Severity.INFO
    return Notification(
        kind=EventKind.TRADING_STATE,
        severity=severity,
        topic=f"trading-state:{changed.account}",
        title=f"Account {changed.account}: {changed.previous.value} → {changed.state.value}",
        body=f"{changed.reason} (by {changed.actor})",
    )


def for_venue_status(changed: VenueStatusChanged) -> Notification:
    # A halt (the venue refused our credentials) stops trading there whatever the breaker says.
    healthy = changed.breaker is BreakerState.CLOSED and not changed.halted
    state = "HALTED" if changed.halted else f"breaker {changed.breaker.value}"
    return Notification(
        kind=EventKind.BREAKER,
        severity=Severity.INFO if healthy else Severity.CRITICAL,
        topic=f"breaker:{changed.venue}:{changed.account}",
        title=f"Venue {changed.venue} ({changed.account}): {state}",
        body=changed.reason or "",
    )


def for_discrepancy(found: DiscrepancyFound) -> Notification:
    where = f"{found.account}/{found.venue}" + (f" {found.symbol}" if found.symbol else "")
    values = " · ".join(
        f"{side} {amount(value)}"
        for side, value in (("venue", found.venue_value), ("OMS", found.oms_value))
        if value is not None
    )
    return Notification(
        kind=EventKind.DISCREPANCY,
        severity=found.severity,
        # A discrepancy that persists is found again on every run: the same text on this topic.
        topic=f"discrepancy:{found.account}:{found.venue}:{found.kind.value}:{found.symbol or ''}",
        title=(
            f"Reconciliation {found.severity.value}: {found.kind.value.replace('_', ' ')} ({where})"
        ),
        body="\n".join(line for line in (values, found.detail) if line),
    )


def for_dead_letter(letter: DeadLetter) -> Notification:
    """A message a service gave up on: someone must look, then fix and replay it."""
    return Notification(
        kind=EventKind.DEAD_LETTER,
        severity=Severity.CRITICAL,
        topic=f"dead-letter:{letter.dead_letter_id}",
        title=f"Dead letter: {letter.service} gave up on {letter.original_subject}",
        body=(
            f"after {letter.attempts} attempts: {letter.error}\n"
            f"kept in the DEADLETTER stream as {letter.dead_letter_id} ({letter.subject})"
        ),
    )
