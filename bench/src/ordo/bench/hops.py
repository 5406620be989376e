"""Where the time of one signal goes: its trace cut at the moments a message changes hands.

The milestones, all read from the spans the services export (one trace per signal):

    webhook received          the signal service's HTTP server span starts
    signal.accepted.v1 sent   its publish span ends (JetStream acked)
    order takes it            the OMS's consumer span starts ... and so on through risk and
                              execution, to
    fill recorded             the end of the OMS's consumer span of the last execution report

Consecutive milestones give the segments: a service's handling, or a message in transit (NATS,
the consumer's fetch and any queueing behind earlier messages). Their sum is the end-to-end time.
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ordo.bench.stats import Latency
from ordo.cli.spans import Span, SpanFormatError, parse_span

WEBHOOK = ("ordo-signal", "SERVER", "POST /v1/webhooks/tradingview")


@dataclass(frozen=True)
class Step:
    """A message that leaves one service and is handled by the next."""

    subject: str
    sender: str
    receiver: str


PATH: tuple[Step, ...] = (
    Step("signal.accepted.v1", "ordo-signal", "ordo-order"),
    Step("order.proposed.v1", "ordo-order", "ordo-risk"),
    Step("risk.approved.v1", "ordo-risk", "ordo-execution"),
    Step("exec.report.v1", "ordo-execution", "ordo-order"),
)
HANDLERS = ("signal", "order", "risk", "execution")  # who handles the signal before each step
SEGMENTS: tuple[str, ...] = (
    *(
        name
        for step, handler in zip(PATH, HANDLERS, strict=True)
        for name in (f"{handler} handles", f"{step.subject} in transit")
    ),
    "order records the fill",
)


@dataclass(frozen=True)
class Breakdown:
    end_to_end: Latency
    segments: dict[str, Latency]
    traces: int  # complete traces found among the signals asked for

    def to_json(self) -> dict[str, object]:
        return {
            "traces": self.traces,
            "end_to_end_ms": self.end_to_end.to_json(),
            "segments_ms": {name: lat.to_json() for name, lat in self.segments.items()},
        }


class SpanTail:
    """Reads what the services' span files gained since it was created (or last read)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.offsets = {path: path.stat().st_size for path in directory.glob("*.jsonl")}

    def read(self, wanted_ids: set[str]) -> list[Span]:
        """The new spans of the traces that mention any of ``wanted_ids``."""
        spans: list[Span] = []
        for path in sorted(self.directory.glob("*.jsonl")):
            with path.open("rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line being written waits for next time
            self.offsets[path] = self.offsets.get(path, 0) + len(complete)
            spans.extend(_parse(complete.splitlines()))
        return _traces_mentioning(spans, wanted_ids)


def _parse(lines: Iterable[bytes]) -> list[Span]:
    spans = []
    for line in lines:
        try:
            spans.append(parse_span(json.loads(line)))
        except (ValueError, SpanFormatError):
            continue
    return spans


def _traces_mentioning(spans: Sequence[Span], wanted_ids: set[str]) -> list[Span]:
    traces = {
        span.trace_id
        for span in spans
        if str(span.attributes.get("ordo.signal_id", "")) in wanted_ids
    }
    return [span for span in spans if span.trace_id in traces]


def breakdown(spans: Iterable[Span]) -> Breakdown:
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    samples: dict[str, list[float]] = defaultdict(list)
    end_to_end: list[float] = []
    for trace in by_trace.values():
        milestones = _milestones(trace)
        if milestones is None:
            continue
        end_to_end.append(_ms(milestones[0], milestones[-1]))
        for name, start, end in zip(SEGMENTS, milestones, milestones[1:], strict=False):
            samples[name].append(_ms(start, end))
    return Breakdown(
        end_to_end=Latency.of(end_to_end),
        segments={name: Latency.of(samples[name]) for name in SEGMENTS},
        traces=len(end_to_end),
    )


def _milestones(trace: Sequence[Span]) -> list[datetime] | None:
    """The moments the signal changed hands, in order; None for an incomplete trace."""
    webhook = [s for s in trace if (s.service, s.kind, s.name) == WEBHOOK]
    if not webhook:
        return None
    moments = [webhook[0].start]
    by_id = {span.span_id: span for span in trace}
    for step in PATH:
        # The last of each: execution reports the acceptance before the fill.
        received = _last(
            s
            for s in trace
            if s.kind == "CONSUMER"
            and s.service == step.receiver
            and s.name.startswith(step.subject)
        )
        if received is None:
            return None
        create = by_id.get(received.parent_id or "")
        # The create span's children: its publish (a producer span) and the consumers' spans.
        publish = _last(
            s for s in trace if s.kind == "PRODUCER" and s.parent_id == (create and create.span_id)
        )
        if create is None or publish is None:
            return None
        moments += [publish.end, received.start]
        last_received = received
    moments.append(last_received.end)
    return moments


def _last(spans: Iterable[Span]) -> Span | None:
    return max(spans, key=lambda s: s.start, default=None)


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000
