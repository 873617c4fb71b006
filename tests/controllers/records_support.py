"""Synthetic eval records for calibration tests: easy problems solved cheaply, hard ones only with more tokens."""

from __future__ import annotations

from typing import Any


def record(problem: str, strategy: str, budget: int, correct: bool, tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        "key": f"arith|{problem}|{strategy}|{budget}|{{}}",
        "suite": "arith",
        "problem_id": problem,
        "strategy": strategy,
        "budget": budget,
        "options": {},
        "model": "smollm2-135m-instruct",
        "correct": correct,
        "usage": {"generated_tokens": tokens},
        **extra,
    }


def graded_records() -> list[dict[str, Any]]:
    """Six problems: p0-p1 right with anything, p2-p3 right only with 256 tokens, p4-p5 never."""
    records = []
    for index in range(6):
        problem = f"p{index}"
        records.append(record(problem, "direct", 64, index < 2, 20))
        records.append(record(problem, "elastic", 256, index < 4, 120))
        records.append(record(problem, "self_consistency", 512, index < 4, 400))
    return records
