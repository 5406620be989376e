"""Latency summaries: the percentiles every figure of ``make bench`` is reported in."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Latency:
    """Milliseconds over ``count`` samples (nearest-rank percentiles)."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> "Latency":
        if not samples_ms:
            raise ValueError("no samples: nothing completed, so there is no latency to report")
        ordered = sorted(samples_ms)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1],
        )

    def to_json(self) -> dict[str, Any]:
        return {key: round(value, 3) for key, value in asdict(self).items()}


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of already sorted samples: always one of the samples."""
    if not ordered:
        raise ValueError("percentile of no samples")
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]
