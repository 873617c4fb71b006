"""The report's figures, aggregated from eval records (`evals.report` reads and renders them).

Per suite, one row per (strategy, budget): accuracy with a 95% bootstrap interval, mean and
p95 generated tokens, latency p50/p95, accuracy per 1k tokens, and whether the row is on the
Pareto front of accuracy vs mean tokens; where every record carries `usage.cost` (eFLOPs,
`reasoner.cost`), the mean cost and the Pareto front in cost too. Per strategy, the saturation
point (`evals.saturation`); the paired bootstrap difference between two strategies on the
problems both solved at a budget; for records with a `difficulty_bin` metric (`auto`), the
share of prompts and the tokens per bin; where code ran, the records per isolation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evals.saturation import DEFAULT_MIN_GAIN_PER_1K_TOKENS, SaturationPoint, saturation_points
from evals.stats import Interval, bootstrap_mean, paired_bootstrap, pareto_front, percentile
from reasoner.errors import SuiteError

BIN_ORDER = {"easy": 0, "normal": 1, "hard": 2}


@dataclass
class Row:
    """The figures of one (suite, strategy, budget) cell."""

    suite: str
    strategy: str
    budget: int
    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    mean_tokens: float
    p95_tokens: float
    latency_p50_s: float
    latency_p95_s: float
    accuracy_per_1k_tokens: float | None
    pareto: bool = False
    mean_cost: float | None = None
    cost_pareto: bool = False
    saturation_budget: int | None = None
    """The strategy's saturation budget in tokens (`evals.saturation`), None where it has none."""


@dataclass
class Comparison:
    """`first` minus `second` accuracy on the problems both have at one budget, paired bootstrap."""

    suite: str
    budget: int
    first: str
    second: str
    pairs: int
    difference: float
    ci_low: float
    ci_high: float


@dataclass
class BinShare:
    """For one (suite, strategy, budget) row of `auto`: one difficulty bin's prompts and tokens."""

    suite: str
    strategy: str
    budget: int
    bin: str
    share: float
    tokens: int


@dataclass
class Report:
    rows: list[Row]
    comparisons: list[Comparison] = field(default_factory=list)
    bins: list[BinShare] = field(default_factory=list)
    malformed_lines: dict[str, list[int]] = field(default_factory=dict)
    duplicates: int = 0
    isolation: dict[str, dict[str, int]] = field(default_factory=dict)
    saturation: list[SaturationPoint] = field(default_factory=list)

    @property
    def suites(self) -> list[str]:
        return list(dict.fromkeys(row.suite for row in self.rows))


def strategy_label(record: dict[str, Any]) -> str:
    """The strategy name, with the run's options when there were any: `direct[temperature=0.7]`."""
    options = record.get("options") or {}
    if not options:
        return str(record["strategy"])
    shown = ",".join(f"{key}={value}" for key, value in sorted(options.items()))
    return f"{record['strategy']}[{shown}]"


def build_report(
    records: Sequence[dict[str, Any]],
    compare: tuple[str, str] | None = None,
    saturation_threshold: float = DEFAULT_MIN_GAIN_PER_1K_TOKENS,
) -> Report:
    """Rows per (suite, strategy, budget), Pareto marks and saturation points per suite, and the comparison.

    `saturation_threshold`: accuracy gained per 1k more tokens below which more compute stops paying.
    """
    cells: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for record in records:
        check_record(record)
        cells.setdefault((record["suite"], strategy_label(record), record["budget"]), []).append(record)
    rows = [_row(suite, label, budget, cell) for (suite, label, budget), cell in sorted(cells.items())]
    if not rows:
        raise SuiteError("no records to report; run `reasoner eval --out FILE` first")
    for suite in dict.fromkeys(row.suite for row in rows):
        suite_rows = [row for row in rows if row.suite == suite]
        for index in pareto_front([(row.mean_tokens, row.accuracy) for row in suite_rows]):
            suite_rows[index].pareto = True
        priced = [row for row in suite_rows if row.mean_cost is not None]
        for index in pareto_front([(row.mean_cost or 0.0, row.accuracy) for row in priced]):
            priced[index].cost_pareto = True
    comparisons = _compare(records, compare) if compare else []
    saturation = saturation_points(records, strategy_label, saturation_threshold)
    budgets = {(point.suite, point.strategy): point.budget for point in saturation}
    for row in rows:
        row.saturation_budget = budgets[(row.suite, row.strategy)]
    return Report(rows, comparisons, _bin_shares(cells), isolation=_isolation_counts(records), saturation=saturation)


def check_record(record: dict[str, Any]) -> None:
    """Refuse a record whose fields the report reads are missing or of the wrong type, naming the field."""
    problem = _field_problem(record)
    if problem is not None:
        raise SuiteError(f"record {str(record.get('key'))[:200]!r} {problem}; was it written by `reasoner eval`?")


