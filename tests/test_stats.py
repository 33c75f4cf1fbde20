"""rag.evaluation.stats: the one p50/p95 of every report and bench."""

from __future__ import annotations

import random

from rag.evaluation.stats import p50_p95, percentile


def test_p95_is_a_measured_sample_by_nearest_rank_rounded_down():
    samples = list(range(1, 101))  # 1..100: rank int(0.95 * 99) = 94 → the 95th sample
    random.Random(0).shuffle(samples)  # any order: it sorts
    assert percentile(samples, 0.95) == 95 and percentile(samples, 0.0) == 1 and percentile(samples, 1.0) == 100
    assert percentile([3.0, 1.0], 0.95) == 1.0  # two samples: the lower, never an interpolation


def test_p50_is_the_usual_median_and_no_samples_give_none():
    assert p50_p95([4.0, 1.0, 3.0, 2.0]) == {"p50": 2.5, "p95": 3.0}
    assert p50_p95([0.12345, 0.2], digits=3) == {"p50": 0.162, "p95": 0.123}
    assert p50_p95([]) == {"p50": None, "p95": None} and percentile([], 0.95) is None
