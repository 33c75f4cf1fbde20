"""Summaries of measured samples (latencies, times to first token): one definition of p50 and p95
for every report and bench, so that figures from different benches compare."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def percentile(values: Iterable[float], share: float) -> float | None:
    """The sample at ``share`` (0.95 for p95) of the sorted samples, by nearest rank rounded down.

    A sample that was measured, never an interpolation between two; None when there are none.
    """
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))] if ordered else None


def p50_p95(values: Iterable[float], digits: int = 2) -> dict[str, float | None]:
    """{"p50": median, "p95": `percentile` 0.95}, rounded to ``digits``; None for no samples.

    The median is the usual one (the mean of the two middle samples of an even count).
    """
    values = list(values)
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": round(statistics.median(values), digits), "p95": round(percentile(values, 0.95), digits)}
