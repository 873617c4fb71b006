from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from evals.report import (
    build_report,
    load_report,
    render_csv,
    render_json,
    render_markdown,
    render_rich,
)
from evals.stats import bootstrap_mean, paired_bootstrap, pareto_front, percentile
from reasoner.errors import SuiteError


def rec(strategy: str, budget: int, problem: str, correct: bool, tokens: int, latency: float) -> dict[str, Any]:
    return {
        "key": f"tiny|{problem}|{strategy}|{budget}|{{}}",
        "suite": "tiny",
        "problem_id": problem,
        "strategy": strategy,
        "budget": budget,
        "options": {},
        "correct": correct,
        "usage": {"generated_tokens": tokens},
        "latency_s": latency,
    }


# Hand-computed figures for this file are in the tests below.
TINY = [
    rec("alpha", 100, "p1", True, 10, 1.0),
    rec("alpha", 100, "p2", False, 20, 2.0),
    rec("alpha", 100, "p3", True, 30, 3.0),
    rec("alpha", 100, "p4", True, 40, 4.0),
    rec("beta", 100, "p1", False, 5, 0.5),
    rec("beta", 100, "p2", False, 5, 0.5),
    rec("beta", 100, "p3", True, 5, 0.5),
    rec("beta", 100, "p4", False, 5, 0.5),
    rec("beta", 200, "p1", True, 50, 1.0),
    rec("beta", 200, "p2", False, 50, 1.0),
    rec("beta", 200, "p3", False, 50, 1.0),
    rec("beta", 200, "p4", False, 50, 1.0),
]


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in TINY))
    return path


def rendered(path: Path, compare: tuple[str, str] | None = None) -> str:
    buffer = io.StringIO()
    render_rich(load_report([path], compare), Console(file=buffer, width=160, color_system=None))
    return buffer.getvalue()


def test_row_figures_match_the_hand_computation(tiny_file: Path) -> None:
    rows = {(row.strategy, row.budget): row for row in load_report([tiny_file]).rows}
    alpha = rows[("alpha", 100)]
    assert (alpha.n, alpha.accuracy, alpha.mean_tokens) == (4, 0.75, 25.0)
    assert alpha.p95_tokens == pytest.approx(38.5)  # 30 + 0.85 * (40 - 30)
    assert alpha.latency_p50_s == pytest.approx(2.5)
    assert alpha.latency_p95_s == pytest.approx(3.85)
    assert alpha.accuracy_per_1k_tokens == pytest.approx(30.0)  # 0.75 / 0.025
    assert rows[("beta", 100)].accuracy_per_1k_tokens == pytest.approx(50.0)  # 0.25 / 0.005


def test_pareto_marks_only_undominated_rows(tiny_file: Path) -> None:
    marks = {(row.strategy, row.budget): row.pareto for row in load_report([tiny_file]).rows}
    # beta@200 (50 tokens, 25%) is dominated by beta@100 (5 tokens, 25%).
    assert marks == {("alpha", 100): True, ("beta", 100): True, ("beta", 200): False}


def test_table_shows_the_figures(tiny_file: Path) -> None:
    text = rendered(tiny_file)
    alpha_line = next(line for line in text.splitlines() if "alpha" in line and "100" in line)
    for figure in ("75.0%", "25.0", "38.5", "2.50", "3.85", "30.000", "*"):
        assert figure in alpha_line


def test_chart_draws_accuracy_per_budget(tiny_file: Path) -> None:
    text = rendered(tiny_file)
    assert "accuracy vs budget (tiny)" in text
    assert "alpha 100 " + "█" * 22 + "·" * 8 + " 75.0%" in text  # round(0.75 * 30) == 22
    assert "      200 " + "█" * 8 + "·" * 22 + " 25.0%" in text


def test_paired_difference_is_reported(tiny_file: Path) -> None:
    report = load_report([tiny_file], ("alpha", "beta"))
    (comparison,) = report.comparisons
    assert (comparison.budget, comparison.pairs, comparison.difference) == (100, 4, 0.5)
    assert comparison.ci_low <= 0.5 <= comparison.ci_high
    assert "alpha - beta @ 100: +50.0 pts" in rendered(tiny_file, ("alpha", "beta"))


