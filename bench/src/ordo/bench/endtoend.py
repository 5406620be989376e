"""The whole engine under load: latency at a given rate, the highest rate it sustains, memory."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from ordo.bench.hops import Breakdown, SpanTail, breakdown
from ordo.bench.load import Batch, Progress, SignalLoad
from ordo.bench.stats import Latency
from ordo.cli.stack import Stack
from ordo.contracts.enums import OrderStatus
from ordo.contracts.subjects import STREAMS


class LostSignals(RuntimeError):
    """Signals accepted by the webhook that reached no terminal outcome: a bench run is void."""


@dataclass(frozen=True)
class LatencyResult:
    rate: float
    signals: int
    observed: Latency  # webhook posted -> FILLED update seen by the bench
    spans: Breakdown  # webhook received -> fill recorded, from the services' own spans

    def to_json(self) -> dict[str, Any]:
        return {
            "rate_per_second": self.rate,
            "signals": self.signals,
            "observed_ms": self.observed.to_json(),
            "from_spans": self.spans.to_json(),
        }


@dataclass(frozen=True)
class Step:
    rate: float
    signals: int
    completed_per_second: float
    kept_up: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "offered_per_second": self.rate,
            "signals": self.signals,
            "completed_per_second": round(self.completed_per_second, 1),
            "kept_up": self.kept_up,
        }


@dataclass(frozen=True)
class ThroughputResult:
    steps: tuple[Step, ...]

    @property
    def sustained(self) -> float:
        """The highest offered rate that every signal kept up with (0 if none did)."""
        return max((step.rate for step in self.steps if step.kept_up), default=0.0)

    @property
    def capacity(self) -> float:
        """The completion rate measured at the highest step: what the engine drains when pushed."""
        return max(step.completed_per_second for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "sustained_per_second": self.sustained,
            "capacity_per_second": round(self.capacity, 1),
            "steps": [step.to_json() for step in self.steps],
        }


async def measure_latency(
    load: SignalLoad, stack: Stack, rate: float, seconds: float, progress: Progress
) -> LatencyResult:
    tail = SpanTail(stack.var_dir / "spans")
    batch = await load.send(round(rate * seconds), rate, progress)
    await _require_outcomes(load, batch, timeout=_drain_timeout(batch))
    filled = {sid: o for sid, o in load.outcomes.items() if sid in batch.sent_ns}
    observed = [
        (outcome.at_ns - batch.sent_ns[sid]) / 1e6
        for sid, outcome in filled.items()
        if outcome.status is OrderStatus.FILLED
    ]
    return LatencyResult(
        rate=rate,
        signals=len(batch.sent_ns),
        observed=Latency.of(observed),
        spans=await _span_breakdown(tail, batch),
    )


async def _span_breakdown(tail: SpanTail, batch: Batch, timeout: float = 30) -> Breakdown:
    """Spans reach their files in batches, seconds after they end: read until all are there."""
    spans = []
    deadline = time.monotonic() + timeout
    while True:
        spans.extend(tail.read(batch.signal_ids))
        found = breakdown(spans) if spans else None
        if (found and found.traces >= len(batch.sent_ns)) or time.monotonic() > deadline:
            if found is None:
                raise LostSignals("no complete trace of any signal reached the span files")
            return found
        await asyncio.sleep(0.5)  # the exporters write every few seconds


async def measure_throughput(
    load: SignalLoad,
    rates: list[float],
    seconds: float,
    progress: Progress,
) -> ThroughputResult:
    """Offer each rate for ``seconds``; it is kept up with when every signal is done within a
    fifth of that time after the last was sent (a growing backlog would need longer to drain).
    Stops at the first rate not kept up with."""
    steps = []
    for rate in rates:
        batch = await load.send(round(rate * seconds), rate, progress)
        await _require_outcomes(load, batch, timeout=_drain_timeout(batch))
        done_ns = max(load.outcomes[sid].at_ns for sid in batch.sent_ns)
        grace_ns = seconds * 0.2 * 1e9
        steps.append(
            Step(
                rate=rate,
                signals=len(batch.sent_ns),
                completed_per_second=len(batch.sent_ns) / ((done_ns - batch.first_send_ns) / 1e9),
                kept_up=not batch.refused and done_ns - batch.last_send_ns <= grace_ns,
            )
        )
        if not steps[-1].kept_up:
            break
    return ThroughputResult(tuple(steps))


def _drain_timeout(batch: Batch, slowest_per_second: float = 2.0) -> float:
    """How long a batch may take to drain before its missing signals count as lost: an engine
    slower than the offered rate queues them, which is a latency figure, not a loss."""
    return 60 + len(batch.sent_ns) / slowest_per_second


async def _require_outcomes(load: SignalLoad, batch: Batch, *, timeout: float) -> None:
    if not await load.wait_for_outcomes(batch, timeout=timeout):
        missing = sorted(load.missing(batch))
        diagnosis = [await load.what_the_oms_says(signal_id) for signal_id in missing[:3]]
        raise LostSignals(
            f"{len(missing)} of {len(batch.sent_ns)} accepted signals reached no terminal "
            f"outcome within {timeout}s; the OMS says: {'; '.join(diagnosis)}"
        )
    if batch.refused:
        raise LostSignals(f"the webhook refused {len(batch.refused)}: {batch.refused[:3]}")


# -- memory ------------------------------------------------------------------------------------
def resident_memory(stack: Stack) -> dict[str, int]:
    """Each service's resident set size in bytes, from /proc."""
    return {
        str(service): _rss(proc.process.pid)
        for service, proc in stack.processes.items()
        if proc.process is not None
    }


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def messages_in_streams(load: SignalLoad) -> int:
    """Every message the services have published, all streams together."""
    js = load.jetstream
    total = 0
    for spec in STREAMS:
        info = await js.stream_info(spec.name)
        total += int(info.state.messages)
    return total


async def run_until_messages(
    load: SignalLoad, target: int, rate: float, progress: Progress, chunk_seconds: float = 10
) -> int:
    """Keep signals flowing at ``rate`` until the streams hold ``target`` messages."""
    while (published := await messages_in_streams(load)) < target:
        progress(published)
        batch = await load.send(max(1, round(rate * chunk_seconds)), rate)
        await _require_outcomes(load, batch, timeout=_drain_timeout(batch))
    progress(published)
    return published
