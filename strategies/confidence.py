"""Token, group and trace confidence from top-k log-probabilities (DeepConf's measures).

Fu et al. 2025, "Deep Think with Confidence":
- token confidence `C_i = -(1/k) * sum_j log P_i(j)` over the k most likely tokens at
  position i (high when the distribution is peaked);
- group confidence: the mean token confidence over a sliding window of `window` tokens;
- trace scores: `lowest_group` (the least group confidence), `bottom_10` (the mean of the
  lowest 10% of group confidences), `tail` (the mean over the last `tail_tokens` tokens) and
  `mean` (over the whole trace). A trace shorter than the window has one group: all of it.

Pure functions, plus `GroupWindow`, the running window an online check feeds token by token.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Literal

import numpy as np

TraceScore = Literal["lowest_group", "bottom_10", "tail", "mean"]
BOTTOM_SHARE = 0.1


def token_confidence(position: dict[int, float], top_k: int) -> float:
    """Minus the mean of the `top_k` largest log-probabilities reported at one position.

    A backend reports the top-k plus the sampled token, so a position may hold k+1 entries;
    only the k largest count. Non-finite entries are left out; none left gives 0.0.
    """
    finite = sorted((value for value in position.values() if math.isfinite(value)), reverse=True)[:top_k]
    return -sum(finite) / len(finite) if finite else 0.0


def token_confidences(logprobs: Sequence[dict[int, float]] | None, top_k: int) -> list[float]:
    """Token confidence of every position of a generation (empty when it carried no logprobs)."""
    return [token_confidence(position, top_k) for position in logprobs or ()]


def group_confidences(confidences: Sequence[float], window: int) -> list[float]:
    """Mean confidence of every full window of `window` tokens; one group of all when shorter."""
    if not confidences:
        return []
    if len(confidences) < window:
        return [sum(confidences) / len(confidences)]
    sums = np.convolve(np.asarray(confidences, dtype=float), np.ones(window), mode="valid")
    return list(sums / window)


def trace_score(confidences: Sequence[float], kind: TraceScore, window: int, tail_tokens: int) -> float:
    """One number for a whole trace, higher is more confident; 0.0 for a trace with no tokens."""
    if not confidences:
        return 0.0
    if kind == "mean":
        return sum(confidences) / len(confidences)
    if kind == "tail":
        tail = confidences[-tail_tokens:]
        return sum(tail) / len(tail)
    groups = group_confidences(confidences, window)
    if kind == "lowest_group":
        return min(groups)
    lowest = sorted(groups)[: max(1, math.floor(len(groups) * BOTTOM_SHARE))]
    return sum(lowest) / len(lowest)


def keep_top(scores: Sequence[float], eta: float) -> list[int]:
    """Indices of the top `eta` percent of `scores`: ceil(eta% of them), at least one; ties keep the earlier."""
    if not scores:
        return []
    count = max(1, math.ceil(len(scores) * eta / 100 - 1e-9))
    ranked = sorted(range(len(scores)), key=lambda index: (-scores[index], index))
    return sorted(ranked[:count])


def stop_threshold(lowest_groups: Sequence[float], eta: float) -> float:
    """The online stop threshold: the (100 - eta)th percentile of warm-up lowest-group confidences."""
    return float(np.percentile(np.asarray(lowest_groups, dtype=float), 100 - eta))


class GroupWindow:
    """The sliding window of an online check: feed token confidences, read the group confidence."""

    def __init__(self, window: int):
        self.window = window
        self._values: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self.tokens = 0

    def push(self, confidence: float) -> float | None:
        """Add one token; the group confidence once the window is full, else None."""
        if len(self._values) == self.window:
            self._sum -= self._values[0]
        self._values.append(confidence)
        self._sum += confidence
        self.tokens += 1
        return self._sum / self.window if len(self._values) == self.window else None
