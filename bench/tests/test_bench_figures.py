"""The bench's arithmetic and its floor: what its figures are made of, checked on small inputs."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordo.bench.floor import HOPS, measure_floor
from ordo.bench.hops import SEGMENTS, breakdown
from ordo.bench.report import aims, memory_growth
from ordo.bench.stats import Latency, percentile
from ordo.cli.spans import Span
from ordo.kit.embedded import NatsServer


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1))
def test_a_percentile_is_one_of_the_samples_and_grows_with_the_rank(samples: list[float]) -> None:
    ordered = sorted(samples)
    p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
    assert p50 in ordered and p99 in ordered
    assert ordered[0] <= p50 <= p99 <= ordered[-1]


def test_nearest_rank_percentiles_of_a_hundred_samples() -> None:
    latency = Latency.of([float(n) for n in range(100, 0, -1)])
    assert (latency.p50, latency.p95, latency.p99, latency.max) == (50, 95, 99, 100)


def test_no_samples_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="no samples"):
        Latency.of([])


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _span(span_id: str, name: str, service: str, kind: str, start_ms: float, end_ms: float,
          parent: str | None = None) -> Span:  # fmt: skip
    return Span(
        trace_id="t1",
        span_id=span_id,
        parent_id=parent,
        name=name,
        service=service,
        kind=kind,
        start=T0 + timedelta(milliseconds=start_ms),
        end=T0 + timedelta(milliseconds=end_ms),
    )


def _one_signal_trace() -> list[Span]:
    """A webhook at 0 ms and the fill recorded at 40 ms, each hop 2 ms in transit."""
    spans = [_span("w", "POST /v1/webhooks/tradingview", "ordo-signal", "SERVER", 0, 5)]
    hops = [
        ("signal.accepted.v1", "ordo-order", 4, 6, 12),
        ("order.proposed.v1", "ordo-risk", 11, 13, 20),
        ("risk.approved.v1", "ordo-execution", 19, 21, 30),
        ("exec.report.v1", "ordo-order", 29, 31, 40),
    ]
    for n, (subject, receiver, sent, received, handled) in enumerate(hops):
        spans += [
            _span(f"c{n}", f"{subject} create", "x", "PRODUCER", sent - 1, sent - 1),
            _span(f"p{n}", f"{subject} publish", "x", "PRODUCER", sent - 1, sent, f"c{n}"),
            _span(f"r{n}", f"{subject} process", receiver, "CONSUMER", received, handled, f"c{n}"),
        ]
    return spans


def test_the_segments_of_a_trace_add_up_to_its_end_to_end_time() -> None:
    found = breakdown(_one_signal_trace())
    assert found.traces == 1
    assert found.end_to_end.p50 == pytest.approx(40)
    assert sum(found.segments[name].p50 for name in SEGMENTS) == pytest.approx(40)
    assert found.segments["signal.accepted.v1 in transit"].p50 == pytest.approx(2)
    assert found.segments["order records the fill"].p50 == pytest.approx(9)


def test_a_trace_that_never_reached_the_fill_is_left_out() -> None:
    incomplete = [s for s in _one_signal_trace() if s.span_id != "r3"]
    with pytest.raises(ValueError, match="no samples"):
        breakdown(incomplete)


def test_the_aims_compare_with_the_floor() -> None:
    figures = {
        "floor": {"throughput_per_second": 1000.0, "latency_ms": {"p50": 4.0}},
        "latency": [{"rate_per_second": 200, "from_spans": {"end_to_end_ms": {"p50": 10.0}}}],
        "throughput": {"sustained_per_second": 600.0},
        "memory": {"idle_bytes": {"order": 100}, "after_bytes": {"order": 115}},
    }
    result = aims(figures)
    assert result["throughput_share_of_floor"] == {"value": 0.6, "aim": ">= 0.5", "met": True}
    assert result["p50_multiple_of_floor_at_200"]["met"] is True
    assert result["worst_memory_growth"]["met"] is False
    assert memory_growth(figures["memory"]) == {"order": pytest.approx(0.15)}


async def test_the_floor_relays_every_message_through_four_hops(nats_server: NatsServer) -> None:
    result = await measure_floor(nats_server, rate=200, latency_messages=20, throughput_messages=50)
    assert HOPS == 4
    assert result.latency.count == 20  # every paced message came out of the last hop
    assert result.throughput > 0
