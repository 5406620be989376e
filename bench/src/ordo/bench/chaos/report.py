"""A run's figures and verdict: a table for people, JSON for the record."""

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from ordo.bench.chaos.invariants import Check
from ordo.bench.chaos.plan import ChaosPlan

VIOLATIONS_SHOWN = 10


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
    }


@dataclass
class ChaosReport:
    plan: ChaosPlan
    run_id: str
    started_at: str
    signals: dict[str, int]
    faults: dict[str, Any]
    outcomes: dict[str, int]
    checks: list[Check]
    seconds: dict[str, float]
    var_dir: str
    # Orders whose approval execution dead-lettered after transient venue failures (see
    # invariants.abandoned_orders): left to its give-up, which may come after the run ends.
    abandoned_orders: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=_machine)

    @property
    def violations(self) -> int:
        return sum(len(check.violations) for check in self.checks)

    @property
    def passed(self) -> bool:
        return self.violations == 0

    def faults_injected(self, kind: str) -> int:
        """How many faults of ``kind`` the run injected (the figure, summed when per target)."""
        value = self.faults[kind]
        return sum(value.values()) if isinstance(value, dict) else int(value)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "passed": self.passed,
            "violations": self.violations,
            "plan": {
                k: str(v) if not isinstance(v, int | float) else v
                for k, v in asdict(self.plan).items()
            },
            "signals": self.signals,
            "faults": self.faults,
            "outcomes": self.outcomes,
            "checks": [
                {
                    "name": check.name,
                    "checked": check.checked,
                    "violations": len(check.violations),
                    "details": [violation.text for violation in check.violations],
                }
                for check in self.checks
            ],
            "seconds": {name: round(value, 1) for name, value in self.seconds.items()},
            "abandoned_orders": self.abandoned_orders,
            "var_dir": self.var_dir,
            "machine": self.machine,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def render(self, console: Console) -> None:
        console.print(Group(self._figures(), self._checks()))
        verdict = (
            "[bold green]violations = 0[/]"
            if self.passed
            else (f"[bold red]violations = {self.violations}[/]")
        )
        console.print(verdict)
        if self.abandoned_orders:
            console.print(
                f"[yellow]execution could not settle {len(self.abandoned_orders)} approved "
                "order(s) (not even a lookup on the approval's last attempt) and dead-lettered "
                "their approval; they stay SUBMITTED at the OMS until execution gives them up[/]"
            )

    def _figures(self) -> Table:
        table = Table(title=f"Chaos run {self.run_id}", show_header=True, title_justify="left")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for name, value in self.signals.items():
            table.add_row(f"signals {name.replace('_', ' ')}", str(value))
        for kind, value in self.faults.items():
            if isinstance(value, dict):
                for target, count in value.items():
                    table.add_row(f"{kind.replace('_', ' ')}: {escape(target)}", str(count))
            else:
                table.add_row(kind.replace("_", " "), str(value))
        for kind, count in sorted(self.outcomes.items()):
            table.add_row(f"outcome {kind}", str(count))
        for phase, took in self.seconds.items():
            table.add_row(f"seconds {phase.replace('_', ' ')}", f"{took:.1f}")
        return table

    def _checks(self) -> Table:
        table = Table(title="Invariants", title_justify="left")
        table.add_column("invariant")
        table.add_column("checked", justify="right")
        table.add_column("violations", justify="right")
        for check in self.checks:
            style = "green" if check.passed else "bold red"
            table.add_row(check.name, str(check.checked), f"[{style}]{len(check.violations)}[/]")
            for violation in check.violations[:VIOLATIONS_SHOWN]:
                table.add_row(f"  [red]{escape(violation.text)}[/]", "", "")
            if len(check.violations) > VIOLATIONS_SHOWN:
                more = len(check.violations) - VIOLATIONS_SHOWN
                table.add_row(f"  [red]... and {more} more (see the JSON)[/]", "", "")
        return table
