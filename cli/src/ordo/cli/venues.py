"""Venue health for ``ordo status``: each venue account's breaker and halt, as execution says.

The execution service serves ``GET /venues``; the breakers' state is shared by its replicas (in
Redis) and the halts are in its store, so any replica gives the same answer.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from rich.table import Table
from rich.text import Text

from ordo.cli.client import ServiceEntry
from ordo.contracts.enums import BreakerState
from ordo.contracts.subjects import Service

_BREAKER_STYLES = {
    BreakerState.CLOSED: "green",
    BreakerState.HALF_OPEN: "yellow",
    BreakerState.OPEN: "red",
}


@dataclass(frozen=True)
class VenueHealth:
    venue: str
    account: str
    breaker: BreakerState
    halted: bool
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "breaker": self.breaker.value}


@dataclass(frozen=True)
class VenueReport:
    """What ``/venues`` said, or why it could not be asked (no execution service, no answer)."""

    venues: tuple[VenueHealth, ...] = ()
    error: str | None = None


def venue_health(http: httpx.Client, services: Sequence[ServiceEntry]) -> VenueReport | None:
    """The execution service's venue health; None when the stack lists no execution service."""
    execution = next((s for s in services if s.name == Service.EXECUTION), None)
    if execution is None:
        return None
    try:
        response = http.get(f"{execution.url}/venues")
        response.raise_for_status()
        entries = response.json()
        return VenueReport(
            tuple(
                VenueHealth(
                    venue=entry["venue"],
                    account=entry["account"],
                    breaker=BreakerState(entry["breaker"]),
                    halted=bool(entry["halted"]),
                    reason=entry.get("reason"),
                )
                for entry in entries
            )
        )
    except httpx.HTTPError as error:
        return VenueReport(error=f"{type(error).__name__}: {error}")
    except (ValueError, KeyError, TypeError):
        return VenueReport(error="the execution service sent an answer that is not venue health")


def venues_table(report: VenueReport) -> Table:
    table = Table(title="Venues", title_justify="left")
    for column in ("venue", "account", "breaker", "trading"):
        table.add_column(column)
    if report.error is not None:
        table.add_row(Text(f"unknown: {report.error}", style="red"), "", "", "")
    for health in report.venues:
        trading = (
            Text(f"halted: {health.reason or ''}", style="bold red")
            if health.halted
            else Text("on", style="green")
        )
        table.add_row(
            health.venue,
            health.account,
            Text(health.breaker.value, style=_BREAKER_STYLES[health.breaker]),
            trading,
        )
    return table
