"""The report rendered: a rich table, an accuracy-vs-budget chart, comparisons, bins and
saturation per suite for the terminal, or the same as markdown, the rows as CSV, all as JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from evals.report_rows import BinShare, Comparison, Report, Row
from evals.saturation import saturation_text

CHART_WIDTH = 30
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


def isolation_text(report: Report, suite: str) -> str | None:
    """`code ran in: jail (40 records)`, or None for a suite without code records."""
    counts = report.isolation.get(suite)
    if not counts:
        return None
    shown = ", ".join(f"{mode} ({count} records)" for mode, count in sorted(counts.items()))
    weaker = "; process = opt-in, no OS jail" if "process" in counts else ""
    return f"code ran in: {shown}{weaker}"


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
