"""Repeats that compare sides without an order effect: who runs first, each side's spread, the verdict.

A benchmark that always runs side A before side B hands B whatever A leaves behind (a warm
cache, a settled allocator, a busier or quieter machine), and that order effect reads as a
ratio. Here the order rotates by one side each repeat (two sides: AB, BA, AB, ...), so each
side goes first in turn. A side's rate is reported as mean ± sd (min-max) over the repeats
and a ratio by its per-repeat values; when those are not all on one side of 1.0 the repeats
disagree in direction and the verdict is "within noise", not a ratio.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterable, Sequence


def schedule(sides: Sequence[str], repeats: int) -> list[tuple[int, str]]:
    """(repeat, side) pairs in the order to run them: every side once a repeat, rotated by one each repeat."""
    return [(repeat, sides[(repeat + slot) % len(sides)]) for repeat in range(repeats) for slot in range(len(sides))]


def per_side(results: Iterable[tuple[str, float]]) -> dict[str, list[float]]:
    """Each side's values in the order they came (repeat order, when `results` follows `schedule`)."""
    grouped: dict[str, list[float]] = {}
    for side, value in results:
        grouped.setdefault(side, []).append(value)
    return grouped


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-repeat quotients of two sides' values (the same number of repeats each)."""
    return [top / bottom for top, bottom in zip(numerators, denominators, strict=True)]


def spread(values: Sequence[float], digits: int = 1) -> str:
    """`mean ± sd (min-max)` over the repeats; sd is the sample standard deviation."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def within_noise(values: Sequence[float], neutral: float = 1.0) -> bool:
    """Whether `values` (per-repeat ratios, or an interval's two ends) are not all on one side of `neutral`."""
    return min(values) <= neutral <= max(values)


def listing(values: Sequence[float]) -> str:
    """Per-repeat ratios as printed: three decimals, in repeat order."""
    return ", ".join(f"{value:.3f}" for value in values)


def verdict(label: str, per_repeat: Sequence[float]) -> str:
    """A ratio's line: "within noise" when the repeats disagree in direction, else the median ratio."""
    if within_noise(per_repeat):
        return f"{label}: within noise (per-repeat {listing(per_repeat)}: not all on one side of 1.0)"
    return f"{label}: {statistics.median(per_repeat):.3f}x median (per-repeat {listing(per_repeat)})"


def repeat_count(text: str) -> int:
    """argparse type of a repeat count: an integer of at least 2, so that each of two sides goes first once."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of repeats") from None
    if count < 2:
        raise argparse.ArgumentTypeError(f"{count} is too few to alternate which side goes first: use 2 or more")
    return count
