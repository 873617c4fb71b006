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

This module reads record files (`load_report`) and is where the report's names are imported
from; the figures are aggregated in `evals.report_rows` and rendered in `evals.report_render`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.records import read_records
from evals.report_render import (
    HEADERS,
    accuracy_chart,
    isolation_text,
    render_csv,
    render_json,
    render_markdown,
    render_rich,
    row_cells,
)
from evals.report_rows import BinShare, Comparison, Report, Row, build_report, check_record, strategy_label
from evals.saturation import DEFAULT_MIN_GAIN_PER_1K_TOKENS

__all__ = [
    "HEADERS",
    "BinShare",
    "Comparison",
    "Report",
    "Row",
    "accuracy_chart",
    "build_report",
    "check_record",
    "isolation_text",
    "load_report",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_rich",
    "row_cells",
    "strategy_label",
]


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
