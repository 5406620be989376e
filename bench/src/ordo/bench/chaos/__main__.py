"""``python -m ordo.bench.chaos`` (``make chaos``): the full chaos run, its figures and verdict.

Exit code 0 when every invariant held, 1 when any was violated.
"""

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ordo.bench.chaos.plan import ChaosPlan
from ordo.bench.chaos.run import run_chaos

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
DEFAULT = ChaosPlan()


@app.command()
def chaos(
    duration: Annotated[
        float, typer.Option(min=10, help="Seconds of load (faults run through it).")
    ] = DEFAULT.duration,
    rate: Annotated[float, typer.Option(min=0.1, help="Signals per second.")] = DEFAULT.rate,
    seed: Annotated[
        int, typer.Option(help="Seeds the load, the faults and the venue.")
    ] = DEFAULT.seed,
    venue_failures: Annotated[
        float, typer.Option(min=0, max=1, help="Probability that a venue call fails.")
    ] = float(DEFAULT.venue_failure_probability),
    venue_timeouts: Annotated[
        float, typer.Option(min=0, max=1, help="Probability that a venue call times out.")
    ] = float(DEFAULT.venue_timeout_probability),
    config: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The engine config to start from.")
    ] = Path("config/ordo.yaml"),
    output: Annotated[Path, typer.Option(help="Where the JSON goes.")] = Path(
        "bench/results/chaos-latest.json"
    ),
    var_dir: Annotated[
        Path, typer.Option(help="The run's stack (logs, stores); wiped by the next run.")
    ] = Path("var/chaos"),
) -> None:
    """Load the engine under faults, then check that it lost nothing and did nothing twice."""
    plan = ChaosPlan(
        duration=duration,
        rate=rate,
        seed=seed,
        venue_failure_probability=Decimal(str(venue_failures)),
        venue_timeout_probability=Decimal(str(venue_timeouts)),
    )
    console = Console()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def show(what: str, done: float, total: float | None) -> None:
            bar.update(task, description=what, completed=done, total=total)

        report = asyncio.run(run_chaos(plan, config_source=config, var_dir=var_dir, progress=show))
    report.write(output)
    report.render(console)
    console.print(f"JSON: {output}; logs and stores: {report.var_dir}")
    raise typer.Exit(0 if report.passed else 1)


if __name__ == "__main__":
    app()
