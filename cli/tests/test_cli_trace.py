"""`ordo trace`: the waterfall of a signal's trace, drawn from the span files the services write."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ordo.cli import jaeger
from ordo.cli.errors import EXIT_NOT_FOUND, CliError
from ordo.cli.main import app
from ordo.cli.spans import bar_cells, find_traces, read_span_files

SIGNAL_ID = "01a1ffb3-4fda-730c-ae8e-f84d3f630068"
ORDER_ID = "01a1ffb3-4fe9-70c8-b81c-67fbf3d0fbdd"
TRACE = "7dfede246e86f3ce75dc37863134ee1e"
OTHER_TRACE = "0123456789abcdef0123456789abcdef"
T0 = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)

runner = CliRunner()


def span_record(
    name: str,
    service: str,
    span_id: str,
    parent_id: str | None,
    start_ms: float,
    duration_ms: float,
    *,
    trace_id: str = TRACE,
    attributes: dict[str, Any] | None = None,
    status: str = "UNSET",
) -> dict[str, Any]:
    """A span as ``ReadableSpan.to_json()`` writes it."""
    start = T0 + timedelta(milliseconds=start_ms)
    end = start + timedelta(milliseconds=duration_ms)
    return {
        "name": name,
        "context": {"trace_id": f"0x{trace_id}", "span_id": f"0x{span_id}", "trace_state": "[]"},
        "kind": "SpanKind.INTERNAL",
        "parent_id": f"0x{parent_id}" if parent_id else None,
        "start_time": start.isoformat().replace("+00:00", "Z"),
        "end_time": end.isoformat().replace("+00:00", "Z"),
        "status": {"status_code": status},
        "attributes": attributes or {},
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": service}, "schema_url": ""},
    }


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def two_service_spans(directory: Path) -> Path:
    """A signal's trace across the signal and order services, plus an unrelated trace."""
    directory.mkdir(parents=True, exist_ok=True)
    # Spans are exported when they end: children come before their parents in a file.
    write_jsonl(
        directory / "signal.jsonl",
        [
            span_record(
                "signal.record", "ordo-signal", "a000000000000002", "a000000000000001", 2, 3
            ),
            span_record(
                "signal.accepted.v1 publish",
                "ordo-signal",
                "a000000000000003",
                "a000000000000001",
                9,
                4,
                attributes={"messaging.message.conversation_id": SIGNAL_ID},
            ),
            span_record(
                "POST /v1/signals",
                "ordo-signal",
                "a000000000000001",
                None,
                0,
                20,
                attributes={"ordo.signal_id": SIGNAL_ID},
            ),
            span_record(
                "POST /v1/signals",
                "ordo-signal",
                "c000000000000001",
                None,
                500,
                10,
                trace_id=OTHER_TRACE,
                attributes={"ordo.signal_id": "another-signal"},
            ),
        ],
    )
    write_jsonl(
        directory / "order.jsonl",
        [
            span_record(
                "oms.plan",
                "ordo-order",
                "b000000000000002",
                "b000000000000001",
                16,
                2,
                attributes={"ordo.order_id": ORDER_ID},
            ),
            span_record(
                "signal.accepted.v1 process",
                "ordo-order",
                "b000000000000001",
                "a000000000000003",  # the signal service's publish span: across services
                11,
                24,
            ),
        ],
    )
    with (directory / "order.jsonl").open("a") as being_written:
        being_written.write('{"name": "half a line')
    return directory


