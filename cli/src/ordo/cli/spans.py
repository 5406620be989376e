"""Spans as the services export them, and the traces of a signal or an order.

The embedded stack writes one JSON object per finished span (``ReadableSpan.to_json()``) to
``<spans-dir>/<service>.jsonl``. A trace is found through any span that carries the id in an id
attribute (``ordo.signal_id``, ``ordo.order_id``, ``ordo.client_order_id``, FastStream's
``messaging.message.conversation_id`` = the correlation id, ...); then every span of that trace is
collected, whichever service wrote it, and arranged as a tree.
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ID_ATTRIBUTES = (
    "ordo.signal_id",
    "ordo.order_id",
    "ordo.client_order_id",
    "messaging.message.conversation_id",
)
"""The attributes that usually carry a signal or order id (any ``*_id`` / ``*.id`` one counts)."""


class SpanFormatError(ValueError):
    """A line that is not a span as ``ReadableSpan.to_json()`` writes it."""


@dataclass(frozen=True)
class Span:
    trace_id: str  # 32 lowercase hex digits, no 0x
    span_id: str  # 16 lowercase hex digits, no 0x
    parent_id: str | None
    name: str
    service: str
    start: datetime
    end: datetime
    kind: str = "INTERNAL"
    status: str = "UNSET"  # UNSET | OK | ERROR
    status_message: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return max((self.end - self.start).total_seconds() * 1000, 0.0)

    @property
    def failed(self) -> bool:
        return self.status == "ERROR"

    def mentions(self, wanted: str) -> bool:
        """Whether an id attribute of this span holds ``wanted`` (alone or in a list)."""
        for key, value in self.attributes.items():
            if not _is_id_attribute(key):
                continue
            values = value if isinstance(value, list | tuple) else (value,)
            if any(str(item) == wanted for item in values):
                return True
        return False


def _is_id_attribute(key: str) -> bool:
    return key in ID_ATTRIBUTES or key.endswith(("_id", ".id"))


def normalise_id(value: str) -> str:
    """Trace and span ids as plain lowercase hex: OpenTelemetry's JSON writes ``0x...``."""
    value = value.strip().lower()
    return value[2:] if value.startswith("0x") else value


def parse_span(record: Mapping[str, Any]) -> Span:
    """A span from the JSON ``ReadableSpan.to_json()`` writes."""
    try:
        context = record["context"]
        parent = record.get("parent_id")
        status = record.get("status") or {}
        resource = (record.get("resource") or {}).get("attributes") or {}
        return Span(
            trace_id=normalise_id(context["trace_id"]),
            span_id=normalise_id(context["span_id"]),
            parent_id=normalise_id(parent) if parent else None,
            name=str(record["name"]),
            service=str(resource.get("service.name", "?")),
            start=datetime.fromisoformat(record["start_time"]),
            end=datetime.fromisoformat(record.get("end_time") or record["start_time"]),
            kind=str(record.get("kind", "SpanKind.INTERNAL")).removeprefix("SpanKind."),
            status=str(status.get("status_code", "UNSET")),
            status_message=status.get("description"),
            attributes=dict(record.get("attributes") or {}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SpanFormatError(f"not a span: {error!r}") from error


@dataclass(frozen=True)
class SpanFiles:
    spans: tuple[Span, ...]
    files: int
    unreadable_lines: int  # a line being written right now, or not a span at all


def read_span_files(directory: Path) -> SpanFiles:
    """Every span in ``directory/*.jsonl``."""
    spans: list[Span] = []
    unreadable = 0
    files = sorted(directory.glob("*.jsonl"))
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    spans.append(parse_span(json.loads(line)))
                except (ValueError, SpanFormatError):
                    unreadable += 1
    return SpanFiles(tuple(spans), len(files), unreadable)


@dataclass(frozen=True)
class TraceRow:
    span: Span
    depth: int
    offset_ms: float  # from the start of the trace


@dataclass(frozen=True)
class Trace:
    trace_id: str
    rows: tuple[TraceRow, ...]  # depth first, siblings by start time

    @property
    def start(self) -> datetime:
        return min(row.span.start for row in self.rows)

    @property
    def end(self) -> datetime:
        return max(row.span.end for row in self.rows)

    @property
    def duration_ms(self) -> float:
        return max((self.end - self.start).total_seconds() * 1000, 0.0)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.span.service for row in self.rows))

    @property
    def failed(self) -> bool:
        return any(row.span.failed for row in self.rows)


def find_traces(spans: Iterable[Span], wanted: str) -> list[Trace]:
    """The traces that mention ``wanted`` (or whose trace id it is), earliest first."""
    wanted = wanted.strip()
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    as_trace_id = normalise_id(wanted)
    matching = [
        trace_id
        for trace_id, members in by_trace.items()
        if trace_id == as_trace_id or any(span.mentions(wanted) for span in members)
    ]
    traces = [build_trace(trace_id, by_trace[trace_id]) for trace_id in matching]
    return sorted(traces, key=lambda trace: trace.start)


def build_trace(trace_id: str, spans: Sequence[Span]) -> Trace:
    """The spans of one trace as a tree, depth first.

    A span whose parent is missing (not exported yet, sampled out, or from a caller outside
    the stack) becomes a root, so that nothing collected is ever dropped.
    """
    unique = list({span.span_id: span for span in reversed(spans)}.values())
    known = {span.span_id for span in unique}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in unique:
        parent = span.parent_id if span.parent_id in known else None
        children[parent].append(span)
    for siblings in children.values():
        siblings.sort(key=lambda span: (span.start, span.name))
    trace_start = min(span.start for span in unique)

    rows: list[TraceRow] = []
    seen: set[str] = set()

    def visit(span: Span, depth: int) -> None:
        if span.span_id in seen:  # a malformed file could hold a cycle
            return
        seen.add(span.span_id)
        offset = (span.start - trace_start).total_seconds() * 1000
        rows.append(TraceRow(span, depth, offset))
        for child in children.get(span.span_id, []):
            visit(child, depth + 1)

    for root in children[None]:
        visit(root, 0)
    for span in sorted(unique, key=lambda span: span.start):  # only spans caught in a cycle
        visit(span, 0)
    return Trace(trace_id, tuple(rows))


def bar_cells(offset_ms: float, duration_ms: float, total_ms: float, width: int) -> tuple[int, int]:
    """Where a span's bar starts and how many cells it fills, on a timeline ``width`` wide.

    Every span gets at least one cell, and the bar never runs past the end of the timeline.
    """
    if width < 1:
        return 0, 0
    if total_ms <= 0:
        return 0, width
    start = max(min(round(offset_ms / total_ms * width), width - 1), 0)
    length = max(round(duration_ms / total_ms * width), 1)
    return start, min(length, width - start)


def trace_as_json(trace: Trace) -> dict[str, Any]:
    return {
        "trace_id": trace.trace_id,
        "start": trace.start.isoformat(),
        "duration_ms": round(trace.duration_ms, 3),
        "services": list(trace.services),
        "spans": [
            {
                "span_id": row.span.span_id,
                "parent_id": row.span.parent_id,
                "depth": row.depth,
                "name": row.span.name,
                "service": row.span.service,
                "kind": row.span.kind,
                "status": row.span.status,
                "start_ms": round(row.offset_ms, 3),
                "duration_ms": round(row.span.duration_ms, 3),
                "attributes": dict(row.span.attributes),
            }
            for row in trace.rows
        ],
    }
