"""What `bench/papers.py`'s rows are made of: a row, a method's tally over the problems, and a timed batch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from evals.suites import Problem, grade
from reasoner import Budget, Reasoner, Solution


@dataclass
class Row:
    """One comparison: what the paper reports and what this run measured."""

    paper: str
    comparison: str
    paper_figure: str
    measured: str


@dataclass
class Tally:
    """Accuracy and tokens of one method over the problems."""

    correct: int
    problems: int
    tokens: int
    seconds: float = 0.0
    cost: float | None = None
    """eFLOPs of every solve together; None when any was unpriced."""

    @property
    def accuracy(self) -> float:
        return self.correct / self.problems if self.problems else 0.0


def tally(problems: list[Problem], solutions: list[Solution], seconds: float = 0.0) -> Tally:
    correct = sum(grade(problem, solution.answer) for problem, solution in zip(problems, solutions, strict=True))
    costs = [solution.usage.cost for solution in solutions]
    cost = None if None in costs else float(sum(cost or 0 for cost in costs))
    return Tally(correct, len(problems), sum(solution.usage.generated_tokens for solution in solutions), seconds, cost)


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


async def solve_all(
    reasoner: Reasoner, problems: list[Problem], budget: Budget | int, strategy: str, **options: Any
) -> tuple[list[Solution], float]:
    started = time.perf_counter()
    solutions = await reasoner.asolve_many(
        [problem.prompt for problem in problems], budget, strategy, budget_per_prompt=True, **options
    )
    return solutions, time.perf_counter() - started