def test_waterfall_draws_the_tree_across_services_in_order(tmp_path: Path) -> None:
    spans_dir = two_service_spans(tmp_path / "spans")

    result = runner.invoke(
        app, ["trace", SIGNAL_ID, "--spans-dir", str(spans_dir)], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    names = [
        "POST /v1/signals",
        "signal.record",
        "signal.accepted.v1 publish",
        "signal.accepted.v1 process",
        "oms.plan",
    ]
    rows = [next(i for i, line in enumerate(lines) if f" {name} " in line) for name in names]
    assert rows == sorted(rows), "spans are drawn depth first, siblings by start time"
    column = {name: lines[row].index(name) for name, row in zip(names, rows, strict=True)}
    assert column["signal.record"] > column["POST /v1/signals"]
    assert column["signal.accepted.v1 publish"] == column["signal.record"]
    assert column["signal.accepted.v1 process"] > column["signal.accepted.v1 publish"]
    assert column["oms.plan"] > column["signal.accepted.v1 process"]
    assert "ordo-order" in lines[rows[3]] and "ordo-signal" in lines[rows[0]]
    assert TRACE in result.stdout
    assert OTHER_TRACE not in result.stdout


def test_an_order_id_finds_the_whole_trace_of_its_signal(tmp_path: Path) -> None:
    spans_dir = two_service_spans(tmp_path / "spans")

    result = runner.invoke(app, ["trace", ORDER_ID, "--spans-dir", str(spans_dir), "--json"])

    assert result.exit_code == 0, result.output
    [trace] = json.loads(result.stdout)
    assert trace["trace_id"] == TRACE
    assert trace["services"] == ["ordo-signal", "ordo-order"]
    assert [(span["name"], span["depth"]) for span in trace["spans"]] == [
        ("POST /v1/signals", 0),
        ("signal.record", 1),
        ("signal.accepted.v1 publish", 1),
        ("signal.accepted.v1 process", 2),
        ("oms.plan", 3),
    ]
    assert trace["duration_ms"] == 35.0
    assert trace["spans"][3]["start_ms"] == 11.0


def test_an_unknown_id_is_an_error_that_says_where_it_looked(tmp_path: Path) -> None:
    spans_dir = two_service_spans(tmp_path / "spans")

    result = runner.invoke(app, ["trace", "no-such-signal", "--spans-dir", str(spans_dir)])

    assert result.exit_code == EXIT_NOT_FOUND
    assert "no trace mentions 'no-such-signal'" in result.stderr
    assert "6 spans read" in result.stderr  # and the half-written line skipped


def test_a_missing_spans_directory_is_reported(tmp_path: Path) -> None:
    result = runner.invoke(app, ["trace", SIGNAL_ID, "--var-dir", str(tmp_path)])

    assert result.exit_code == EXIT_NOT_FOUND
    assert "no spans directory" in result.stderr


def test_a_span_whose_parent_was_not_exported_becomes_a_root(tmp_path: Path) -> None:
    spans_dir = tmp_path / "spans"
    spans_dir.mkdir()
    write_jsonl(
        spans_dir / "order.jsonl",
        [
            span_record(
                "signal.accepted.v1 process",
                "ordo-order",
                "b000000000000001",
                "ffffffffffffffff",
                5,
                10,
                attributes={"messaging.message.conversation_id": SIGNAL_ID},
            ),
            span_record("oms.plan", "ordo-order", "b000000000000002", "b000000000000001", 6, 1),
        ],
    )

    [trace] = find_traces(read_span_files(spans_dir).spans, SIGNAL_ID)

    assert [(row.span.name, row.depth) for row in trace.rows] == [
        ("signal.accepted.v1 process", 0),
        ("oms.plan", 1),
    ]


def test_a_trace_id_finds_its_trace(tmp_path: Path) -> None:
    spans = read_span_files(two_service_spans(tmp_path / "spans")).spans

    [trace] = find_traces(spans, f"0x{OTHER_TRACE}")

    assert trace.trace_id == OTHER_TRACE


@given(
    offset=st.floats(min_value=0, max_value=1e6),
    duration=st.floats(min_value=0, max_value=1e6),
    total=st.floats(min_value=0, max_value=1e6),
    width=st.integers(min_value=1, max_value=200),
)
def test_a_bar_always_fits_the_timeline_and_is_never_empty(
    offset: float, duration: float, total: float, width: int
) -> None:
    start, length = bar_cells(min(offset, total), min(duration, total), total, width)

    assert 0 <= start < width
    assert length >= 1
    assert start + length <= width


def test_jaeger_traces_become_the_same_spans() -> None:
    start_us = int(T0.timestamp() * 1_000_000)
    trace = {
        "traceID": TRACE,
        "spans": [
            {
                "traceID": TRACE,
                "spanID": "a000000000000001",
                "operationName": "POST /v1/signals",
                "references": [],
                "startTime": start_us,
                "duration": 20_000,
                "tags": [{"key": "ordo.signal_id", "type": "string", "value": SIGNAL_ID}],
                "processID": "p1",
            },
            {
                "traceID": TRACE,
                "spanID": "b000000000000001",
                "operationName": "signal.accepted.v1 process",
                "references": [
                    {"refType": "CHILD_OF", "traceID": TRACE, "spanID": "a000000000000001"}
                ],
                "startTime": start_us + 11_000,
                "duration": 5_000,
                "tags": [{"key": "otel.status_code", "type": "string", "value": "ERROR"}],
                "processID": "p2",
            },
        ],
        "processes": {"p1": {"serviceName": "ordo-signal"}, "p2": {"serviceName": "ordo-order"}},
    }

    def jaeger_api(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/api/traces/{TRACE}":
            return httpx.Response(200, json={"data": [trace]})
        return httpx.Response(404, json={"data": None})

    with httpx.Client(transport=httpx.MockTransport(jaeger_api)) as client:
        spans = jaeger.fetch_spans(client, "http://jaeger:16686/", TRACE)

    [found] = find_traces(spans, SIGNAL_ID)
    assert [(row.span.name, row.span.service, row.depth) for row in found.rows] == [
        ("POST /v1/signals", "ordo-signal", 0),
        ("signal.accepted.v1 process", "ordo-order", 1),
    ]
    assert found.failed
    assert found.duration_ms == 20.0


def test_jaeger_is_searched_by_tag_when_the_id_is_not_a_trace_id() -> None:
    asked: list[httpx.URL] = []

    def jaeger_api(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        if request.url.path == "/api/services":
            return httpx.Response(200, json={"data": ["ordo-signal"]})
        return httpx.Response(200, json={"data": []})

    with httpx.Client(transport=httpx.MockTransport(jaeger_api)) as client:
        assert jaeger.fetch_spans(client, "http://jaeger:16686", SIGNAL_ID) == []

    searched = [url for url in asked if url.path == "/api/traces"]
    assert searched, "a tag search per id attribute"
    assert all(list(json.loads(url.params["tags"]).values()) == [SIGNAL_ID] for url in searched)
    assert all(url.params["service"] == "ordo-signal" for url in searched)
    assert not any(url.path.startswith("/api/traces/") for url in asked)


def test_an_address_that_is_not_jaegers_api_is_a_clear_error() -> None:
    def login_page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html><body>Sign in</body></html>")

    with (
        httpx.Client(transport=httpx.MockTransport(login_page)) as client,
        pytest.raises(CliError, match="did not answer as Jaeger's query API does"),
    ):
        jaeger.fetch_spans(client, "http://proxy.example", TRACE)
