"""Percentiles and rates as every benchmark prints them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["latency_summary"]


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max (ms, to the µs: a single Redis read takes ~0.1 ms, and a ratio of values rounded to
    0.01 ms would be off by up to 10 %) and the sample count; NaN percentiles for no samples."""
    if not samples_ms:
        return {"samples": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan"),
                "max_ms": float("nan")}
    values = np.asarray(samples_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"samples": len(values), "p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3),
            "p99_ms": round(float(p99), 3), "max_ms": round(float(values.max()), 3)}
