"""The comparison report, computed from eval records only.

Per suite, one row per (strategy, budget): accuracy with a 95% bootstrap interval, mean and
p95 generated tokens, latency p50/p95, accuracy per 1k tokens, and whether the row is on the
Pareto front of accuracy vs mean tokens; where every record carries `usage.cost` (eFLOPs,
`reasoner.cost`), the mean cost and the Pareto front in cost too. An accuracy-vs-budget
chart per strategy, and the paired bootstrap difference between two strategies on the
problems both solved at a budget. Per strategy, the saturation point (`evals.saturation`): the
budget past which the fitted accuracy gains less than a threshold per 1k more tokens.
Rendered with rich, or as markdown, CSV or JSON. Rows whose records carry a
`difficulty_bin` metric (`auto`) also get the share of prompts and the tokens per bin.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.records import read_records
from evals.saturation import DEFAULT_MIN_GAIN_PER_1K_TOKENS, SaturationPoint, saturation_points, saturation_text
from evals.stats import Interval, bootstrap_mean, paired_bootstrap, pareto_front, percentile
from reasoner.errors import SuiteError

CHART_WIDTH = 30
BIN_ORDER = {"easy": 0, "normal": 1, "hard": 2}
COLUMNS = (
    "suite",
    "strategy",
    "budget",
    "n",
    "accuracy",
    "ci_low",
    "ci_high",
    "mean_tokens",
    "p95_tokens",
    "latency_p50_s",
    "latency_p95_s",
    "accuracy_per_1k_tokens",
    "pareto",
    "mean_cost",
    "cost_pareto",
    "saturation_budget",
)


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


def load_report(
    paths: Sequence[str | Path],
    compare: tuple[str, str] | None = None,
    saturation_threshold: float = DEFAULT_MIN_GAIN_PER_1K_TOKENS,
) -> Report:
    """Read record files (a key seen twice counts once) and build the report."""
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    malformed: dict[str, list[int]] = {}
    duplicates = 0
    for path in paths:
        loaded = read_records(path)
        if loaded.malformed_lines:
            malformed[str(path)] = loaded.malformed_lines
        for record in loaded.records:
            if record["key"] in seen:
                duplicates += 1
                continue
            seen.add(record["key"])
            records.append(record)
    report = build_report(records, compare, saturation_threshold)
    report.malformed_lines = malformed
    report.duplicates = duplicates
    return report


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


def isolation_text(report: Report, suite: str) -> str | None:
    """`code ran in: jail (40 records)`, or None for a suite without code records."""
    counts = report.isolation.get(suite)
    if not counts:
        return None
    shown = ", ".join(f"{mode} ({count} records)" for mode, count in sorted(counts.items()))
    weaker = "; process = opt-in, no OS jail" if "process" in counts else ""
    return f"code ran in: {shown}{weaker}"


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


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def row_cells(row: Row) -> list[str]:
    """A row as the table shows it, in `HEADERS` order."""
    per_1k = "n/a" if row.accuracy_per_1k_tokens is None else f"{row.accuracy_per_1k_tokens:.3f}"
    return [
        row.strategy,
        str(row.budget),
        str(row.n),
        _percent(row.accuracy),
        f"{100 * row.ci_low:.1f}-{100 * row.ci_high:.1f}",
        f"{row.mean_tokens:.1f}",
        f"{row.p95_tokens:.1f}",
        f"{row.latency_p50_s:.2f}",
        f"{row.latency_p95_s:.2f}",
        per_1k,
        "*" if row.pareto else "",
        "n/a" if row.mean_cost is None else f"{row.mean_cost:.3g}",
        "*" if row.cost_pareto else "",
    ]


HEADERS = [
    "strategy",
    "budget",
    "n",
    "acc",
    "95% CI",
    "tok",
    "tok p95",
    "lat p50",
    "lat p95",
    "acc/1k",
    "front",
    "cost",
    "cost front",
]


def _comparison_text(item: Comparison) -> str:
    return (
        f"{item.first} - {item.second} @ {item.budget}: {100 * item.difference:+.1f} pts "
        f"[{100 * item.ci_low:+.1f}, {100 * item.ci_high:+.1f}] over {item.pairs} paired problems"
    )


def _bin_text(item: BinShare) -> str:
    return (
        f"{item.strategy} @ {item.budget}: {item.bin} {_percent(item.share)} of prompts, "
        f"{item.tokens} tokens in that bin"
    )


def accuracy_chart(report: Report, suite: str) -> list[str]:
    """One bar per (strategy, budget): accuracy vs budget, as text lines."""
    rows = [row for row in report.rows if row.suite == suite]
    width = max(len(row.strategy) for row in rows)
    budget_width = max(len(str(row.budget)) for row in rows)
    lines = []
    for strategy in dict.fromkeys(row.strategy for row in rows):
        for index, row in enumerate(sorted((r for r in rows if r.strategy == strategy), key=lambda r: r.budget)):
            filled = round(row.accuracy * CHART_WIDTH)
            name = strategy if index == 0 else ""
            bar = "█" * filled + "·" * (CHART_WIDTH - filled)
            lines.append(f"{name:<{width}} {row.budget:>{budget_width}} {bar} {_percent(row.accuracy)}")
    return lines


def render_rich(report: Report, console: Console) -> None:
    """Tables, charts and comparisons for the terminal."""
    for suite in report.suites:
        table = Table(
            title=f"{suite}: tok = mean generated tokens, cost = mean eFLOPs, lat in s, * = on the Pareto front"
        )
        for header in HEADERS:
            table.add_column(header, justify="left" if header == "strategy" else "right", no_wrap=True)
        for row in report.rows:
            if row.suite == suite:
                table.add_row(*row_cells(row))
        console.print(table)
        console.print(f"[b]accuracy vs budget ({suite})[/b]")
        for line in accuracy_chart(report, suite):
            console.print(line, highlight=False)
        for item in report.comparisons:
            if item.suite == suite:
                console.print(_comparison_text(item), highlight=False)
        for share in report.bins:
            if share.suite == suite:
                console.print(_bin_text(share), highlight=False)
        for point in report.saturation:
            if point.suite == suite:
                console.print(f"saturation: {saturation_text(point)}", highlight=False)
        if (isolation := isolation_text(report, suite)) is not None:
            console.print(isolation, highlight=False)
    for path, lines in report.malformed_lines.items():
        console.print(f"skipped malformed lines in {path}: {', '.join(map(str, lines))}", highlight=False)
    if report.duplicates:
        console.print(f"ignored {report.duplicates} duplicate records", highlight=False)


def render_markdown(report: Report) -> str:
    """One pipe table per suite, its chart in a code block, and the comparisons."""
    parts = []
    for suite in report.suites:
        parts.append(f"## {suite}\n")
        parts.append("| " + " | ".join(HEADERS) + " |")
        parts.append("|" + "|".join("---" for _ in HEADERS) + "|")
        parts += ["| " + " | ".join(row_cells(row)) + " |" for row in report.rows if row.suite == suite]
        parts += ["", "```", *accuracy_chart(report, suite), "```", ""]
        parts += [f"- {_comparison_text(item)}" for item in report.comparisons if item.suite == suite]
        parts += [f"- saturation: {saturation_text(point)}" for point in report.saturation if point.suite == suite]
        if (isolation := isolation_text(report, suite)) is not None:
            parts += [f"- {isolation}"]
    return "\n".join(parts).rstrip() + "\n"


def render_csv(report: Report) -> str:
    """The summary rows, one per (suite, strategy, budget), with raw numbers."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()


def render_json(report: Report) -> str:
    """Rows, comparisons, malformed lines and duplicates as one JSON document."""
    return json.dumps(asdict(report), indent=2) + "\n"
