"""OpenTelemetry: one tracer provider per process; OTLP when configured, JSON lines otherwise.

Trace context crosses NATS in message headers (FastStream's telemetry middleware) and HTTP in
the W3C ``traceparent`` header, so one trace follows a signal through every service.
"""

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from ordo.kit.settings import TelemetrySettings


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON object per line (the embedded stack's backend)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # ``indent=None``: one line per span (json.dumps escapes any newline inside a string).
        lines = [span.to_json(indent=None) + "\n" for span in spans]
        with self._lock:
            self._file.writelines(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def otlp_configured() -> bool:
    return any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def setup_tracing(service: str, instance: str, settings: TelemetrySettings) -> TracerProvider:
    resource = Resource.create({"service.name": f"ordo-{service}", "service.instance.id": instance})
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
    )
    exporter: SpanExporter
    if otlp_configured():
        exporter = OTLPSpanExporter()
    else:
        exporter = JsonLinesSpanExporter(settings.span_dir / f"{service}.jsonl")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    return provider


def inject_headers(context: Context | None = None) -> dict[str, str]:
    """The W3C trace context of ``context`` (default: the current one) as message headers."""
    headers: dict[str, str] = {}
    propagate.inject(headers, context=context)
    return headers


def extract_context(headers: Mapping[str, str]) -> Context:
    return propagate.extract(dict(headers))
