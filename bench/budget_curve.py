"""Budget curve: `elastic` vs plain truncation vs `direct` at total budgets 32..512.

One real engine (the embedded model) answers the procedural `arith` suite at difficulty 1
(a + b or a - b, operands 1..20) at each total budget B:
- `elastic`: default split (answer max(min, B/4), thinking the rest), forced answer after a cut;
- truncation: the same thinking prompt in one request cut at B, answer extracted from
  whatever came out (after the model's own `</think>` if it wrote one, else its last number);
- `direct`: no thinking block, one request with B tokens.
Accuracy has a 95% normal-approximation interval over the problems; "cut" is the share of
elastic thinking that hit its budget, or of truncation requests that hit B. Hold the engine lock:
`flock /tmp/reasoner-engine.lock .venv/bin/python bench/budget_curve.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from evals.suites import Problem, grade, load_suite
from reasoner import Budget, Reasoner, Session

BUDGETS = (32, 64, 128, 256, 512)
METHODS = ("elastic", "truncation", "direct")


@dataclass(frozen=True)
class Result:
    correct: bool
    answered: bool
    tokens: int
    thinking_cut: bool


async def truncated(reasoner: Reasoner, problem: Problem, budget: int) -> Result:
    """The thinking prompt in one request cut at `budget`, no forced answer."""
    tokenizer = reasoner.backend.tokenizer()
    session = Session(reasoner.backend, tokenizer, reasoner.profile, Budget(tokens=budget))
    prompt = reasoner.profile.build_prompt(tokenizer, problem.prompt, thinking=True)
    generation = await session.generate(prompt, max_tokens=budget, phase="thinking", kind="think")
    answer = session.extract_answer(generation.text)
    return Result(
        correct=grade(problem, answer),
        answered=answer is not None,
        tokens=len(generation.token_ids),
        thinking_cut=generation.cut_by_limit,
    )


async def run_method(reasoner: Reasoner, method: str, problems: list[Problem], budget: int) -> list[Result]:
    if method == "truncation":
        return list(await asyncio.gather(*(truncated(reasoner, problem, budget) for problem in problems)))
    questions = [problem.prompt for problem in problems]
    solutions = await reasoner.asolve_many(questions, budget, method, budget_per_prompt=True)
    return [
        Result(
            correct=grade(problem, solution.answer),
            answered=solution.answer is not None,
            tokens=solution.usage.generated_tokens,
            thinking_cut=bool(solution.metrics.get("thinking_cut", False)),
        )
        for problem, solution in zip(problems, solutions, strict=True)
    ]


def accuracy(results: list[Result]) -> tuple[float, float]:
    """Accuracy and its 95% normal-approximation half-width."""
    share = sum(result.correct for result in results) / len(results)
    return share, 1.96 * math.sqrt(share * (1 - share) / len(results))


async def measure(
    reasoner: Reasoner, problems: list[Problem], budgets: list[int]
) -> dict[tuple[str, int], tuple[list[Result], float]]:
    await reasoner.astart()
    table: dict[tuple[str, int], tuple[list[Result], float]] = {}
    for budget in budgets:
        for method in METHODS:
            started = time.perf_counter()
            results = await run_method(reasoner, method, problems, budget)
            table[method, budget] = (results, time.perf_counter() - started)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200, help="suite size")
    parser.add_argument("--seed", type=int, default=0, help="suite seed")
    parser.add_argument("--difficulty", type=int, default=1, help="arith difficulty 1..5")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="total budgets to measure")
    args = parser.parse_args()
    problems = list(load_suite("arith", limit=args.problems, seed=args.seed, difficulty=args.difficulty))
    reasoner = Reasoner()
    try:
        measured = asyncio.run(measure(reasoner, problems, args.budgets))
    finally:
        reasoner.close()
    title = f"budget curve: {len(problems)} arith problems (difficulty {args.difficulty}), embedded model, greedy"
    table = Table(title=title)
    for column in ("budget", "method", "accuracy ±95%", "answered", "cut", "mean tokens", "wall s"):
        table.add_column(column, justify="right")
    for (method, budget), (results, wall_s) in measured.items():
        share, half_width = accuracy(results)
        table.add_row(
            str(budget),
            method,
            f"{share:.1%} ± {half_width:.1%}",
            f"{sum(result.answered for result in results) / len(results):.0%}",
            "-" if method == "direct" else f"{sum(result.thinking_cut for result in results) / len(results):.0%}",
            f"{statistics.mean(result.tokens for result in results):.1f}",
            f"{wall_s:.1f}",
        )
    console = Console()
    console.print(table)
    shares = {key: accuracy(results)[0] for key, (results, _) in measured.items()}
    ratios = [shares["elastic", budget] / max(shares["truncation", budget], 1e-9) for budget in args.budgets]
    tight = min(args.budgets)
    console.print(
        f"elastic/truncation accuracy at budget {tight}: "
        f"{shares['elastic', tight]:.1%}/{shares['truncation', tight]:.1%} = {ratios[0]:.2f}x "
        f"(median over budgets {statistics.median(ratios):.2f}x)"
    )


if __name__ == "__main__":
    main()
