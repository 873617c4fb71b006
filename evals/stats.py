"""Statistics for the report: bootstrap intervals, paired differences, percentiles, Pareto front.

Resampling uses a fixed seed, so the same records always give the same report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float


def bootstrap_mean(
    values: Sequence[float], *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """Mean of `values` with a percentile-bootstrap interval (resampling items with replacement)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap needs at least one value")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(data.mean()), float(low), float(high))


def paired_bootstrap(
    first: Sequence[float],
    second: Sequence[float],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean of `first - second` over paired items, with a bootstrap interval that resamples pairs."""
    if len(first) != len(second):
        raise ValueError(f"paired samples differ in length: {len(first)} vs {len(second)}")
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    return bootstrap_mean(differences.tolist(), confidence=confidence, resamples=resamples, seed=seed)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linearly interpolated between order statistics."""
    if not values:
        raise ValueError("percentile needs at least one value")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def pareto_front(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of (cost, value) points no other point dominates (cost no higher, value no lower,
    one of them strictly better)."""
    front = set()
    for index, (cost, value) in enumerate(points):
        dominated = any(
            other_cost <= cost and other_value >= value and (other_cost < cost or other_value > value)
            for other_cost, other_value in points
        )
        if not dominated:
            front.add(index)
    return front
