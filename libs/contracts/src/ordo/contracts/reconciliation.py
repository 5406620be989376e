"""Reconciliation runs and the discrepancies they find."""

from ordo.contracts.enums import DiscrepancyKind, ReconciliationOutcome, Severity
from ordo.contracts.envelope import Message
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_, UtcDatetime


class ReconciliationCompleted(Message):
    schema_name = "ReconciliationCompleted"

    run_id: str
    account: Name
    venue: Name
    started_at: UtcDatetime
    finished_at: UtcDatetime
    outcome: ReconciliationOutcome
    positions_compared: int
    discrepancies: int
    error: str | None = None


class DiscrepancyFound(Message):
    schema_name = "DiscrepancyFound"

    run_id: str
    account: Name
    venue: Name
    kind: DiscrepancyKind
    severity: Severity
    symbol: Name | None = None
    venue_value: Decimal_ | None = None
    oms_value: Decimal_ | None = None
    detail: str