def _field_problem(record: dict[str, Any]) -> str | None:
    for name in ("suite", "problem_id", "strategy"):
        if not isinstance(record.get(name), str):
            return f"has no text field {name!r}"
    budget = record.get("budget")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        return f"has budget {budget!r}, not a positive whole number"
    if not isinstance(record.get("correct"), bool):
        return f"has correct {record.get('correct')!r}, not true or false"
    usage = record.get("usage")
    tokens = usage.get("generated_tokens") if isinstance(usage, dict) else None
    if not _finite(tokens):
        return f"has usage.generated_tokens {tokens!r}, not a number of tokens"
    if isinstance(usage, dict) and usage.get("cost") is not None and not _finite(usage["cost"]):
        return f"has usage.cost {usage['cost']!r}, not a number of eFLOPs"
    if not _finite(record.get("latency_s")):
        return f"has latency_s {record.get('latency_s')!r}, not a number of seconds"
    for name in ("options", "metrics"):
        if record.get(name) is not None and not isinstance(record[name], dict):
            return f"has {name} {str(record[name])[:80]}, not an object"
    if "isolation" in record and not isinstance(record["isolation"], str):
        return f"has isolation {record['isolation']!r}, not a name"
    return None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _isolation_counts(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per suite whose records say where code ran: records per isolation (`unrecorded` for older ones)."""
    graded = {record["suite"] for record in records if "isolation" in record}
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        if record["suite"] in graded:
            mode = str(record.get("isolation", "unrecorded"))
            counts.setdefault(record["suite"], {}).setdefault(mode, 0)
            counts[record["suite"]][mode] += 1
    return counts


def _bin_shares(cells: dict[tuple[str, str, int], list[dict[str, Any]]]) -> list[BinShare]:
    shares = []
    for (suite, label, budget), cell in sorted(cells.items()):
        per_bin: dict[str, list[int]] = {}
        for record in cell:
            name = (record.get("metrics") or {}).get("difficulty_bin")
            if isinstance(name, str):
                per_bin.setdefault(name, []).append(int(record["usage"]["generated_tokens"]))
        for name in sorted(per_bin, key=lambda item: (BIN_ORDER.get(item, len(BIN_ORDER)), item)):
            shares.append(BinShare(suite, label, budget, name, len(per_bin[name]) / len(cell), sum(per_bin[name])))
    return shares


def _row(suite: str, label: str, budget: int, cell: list[dict[str, Any]]) -> Row:
    correct = [1.0 if record["correct"] else 0.0 for record in cell]
    tokens = [float(record["usage"]["generated_tokens"]) for record in cell]
    latency = [float(record["latency_s"]) for record in cell]
    costs = [record["usage"].get("cost") for record in cell]
    accuracy = bootstrap_mean(correct)
    mean_tokens = sum(tokens) / len(tokens)
    return Row(
        suite=suite,
        strategy=label,
        budget=budget,
        n=len(cell),
        accuracy=accuracy.estimate,
        ci_low=accuracy.low,
        ci_high=accuracy.high,
        mean_tokens=mean_tokens,
        p95_tokens=percentile(tokens, 95),
        latency_p50_s=percentile(latency, 50),
        latency_p95_s=percentile(latency, 95),
        accuracy_per_1k_tokens=accuracy.estimate / (mean_tokens / 1000) if mean_tokens else None,
        mean_cost=None if None in costs else sum(float(cost) for cost in costs) / len(costs),
    )


def _compare(records: Sequence[dict[str, Any]], compare: tuple[str, str]) -> list[Comparison]:
    first, second = compare
    labels = {strategy_label(record) for record in records}
    for name in compare:
        if name not in labels:
            raise SuiteError(f"--compare: no records for strategy {name!r}; found: {', '.join(sorted(labels))}")
    outcomes: dict[tuple[str, int, str], dict[str, float]] = {}
    for record in records:
        label = strategy_label(record)
        if label in compare:
            cell = outcomes.setdefault((record["suite"], int(record["budget"]), label), {})
            cell[record["problem_id"]] = 1.0 if record["correct"] else 0.0
    comparisons = []
    for suite, budget in sorted({(suite, budget) for suite, budget, _ in outcomes}):
        left = outcomes.get((suite, budget, first), {})
        right = outcomes.get((suite, budget, second), {})
        shared = sorted(set(left) & set(right))
        if not shared:
            continue
        difference: Interval = paired_bootstrap([left[key] for key in shared], [right[key] for key in shared])
        comparisons.append(
            Comparison(suite, budget, first, second, len(shared), difference.estimate, difference.low, difference.high)
        )
    return comparisons
