"""`ordo trace --jaeger`: the waterfall from a Jaeger query API, over real HTTP.

The spans are made by the OpenTelemetry SDK as the services make them (two services, the trace
context carried across in message headers) and served by a local HTTP server in the JSON of
Jaeger's query API (``/api/services``, ``/api/traces/<id>``, ``/api/traces?service=&tags=``).
"""

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from opentelemetry import propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from typer.testing import CliRunner

from ordo.cli.main import app

SIGNAL_ID = "01a1ffb3-4fda-730c-ae8e-f84d3f630068"
ORDER_ID = "01a1ffb3-4fe9-70c8-b81c-67fbf3d0fbdd"

runner = CliRunner()


def made_spans() -> list[ReadableSpan]:
    """A signal's trace across ordo-signal and ordo-order, and another signal's trace."""
    exporter = InMemorySpanExporter()

    def tracer(service: str) -> Any:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider.get_tracer("test")

    signal, order = tracer("ordo-signal"), tracer("ordo-order")
    headers: dict[str, str] = {}
    with (
        signal.start_as_current_span(
            "POST /v1/signals", kind=SpanKind.SERVER, attributes={"ordo.signal_id": SIGNAL_ID}
        ),
        signal.start_as_current_span("signal.accepted.v1 publish", kind=SpanKind.PRODUCER),
    ):
        propagate.inject(headers)
    with (
        order.start_as_current_span(
            "signal.accepted.v1 process",
            context=propagate.extract(headers),
            kind=SpanKind.CONSUMER,
        ),
        order.start_as_current_span("oms.plan", attributes={"ordo.order_id": ORDER_ID}) as plan,
    ):
        plan.set_status(Status(StatusCode.ERROR, "no market rules"))
    with signal.start_as_current_span(
        "POST /v1/signals", kind=SpanKind.SERVER, attributes={"ordo.signal_id": "another"}
    ):
        pass
    return list(exporter.get_finished_spans())


def jaeger_traces(spans: Sequence[ReadableSpan]) -> dict[str, dict[str, Any]]:
    """The spans as Jaeger's query API returns them: trace id → trace (its JSON model)."""
    traces: dict[str, dict[str, Any]] = {}
    for span in spans:
        assert span.context is not None and span.start_time and span.end_time
        trace_id = f"{span.context.trace_id:032x}"
        service = str(span.resource.attributes["service.name"])
        trace = traces.setdefault(trace_id, {"traceID": trace_id, "spans": [], "processes": {}})
        processes = trace["processes"]
        process_id = next(
            (key for key, process in processes.items() if process["serviceName"] == service),
            f"p{len(processes) + 1}",
        )
        processes[process_id] = {"serviceName": service, "tags": []}
        tags = [{"key": k, "type": "string", "value": v} for k, v in span.attributes.items()]
        tags.append({"key": "span.kind", "type": "string", "value": span.kind.name.lower()})
        if span.status.status_code is StatusCode.ERROR:
            tags += [
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {"key": "error", "type": "bool", "value": True},
            ]
        parent = span.parent
        trace["spans"].append(
            {
                "traceID": trace_id,
                "spanID": f"{span.context.span_id:016x}",
                "operationName": span.name,
                "references": [
                    {"refType": "CHILD_OF", "traceID": trace_id, "spanID": f"{parent.span_id:016x}"}
                ]
                if parent
                else [],
                "startTime": span.start_time // 1000,
                "duration": (span.end_time - span.start_time) // 1000,
                "tags": tags,
                "logs": [],
                "processID": process_id,
            }
        )
    return traces


@dataclass
class FakeJaeger:
    """Jaeger's query API on a local port, and the requests it was sent."""

    traces: dict[str, dict[str, Any]]
    url: str = ""
    asked: list[str] = field(default_factory=list)

    def answer(self, target: str) -> tuple[int, dict[str, Any]]:
        self.asked.append(target)
        url = urlsplit(target)
        if url.path == "/api/services":
            services = {
                p["serviceName"] for t in self.traces.values() for p in t["processes"].values()
            }
            return 200, {"data": sorted(services | {"jaeger"})}
        if url.path.startswith("/api/traces/"):
            trace = self.traces.get(url.path.rsplit("/", 1)[1])
            if trace is None:
                return 404, {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]}
            return 200, {"data": [trace]}
        if url.path == "/api/traces":
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            return 200, {"data": self.search(query["service"], json.loads(query["tags"]))}
        return 404, {"data": None, "errors": [{"code": 404, "msg": "page not found"}]}

    def search(self, service: str, tags: dict[str, str]) -> list[dict[str, Any]]:
        """The whole traces where a span of ``service`` carries every tag, as Jaeger answers."""
        found = []
        for trace in self.traces.values():
            for span in trace["spans"]:
                span_tags = {tag["key"]: tag["value"] for tag in span["tags"]}
                of_service = trace["processes"][span["processID"]]["serviceName"] == service
                if of_service and tags.items() <= span_tags.items():
                    found.append(trace)
                    break
        return found


@pytest.fixture
def jaeger() -> Iterator[FakeJaeger]:
    fake = FakeJaeger(jaeger_traces(made_spans()))

    class QueryApi(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = fake.answer(self.path)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet test output

    server = ThreadingHTTPServer(("127.0.0.1", 0), QueryApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def traced(wanted: str, jaeger: FakeJaeger) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["trace", wanted, "--jaeger", jaeger.url, "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert isinstance(found, list)
    return found


def test_a_signal_id_finds_its_trace_across_services_by_tag_search(jaeger: FakeJaeger) -> None:
    (trace,) = traced(SIGNAL_ID, jaeger)

    assert [(s["name"], s["service"], s["depth"]) for s in trace["spans"]] == [
        ("POST /v1/signals", "ordo-signal", 0),
        ("signal.accepted.v1 publish", "ordo-signal", 1),
        ("signal.accepted.v1 process", "ordo-order", 2),
        ("oms.plan", "ordo-order", 3),
    ]
    assert trace["services"] == ["ordo-signal", "ordo-order"]
    assert [s["status"] for s in trace["spans"]][-1] == "ERROR"
    searches = [
        parse_qs(urlsplit(t).query) for t in jaeger.asked if urlsplit(t).path == "/api/traces"
    ]
    assert {"ordo-signal", "ordo-order"} <= {s["service"][0] for s in searches}


def test_an_order_id_finds_the_whole_trace_of_its_signal(jaeger: FakeJaeger) -> None:
    (trace,) = traced(ORDER_ID, jaeger)
    assert trace["spans"][0]["attributes"]["ordo.signal_id"] == SIGNAL_ID


def test_a_trace_id_is_fetched_directly_and_drawn(jaeger: FakeJaeger) -> None:
    trace_id = next(t for t, trace in jaeger.traces.items() if len(trace["spans"]) == 4)

    result = runner.invoke(app, ["trace", trace_id, "--jaeger", jaeger.url], env={"COLUMNS": "160"})

    assert result.exit_code == 0, result.output
    for name in ("POST /v1/signals", "signal.accepted.v1 process", "oms.plan"):
        assert name in result.stdout
    assert jaeger.asked == [f"/api/traces/{trace_id}"]


def test_an_id_jaeger_does_not_know_is_reported_with_where_it_looked(jaeger: FakeJaeger) -> None:
    result = runner.invoke(app, ["trace", "no-such-signal", "--jaeger", jaeger.url])

    assert result.exit_code != 0
    assert f"Jaeger at {jaeger.url}" in result.output
