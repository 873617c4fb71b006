"""Synthetic eval records for calibration tests (easy problems solved cheaply, hard ones only with more tokens),
and a hand-written policy for tests of `auto`'s mechanics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controllers.policy import Choice, Policy


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


def hand_policy() -> Policy:
    """A policy written by hand for mechanism tests: bins cut at 1/3 and 2/3 of the pilot's scale,
    easy -> direct 256, normal -> elastic 1024, hard -> self_consistency (n=4) 4096."""
    choices = {
        "easy": Choice("direct", 256),
        "normal": Choice("elastic", 1024),
        "hard": Choice("self_consistency", 4096, {"n": 4}),
    }
    curves = {
        "easy": [Choice("direct", 64, accuracy=0.8), Choice("direct", 256, accuracy=0.9)],
        "normal": [Choice("direct", 256, accuracy=0.5), Choice("elastic", 1024, accuracy=0.7)],
        "hard": [
            Choice("direct", 256, accuracy=0.2),
            Choice("elastic", 1024, accuracy=0.35),
            Choice("self_consistency", 4096, {"n": 4}, accuracy=0.5),
        ],
    }
    return Policy((1 / 3, 2 / 3), choices, curves, source="hand")


def hand_policy_file(folder: Path, policy: Policy | None = None) -> str:
    """`policy` (default: `hand_policy()`) saved under `folder`; its path, for `policy_file=`."""
    path = folder / "policy.json"
    (policy or hand_policy()).save(path)
    return str(path)
