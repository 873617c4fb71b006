from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from evals.report import build_report, render_rich


def auto_record(problem: str, bin_name: str, tokens: int) -> dict[str, Any]:
    return {
        "key": f"tiny|{problem}|auto|300|{{}}",
        "suite": "tiny",
        "problem_id": problem,
        "strategy": "auto",
        "budget": 300,
        "options": {},
        "correct": True,
        "usage": {"generated_tokens": tokens},
        "latency_s": 1.0,
        "metrics": {"difficulty_bin": bin_name},
    }


def test_auto_rows_show_the_share_of_prompts_and_tokens_per_bin() -> None:
    records = [auto_record("p1", "easy", 10), auto_record("p2", "easy", 20), auto_record("p3", "hard", 200)]
    report = build_report(records)
    console = Console(file=io.StringIO(), width=200)
    render_rich(report, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "auto @ 300: easy 66.7% of prompts, 30 tokens in that bin" in text
    assert "auto @ 300: hard 33.3% of prompts, 200 tokens in that bin" in text


def test_rows_without_bins_show_no_bin_lines() -> None:
    record = auto_record("p1", "easy", 10)
    del record["metrics"]
    assert build_report([record]).bins == []
