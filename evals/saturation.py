"""Saturation points: the budget past which more compute stops paying, per strategy.

Model (TTSPM, *Scaling over Scaling*, Wang et al. 2025, arXiv 2505.20522). Each unit of
compute (one more sample in parallel scaling, one more round of thinking in sequential
scaling) succeeds with probability `p` where the ones before failed, so after `k` units

    F(k) = F_max * (1 - (1 - p) ** k)

(the paper derives this bound for both paradigms: at-least-one-correct of `k` samples, and
the absorbing correct state of a `k`-step Markov chain). The gain of the next unit is
`F(k + 1) - F(k) = F_max * p * (1 - p) ** k`; with `B` tokens per unit, the saturation point
is the first `k` where that gain per token falls below the threshold `epsilon`:

    k* = ceil( ln(epsilon * B / (F_max * p)) / ln(1 - p) ),   at least 1,

and the saturation budget is `k* * B` tokens. (The paper states saturation as the marginal gain
per unit of cost falling below a threshold; the closed form above is our derivation of it.)

How our fit deviates from the paper:
- The unit is the smallest budget a strategy was measured at (`B = b0`), and a record at
  budget `b` has spent `k = b / b0` units, whatever the strategy does with them: eval records
  know budgets, not samples or rounds.
- The paper estimates `p` per problem from many attempts; eval records hold one attempt per
  (problem, budget), so we fit one pooled `p` and the ceiling `F_max` per strategy: weighted
  least squares (weights: records per budget) of `F` against the accuracy at every measured
  budget (`F_max` in closed form for each `p`, `p` by a grid on `-ln(1 - p)` then two zooms).
- A strategy whose accuracy never rises (all wrong, all right, flat or falling) saturates at
  its smallest budget: nothing measured says more compute pays.
- When `k* * b0` is past the largest measured budget the strategy is reported as still rising
  (the extrapolated budget is given, not trusted).
- Cost: where every record of a strategy carries `usage.cost`, the cost at the saturation
  budget is the mean cost per record interpolated linearly between the measured budgets.

`reasoner report` prints the points; `reasoner calibrate` caps the `auto` policy at them
(`saturation_budgets`, pooled over suites; `controllers.policy.Policy.cap_at_saturation`).

`epsilon` is `min_gain_per_1k_tokens` (accuracy as a fraction gained per 1,000 more budget
tokens), default `DEFAULT_MIN_GAIN_PER_1K_TOKENS` = 0.01: one accuracy point per 1k tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from reasoner.errors import SuiteError

DEFAULT_MIN_GAIN_PER_1K_TOKENS = 0.01
"""One accuracy point (0.01) per 1,000 more budget tokens: below it, more compute stops paying."""
_RATE_GRID = np.geomspace(1e-4, 30.0, 2001)
"""Candidate values of -ln(1 - p): p from 1e-4 to 1 - 1e-13."""
_FLAT = 1e-12

Status = Literal["saturated", "rising", "unfit"]


class SaturationError(SuiteError):
    """A strategy's records cannot be fitted (fewer than two budgets) or the threshold is unusable."""


@dataclass(frozen=True)
class Fit:
    """The fitted model: `F(b) = ceiling * (1 - (1 - p) ** (b / unit_budget))`."""

    unit_budget: int
    p: float
    ceiling: float

    def accuracy(self, budget: float) -> float:
        """The modelled accuracy at `budget` tokens."""
        return self.ceiling * -math.expm1(budget / self.unit_budget * math.log1p(-self.p))


@dataclass
class SaturationPoint:
    """One strategy's saturation point (`status` says whether there is one within the measured budgets)."""

    suite: str
    strategy: str
    status: Status
    budgets: list[int]
    budget: int | None = None
    """The saturation budget in tokens (`saturated` only)."""
    cost: float | None = None
    """Mean eFLOPs per problem at `budget`, where every record carries `usage.cost`."""
    extrapolated_budget: int | None = None
    """`rising` only: where the model puts the saturation point, past the largest measured budget."""
    p: float | None = None
    ceiling: float | None = None
    reason: str = ""


def fit(budgets: Sequence[int], accuracies: Sequence[float], weights: Sequence[float] | None = None) -> Fit:
    """Fit `F_max` and `p` to the accuracy at each budget (module docstring); needs two or more budgets."""
    if len(set(budgets)) < 2:
        shown = ", ".join(str(budget) for budget in sorted(set(budgets))) or "none"
        raise SaturationError(f"cannot fit a saturation point from one budget ({shown}); measure two or more budgets")
    unit = min(budgets)
    units = np.array([budget / unit for budget in budgets], dtype=float)
    observed = np.array(accuracies, dtype=float)
    weight = np.ones_like(observed) if weights is None else np.array(weights, dtype=float)
    rates = _RATE_GRID
    for _ in range(3):
        errors, ceilings = _errors(rates, units, observed, weight)
        best = int(np.argmin(errors))
        low, high = rates[max(best - 1, 0)], rates[min(best + 1, len(rates) - 1)]
        best_rate, best_ceiling = float(rates[best]), float(ceilings[best])
        rates = np.linspace(low, high, 201)
    return Fit(unit, float(-math.expm1(-best_rate)), best_ceiling)