def test_compare_with_an_unknown_strategy_lists_the_found_ones(tiny_file: Path) -> None:
    with pytest.raises(SuiteError, match="no records for strategy 'gamma'; found: alpha, beta"):
        load_report([tiny_file], ("alpha", "gamma"))


def test_markdown_has_one_table_per_suite(tiny_file: Path) -> None:
    text = render_markdown(load_report([tiny_file]))
    assert text.startswith("## tiny\n")
    assert "| alpha | 100 | 4 | 75.0% | " in text


def test_csv_carries_raw_numbers(tiny_file: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(load_report([tiny_file])))))
    assert len(rows) == 3
    assert rows[0]["strategy"] == "alpha"
    assert float(rows[0]["accuracy"]) == 0.75
    assert float(rows[0]["p95_tokens"]) == pytest.approx(38.5)


def test_json_round_trips(tiny_file: Path) -> None:
    data = json.loads(render_json(load_report([tiny_file], ("alpha", "beta"))))
    assert data["rows"][0]["mean_tokens"] == 25.0
    assert data["comparisons"][0]["difference"] == 0.5


def test_malformed_lines_and_duplicates_are_reported_not_fatal(tiny_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps(TINY[0]) + "\nbroken line\n")
    report = load_report([tiny_file, other])
    assert report.duplicates == 1
    assert report.malformed_lines == {str(other): [2]}
    assert next(row for row in report.rows if row.strategy == "alpha").n == 4
    buffer = io.StringIO()
    render_rich(report, Console(file=buffer, width=160))
    assert "skipped malformed lines in" in buffer.getvalue()
    assert "ignored 1 duplicate records" in buffer.getvalue()


def test_a_file_without_records_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("not json\n")
    with pytest.raises(SuiteError, match="no records to report"):
        load_report([empty])


def test_options_split_a_strategy_into_its_own_rows(tiny_file: Path, tmp_path: Path) -> None:
    tuned = dict(TINY[0], options={"temperature": 0.7}, key="other")
    path = tmp_path / "tuned.jsonl"
    path.write_text(json.dumps(tuned) + "\n")
    labels = {row.strategy for row in load_report([tiny_file, path]).rows}
    assert "alpha[temperature=0.7]" in labels


def test_bootstrap_interval_of_a_constant_is_that_constant() -> None:
    interval = bootstrap_mean([1.0, 1.0, 1.0])
    assert (interval.estimate, interval.low, interval.high) == (1.0, 1.0, 1.0)


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible() -> None:
    values = [1.0, 0.0] * 20
    first = bootstrap_mean(values)
    assert first.low < 0.5 < first.high
    assert first == bootstrap_mean(values)


def test_paired_bootstrap_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_percentile_interpolates_linearly() -> None:
    assert percentile([10, 20, 30, 40], 50) == 25.0


def test_pareto_front_of_points() -> None:
    assert pareto_front([(10, 0.5), (5, 0.5), (20, 0.9), (20, 0.8)]) == {1, 2}


def test_the_report_shows_where_code_ran() -> None:
    records = [
        {**rec("alpha", 100, "p1", True, 10, 1.0), "suite": "humaneval", "isolation": "jail"},
        {**rec("alpha", 100, "p2", False, 10, 1.0), "suite": "humaneval", "isolation": "process"},
        {**rec("alpha", 100, "p3", False, 10, 1.0), "suite": "humaneval"},
        *TINY,
    ]
    for record in records:
        record["key"] = f"{record['suite']}|{record['key']}"
    report = build_report(records)
    console = Console(file=io.StringIO(), width=120)
    render_rich(report, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "code ran in: jail (1 records), process (1 records), unrecorded (1 records); process = opt-in" in text
    assert text.count("code ran in") == 1
    assert "- code ran in: jail (1 records)" in render_markdown(report)
