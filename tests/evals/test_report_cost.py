"""The report in cost as well as tokens: mean eFLOPs per row and the Pareto front in cost."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from evals.report import build_report, load_report, render_csv, render_rich
from reasoner.errors import SuiteError


def rec(strategy: str, problem: str, correct: bool, tokens: int, cost: object = None) -> dict[str, Any]:
    usage: dict[str, Any] = {"generated_tokens": tokens}
    if cost is not None:
        usage["cost"] = cost
    return {
        "key": f"tiny|{problem}|{strategy}|100|{{}}",
        "suite": "tiny",
        "problem_id": problem,
        "strategy": strategy,
        "budget": 100,
        "options": {},
        "correct": correct,
        "usage": usage,
        "latency_s": 1.0,
    }


# cheap_tokens writes few tokens of a dear model, cheap_cost many of a cheap one, best is right twice.
PRICED = [
    rec("cheap_tokens", "p1", True, 100, 5e12),
    rec("cheap_tokens", "p2", False, 100, 5e12),
    rec("cheap_cost", "p1", True, 200, 1e12),
    rec("cheap_cost", "p2", False, 200, 1e12),
    rec("best", "p1", True, 300, 2e12),
    rec("best", "p2", True, 300, 4e12),
]


def test_the_front_in_cost_is_not_the_front_in_tokens() -> None:
    rows = {row.strategy: row for row in build_report(PRICED).rows}
    assert rows["cheap_cost"].mean_cost == pytest.approx(1e12)
    assert rows["best"].mean_cost == pytest.approx(3e12)
    assert {name for name, row in rows.items() if row.pareto} == {"cheap_tokens", "best"}
    assert {name for name, row in rows.items() if row.cost_pareto} == {"cheap_cost", "best"}


def test_the_table_and_csv_show_the_cost() -> None:
    report = build_report(PRICED)
    console = Console(file=io.StringIO(), width=200)
    render_rich(report, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "cost front" in text and "3e+12" in text
    rows = {row["strategy"]: row for row in csv.DictReader(io.StringIO(render_csv(report)))}
    assert rows["cheap_cost"]["cost_pareto"] == "True" and rows["cheap_tokens"]["cost_pareto"] == "False"
    assert float(rows["cheap_tokens"]["mean_cost"]) == pytest.approx(5e12)


def test_records_written_before_cost_still_load_without_a_cost(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    old = [rec("alpha", "p1", True, 10), rec("alpha", "p2", False, 20)]
    path.write_text("".join(json.dumps(item) + "\n" for item in old))
    report = load_report([path])
    assert report.rows[0].mean_cost is None and not report.rows[0].cost_pareto
    assert report.rows[0].pareto


def test_a_row_with_some_unpriced_records_has_no_mean_cost() -> None:
    rows = build_report([rec("alpha", "p1", True, 10, 1e12), rec("alpha", "p2", True, 10)]).rows
    assert rows[0].mean_cost is None and not rows[0].cost_pareto


@pytest.mark.parametrize("cost", [-1.0, "cheap", True, float("nan")])
def test_a_record_with_a_bad_cost_is_refused_naming_the_field(cost: object) -> None:
    with pytest.raises(SuiteError, match="usage.cost"):
        build_report([rec("alpha", "p1", True, 10, cost)])