def _errors(
    rates: np.ndarray, units: np.ndarray, observed: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted squared error and best ceiling (in [0, 1]) for every candidate rate."""
    shape = -np.expm1(-np.outer(rates, units))
    ceilings = np.clip((shape * observed * weight).sum(axis=1) / (shape**2 * weight).sum(axis=1), 0.0, 1.0)
    errors = (weight * (observed - ceilings[:, None] * shape) ** 2).sum(axis=1)
    return errors, ceilings


def saturation_units(model: Fit, min_gain_per_1k_tokens: float) -> int:
    """`k*`: the units after which one more unit gains less than the threshold per token."""
    per_token = min_gain_per_1k_tokens / 1000
    first_gain = model.ceiling * model.p
    if first_gain <= per_token * model.unit_budget or model.p >= 1.0:
        return 1
    units = math.log(per_token * model.unit_budget / first_gain) / math.log1p(-model.p)
    return max(1, math.ceil(units))


def check_threshold(min_gain_per_1k_tokens: float) -> None:
    """Refuse a threshold that is not a positive finite number."""
    value = min_gain_per_1k_tokens
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SaturationError(
            f"saturation threshold {value!r} is not a positive number of accuracy gained per 1k tokens "
            f"(default {DEFAULT_MIN_GAIN_PER_1K_TOKENS})"
        )


def saturation_point(
    suite: str,
    strategy: str,
    records: Sequence[dict[str, Any]],
    min_gain_per_1k_tokens: float = DEFAULT_MIN_GAIN_PER_1K_TOKENS,
) -> SaturationPoint:
    """The saturation point of one strategy's records (every record well-formed, as `check_record` checks)."""
    check_threshold(min_gain_per_1k_tokens)
    cells: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        cells.setdefault(int(record["budget"]), []).append(record)
    budgets = sorted(cells)
    point = SaturationPoint(suite, strategy, "unfit", budgets)
    accuracies = [sum(bool(record["correct"]) for record in cells[budget]) / len(cells[budget]) for budget in budgets]
    try:
        model = fit(budgets, accuracies, [len(cells[budget]) for budget in budgets])
    except SaturationError as exc:
        point.reason = str(exc)
        return point
    point.p, point.ceiling = model.p, model.ceiling
    if max(accuracies) - accuracies[0] <= _FLAT:
        point.status, point.budget = "saturated", budgets[0]
        point.reason = "accuracy never rises above the smallest budget's"
    else:
        saturated = saturation_units(model, min_gain_per_1k_tokens) * model.unit_budget
        if saturated > budgets[-1]:
            point.status, point.extrapolated_budget = "rising", saturated
            point.reason = f"still rising at {budgets[-1]} tokens"
        else:
            point.status, point.budget = "saturated", saturated
    if point.budget is not None:
        point.cost = _interpolated_cost(cells, point.budget)
    return point


def saturation_points(
    records: Sequence[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    min_gain_per_1k_tokens: float = DEFAULT_MIN_GAIN_PER_1K_TOKENS,
) -> list[SaturationPoint]:
    """One saturation point per (suite, strategy `label`), in sorted order."""
    check_threshold(min_gain_per_1k_tokens)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((str(record["suite"]), label(record)), []).append(record)
    return [
        saturation_point(suite, strategy, group, min_gain_per_1k_tokens)
        for (suite, strategy), group in sorted(groups.items())
    ]


def saturation_budgets(
    records: Sequence[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    min_gain_per_1k_tokens: float = DEFAULT_MIN_GAIN_PER_1K_TOKENS,
) -> dict[str, int]:
    """Saturation budget per `label`, over every suite's records together; labels without one are left out."""
    check_threshold(min_gain_per_1k_tokens)
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(label(record), []).append(record)
    caps = {}
    for name, group in groups.items():
        point = saturation_point("", name, group, min_gain_per_1k_tokens)
        if point.budget is not None:
            caps[name] = point.budget
    return caps


def _interpolated_cost(cells: dict[int, list[dict[str, Any]]], budget: int) -> float | None:
    budgets = sorted(cells)
    costs = []
    for measured in budgets:
        values = [(record.get("usage") or {}).get("cost") for record in cells[measured]]
        numbers = [float(value) for value in values if isinstance(value, (int, float)) and not isinstance(value, bool)]
        if len(numbers) < len(values) or not all(math.isfinite(number) for number in numbers):
            return None
        costs.append(sum(numbers) / len(numbers))
    return float(np.interp(budget, budgets, costs))


def saturation_text(point: SaturationPoint) -> str:
    """One line: `direct: saturates at 600 tokens (cost 1.2e+12)`, `still rising`, or why it cannot fit."""
    if point.status == "saturated":
        cost = "" if point.cost is None else f" (cost {point.cost:.3g})"
        why = f"; {point.reason}" if point.reason else ""
        return f"{point.strategy}: saturates at {point.budget} tokens{cost}{why}"
    if point.status == "rising":
        return (
            f"{point.strategy}: no saturation within {point.budgets[-1]} tokens (model: ~{point.extrapolated_budget})"
        )
    return f"{point.strategy}: no saturation point ({point.reason})"
