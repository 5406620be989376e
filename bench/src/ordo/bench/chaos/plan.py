"""What a chaos run does, and the engine configuration it runs under."""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from ordo.contracts.enums import OrderStatus
from ordo.execution.venues.paper import VENUE_NAME as PAPER_VENUE

ACCOUNT = "chaos"
NON_TERMINAL = tuple(status for status in OrderStatus if not status.is_terminal)


@dataclass(frozen=True)
class ChaosPlan:
    """The load, the faults and the deadlines of one run. Times are in seconds."""

    duration: float = 240.0
    rate: float = 4.0  # signals per second
    seed: int = 7
    # The paper venue's injected faults, per call (every call: orders, lookups and snapshots).
    venue_failure_probability: Decimal = Decimal("0.2")
    venue_timeout_probability: Decimal = Decimal("0.1")
    # A process fault (a SIGKILLed service or a NATS restart) every this many seconds, between
    # the first and the last tenth of the load, so that the run ends with everything up.
    process_fault_interval: float = 8.0
    # A duplicate and a replay of stream messages every this many seconds; every
    # ``poison_every``-th time also an undecodable message.
    message_fault_interval: float = 1.0
    poison_every: int = 5
    # How long a signal may take to reach its outcome once the load has stopped, and how long
    # the reconciler may take to complete a run after that.
    settle_timeout: float = 120.0
    reconcile_timeout: float = 60.0
    reconcile_interval: float = 3.0
    # How long the load keeps retrying an alert the intake did not answer (it was down).
    answer_timeout: float = 90.0

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.rate <= 0:
            raise ValueError("duration and rate must be positive")
        for name in ("venue_failure_probability", "venue_timeout_probability"):
            if not Decimal(0) <= getattr(self, name) <= Decimal(1):
                raise ValueError(f"{name} is a probability from 0 to 1")

    @property
    def fault_window(self) -> tuple[float, float]:
        """When process faults may start, as offsets from the start of the load."""
        return 0.1 * self.duration, 0.9 * self.duration - self.process_fault_interval / 2


def write_chaos_config(source: Path, target: Path, plan: ChaosPlan) -> Path:
    """``source`` (config/ordo.yaml) with the venue's faults on and the run's account reconciled.

    Only what the run needs changes: the paper venue's fault probabilities and seed, the
    reconciler's accounts and interval, and an intake rate limit above the load's own rate.
    """
    document: dict[str, Any] = yaml.safe_load(source.read_text()) or {}
    execution = document.setdefault("execution", {})
    paper = execution.setdefault("paper", {})
    paper.update(
        seed=plan.seed,
        failure_probability=str(plan.venue_failure_probability),
        timeout_probability=str(plan.venue_timeout_probability),
    )
    paper.pop("fault_calls", None)  # every call, create_order included
    reconciler = document.setdefault("reconciler", {})
    reconciler["accounts"] = [{"account": ACCOUNT, "venue": PAPER_VENUE}]
    reconciler["interval_seconds"] = plan.reconcile_interval
    signal = document.setdefault("signal", {})
    # Retries of alerts while the intake is down come on top of the load's rate.
    wanted = int(plan.rate * 60 * 4)
    signal["rate_limit_per_minute"] = max(int(signal.get("rate_limit_per_minute", 0)), wanted)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        "# Written by ordo.bench.chaos from "
        f"{source}: the paper venue's faults on, the chaos account reconciled.\n"
        + yaml.safe_dump(document, sort_keys=False)
    )
    return target
