"""``make bench``: Ordo's speed on this machine, held against the physical floor.

Starts the embedded stack (NATS, Redis, the six services as processes), then measures in one run:
the floor (four bare nats-py hops), end-to-end latency at 50 and 200 signals/s with its per-hop
breakdown, the highest sustained rate, each service's memory idle and after 100,000 messages, and
the domain's hot paths in-process. Prints tables and writes JSON (``bench/results/latest.json``).
"""

import asyncio
import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ordo.bench import report
from ordo.bench.endtoend import (
    measure_latency,
    measure_throughput,
    resident_memory,
    run_until_messages,
)
from ordo.bench.floor import measure_floor
from ordo.bench.inprocess import measure_in_process
from ordo.bench.load import SignalLoad
from ordo.bench.machine import describe_machine
from ordo.cli.stack import Stack
from ordo.contracts.subjects import Service
from ordo.contracts.types import utc_now

REPO = Path(__file__).resolve().parents[4]
RESULTS = REPO / "bench" / "results" / "latest.json"

app = typer.Typer(add_completion=False, help=__doc__)


@dataclass(frozen=True)
class Plan:
    floor_latency_messages: int = 4_000  # 20 s at 200/s
    floor_throughput_messages: int = 10_000
    latency_phases: tuple[tuple[float, float], ...] = ((50, 20), (200, 10))  # (rate, seconds)
    ladder: tuple[float, ...] = (5, 10, 20, 30, 50, 100, 200, 400, 800)
    ladder_seconds: float = 10
    memory_messages: int = 100_000
    in_process_runs: int = 2_000


QUICK = Plan(
    floor_latency_messages=400,
    floor_throughput_messages=1_000,
    latency_phases=((50, 4), (200, 2)),
    ladder=(5, 10),
    ladder_seconds=3,
    memory_messages=3_000,
    in_process_runs=200,
)


@app.command()
def main(
    quick: Annotated[bool, typer.Option(help="A short run that checks the bench works")] = False,
    output: Annotated[Path, typer.Option(help="Where the JSON figures go")] = RESULTS,
) -> None:
    console = Console()
    figures = run_bench(QUICK if quick else Plan(), console)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    report.print_figures(figures, console)
    console.print(f"\nFigures written to {output}")


def run_bench(plan: Plan, console: Console) -> dict[str, Any]:
    figures: dict[str, Any] = {"measured_at": utc_now().isoformat(), "machine": describe_machine()}
    # Kept after the run (var/ is ignored by git): the services' logs and spans explain a figure.
    var_dir = REPO / "var" / "bench"
    shutil.rmtree(var_dir, ignore_errors=True)
    with _stack(var_dir) as stack:
        console.print(f"Stack up: NATS {stack.nats.url}; logs in {var_dir}/stack/logs")
        figures |= asyncio.run(_measure_stack(stack, plan))
    figures["in_process"] = {
        cost.name: cost.to_json() for cost in measure_in_process(plan.in_process_runs)
    }
    figures["aims"] = report.aims(figures)
    return figures


@contextmanager
def _stack(var_dir: Path) -> Any:
    var_dir.mkdir(parents=True, exist_ok=True)
    config = var_dir / "ordo.yaml"
    config.write_text((REPO / "config" / "ordo.yaml").read_text())
    stack = Stack(
        var_dir / "stack",
        config_file=config,
        # The bench is one client posting hundreds of alerts a second: not an abuser.
        service_env={Service.SIGNAL: {"ORDO_RATE_LIMIT_PER_MINUTE": "100000000"}},
    )
    stack.start(ready_timeout=180)
    try:
        yield stack
    finally:
        stack.stop()


async def _measure_stack(stack: Stack, plan: Plan) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with _progress() as progress:
        floor_task = progress.add_task(
            "floor: four nats-py hops",
            total=plan.floor_latency_messages + plan.floor_throughput_messages,
        )
        floor = await measure_floor(
            stack.nats,
            latency_messages=plan.floor_latency_messages,
            throughput_messages=plan.floor_throughput_messages,
            progress=lambda n: progress.advance(floor_task, n),
        )
        figures["floor"] = floor.to_json()

        async with SignalLoad(stack) as load:
            warm = progress.add_task("warm-up", total=50)
            await load.send(50, 25, lambda n: progress.advance(warm, n))
            memory_idle = resident_memory(stack)

            latency = []
            for rate, seconds in plan.latency_phases:
                task = progress.add_task(f"latency at {rate:g} signals/s", total=rate * seconds)
                result = await measure_latency(
                    load, stack, rate, seconds, lambda n, t=task: progress.advance(t, n)
                )
                latency.append(result.to_json())
            figures["latency"] = latency

            ladder = progress.add_task(
                "throughput: rising rates",
                total=sum(rate * plan.ladder_seconds for rate in plan.ladder),
            )
            throughput = await measure_throughput(
                load, list(plan.ladder), plan.ladder_seconds, lambda n: progress.advance(ladder, n)
            )
            figures["throughput"] = throughput.to_json()

            filling = progress.add_task(
                f"memory: up to {plan.memory_messages:,} messages", total=plan.memory_messages
            )
            # As fast as the engine drains: memory is about how much went through, not how fast.
            rate = max(2.0, throughput.capacity)
            published = await run_until_messages(
                load,
                plan.memory_messages,
                rate,
                lambda n: progress.update(filling, completed=min(n, plan.memory_messages)),
            )
            figures["memory"] = {
                "messages": published,
                "rate_per_second": rate,
                "idle_bytes": memory_idle,
                "after_bytes": resident_memory(stack),
            }
    return figures


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )


if __name__ == "__main__":
    app()
