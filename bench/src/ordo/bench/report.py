"""The bench's figures as tables, and how they stand against the aims of issue #3."""

from typing import Any

from rich.console import Console
from rich.table import Table

MIB = 1024 * 1024
AIM_THROUGHPUT_SHARE_OF_FLOOR = 0.5
AIM_P50_MULTIPLE_OF_FLOOR = 3.0
AIM_MEMORY_GROWTH = 0.10


def aims(figures: dict[str, Any]) -> dict[str, Any]:
    floor = figures["floor"]
    at_200 = _latency_at(figures, 200)
    growth = memory_growth(figures["memory"])
    throughput_share = (
        figures["throughput"]["sustained_per_second"] / floor["throughput_per_second"]
    )
    p50_multiple = (
        at_200["from_spans"]["end_to_end_ms"]["p50"] / floor["latency_ms"]["p50"]
        if at_200
        else None
    )
    worst_growth = max(growth.values())
    return {
        "throughput_share_of_floor": {
            "value": round(throughput_share, 3),
            "aim": f">= {AIM_THROUGHPUT_SHARE_OF_FLOOR}",
            "met": throughput_share >= AIM_THROUGHPUT_SHARE_OF_FLOOR,
        },
        "p50_multiple_of_floor_at_200": {
            "value": None if p50_multiple is None else round(p50_multiple, 2),
            "aim": f"<= {AIM_P50_MULTIPLE_OF_FLOOR}",
            "met": p50_multiple is not None and p50_multiple <= AIM_P50_MULTIPLE_OF_FLOOR,
        },
        "worst_memory_growth": {
            "value": round(worst_growth, 3),
            "aim": f"<= {AIM_MEMORY_GROWTH}",
            "met": worst_growth <= AIM_MEMORY_GROWTH,
        },
    }


def memory_growth(memory: dict[str, Any]) -> dict[str, float]:
    idle, after = memory["idle_bytes"], memory["after_bytes"]
    return {service: after[service] / idle[service] - 1 for service in idle}


def _latency_at(figures: dict[str, Any], rate: float) -> dict[str, Any] | None:
    return next((p for p in figures["latency"] if p["rate_per_second"] == rate), None)


def print_figures(figures: dict[str, Any], console: Console) -> None:
    machine = figures["machine"]
    console.print(
        f"\n[bold]Machine[/]: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB, Python {machine['python']}, {machine['nats_server']}"
    )
    console.print(_floor_table(figures["floor"]))
    console.print(_latency_table(figures["latency"]))
    for phase in figures["latency"]:
        console.print(_hops_table(phase))
    console.print(_throughput_table(figures["throughput"], figures["floor"]))
    console.print(_memory_table(figures["memory"]))
    console.print(_in_process_table(figures["in_process"]))
    console.print(_aims_table(figures["aims"]))


def _ms(latency: dict[str, Any]) -> list[str]:
    return [f"{latency[key]:.1f}" for key in ("p50", "p95", "p99", "max")]


def _floor_table(floor: dict[str, Any]) -> Table:
    table = Table(title=f"The floor: {floor['hops']} bare nats-py hops, JetStream publish + ack")
    for column in ("rate/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "throughput/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(floor["latency_rate_per_second"]),
        *_ms(floor["latency_ms"]),
        f"{floor['throughput_per_second']:.0f}",
    )
    return table


def _latency_table(phases: list[dict[str, Any]]) -> Table:
    table = Table(title="End to end: webhook received -> fill recorded by the OMS")
    for column in ("signals/s", "signals", "measured by", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for phase in phases:
        rate, count = f"{phase['rate_per_second']:g}", str(phase["signals"])
        table.add_row(rate, count, "spans", *_ms(phase["from_spans"]["end_to_end_ms"]))
        table.add_row("", "", "client", *_ms(phase["observed_ms"]))
    return table


def _hops_table(phase: dict[str, Any]) -> Table:
    table = Table(
        title=f"Per hop at {phase['rate_per_second']:g} signals/s "
        f"({phase['from_spans']['traces']} traces)"
    )
    table.add_column("segment")
    for column in ("p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for name, latency in phase["from_spans"]["segments_ms"].items():
        table.add_row(name, *_ms(latency))
    return table


def _throughput_table(throughput: dict[str, Any], floor: dict[str, Any]) -> Table:
    table = Table(title="Throughput: every signal to a terminal outcome, nothing lost")
    for column in ("offered/s", "signals", "completed/s", "kept up"):
        table.add_column(column, justify="right")
    for step in throughput["steps"]:
        table.add_row(
            f"{step['offered_per_second']:g}",
            str(step["signals"]),
            f"{step['completed_per_second']:.0f}",
            "yes" if step["kept_up"] else "no",
        )
    share = throughput["sustained_per_second"] / floor["throughput_per_second"]
    table.caption = (
        f"sustained {throughput['sustained_per_second']:g}/s = {share:.1%} of the floor's "
        f"{floor['throughput_per_second']:.0f}/s"
    )
    return table


def _memory_table(memory: dict[str, Any]) -> Table:
    table = Table(title=f"Resident memory: idle, and after {memory['messages']:,} messages")
    for column in ("service", "idle MiB", "after MiB", "growth"):
        table.add_column(column, justify="right")
    growth = memory_growth(memory)
    for service, idle in memory["idle_bytes"].items():
        after = memory["after_bytes"][service]
        table.add_row(service, f"{idle / MIB:.1f}", f"{after / MIB:.1f}", f"{growth[service]:+.1%}")
    return table


def _in_process_table(costs: dict[str, Any]) -> Table:
    table = Table(title="In-process (no I/O), median of five rounds")
    table.add_column("operation")
    table.add_column("µs", justify="right")
    for name, cost in costs.items():
        table.add_row(name, f"{cost['microseconds_per_operation']:.1f}")
    return table


def _aims_table(results: dict[str, Any]) -> Table:
    table = Table(title="Aims of issue #3")
    for column in ("aim", "value", "target", "met"):
        table.add_column(column)
    for name, aim in results.items():
        table.add_row(name, str(aim["value"]), aim["aim"], "yes" if aim["met"] else "NO")
    return table
