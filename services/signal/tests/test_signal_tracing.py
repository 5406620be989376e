"""The trace of a signal starts at the webhook call and travels on with SignalAccepted."""

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from signal_support import running_signal, template_alert

import ordo.kit.service


async def test_the_webhook_call_is_the_root_of_the_signal_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(ordo.kit.service, "setup_tracing", lambda *_: provider)

    async with running_signal(tmp_path, telemetry=True) as signal:
        response = await signal.post_alert(template_alert())
        [outbox_row] = await signal.outbox()

    signal_id = response.json()["signal_id"]
    [server] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.parent is None
    assert server.attributes is not None
    assert server.attributes["ordo.signal_id"] == signal_id
    assert server.attributes["ordo.account"] == "main"
    trace_id = format(server.context.trace_id, "032x")
    assert outbox_row["headers"]["traceparent"].split("-")[1] == trace_id
