"""Percentiles as the benchmark reports them."""

from __future__ import annotations

import math


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100) of `values`."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds, rounded for the report, with the sample count."""
    return {
        "p50": round(percentile(latencies_ms, 50), 2),
        "p99": round(percentile(latencies_ms, 99), 2),
        "max": round(max(latencies_ms), 2) if latencies_ms else math.nan,
        "n": len(latencies_ms),
    }
