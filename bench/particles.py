"""Particle filtering vs beam search vs best-of-N at the same token budget, with two scorers.

Runs the REAL engine (the embedded model unless --model) on the procedural `arith` suite. Every
problem gets the same budget (generated tokens, scoring tokens included) under each strategy:
- best-of-N: `self_eval` policy `best_of`, N whole samples, the best-scored one answers;
- beam: `tree_search` selection `beam`, width N/expand, `expand` children per kept leaf;
- particle filtering: `particle_filter`, N particles, resampled every step.
Scorers: `arith_steps`, a function that checks every `a op b = c` the response writes (and that
a final answer agrees with the last result) without knowing the reference, so it carries
signal; and the model's own one-token self-evaluation. Reported per (scorer, strategy):
accuracy with a bootstrap interval, mean generated tokens, mean steps, particle ESS and KV.

    engine-slot .venv/bin/python bench/particles.py --problems 20
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from fractions import Fraction
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.procedural import ExpressionError, evaluate_expression
from evals.stats import bootstrap_mean
from evals.suites import Problem, grade, load_suite
from reasoner import Budget, Reasoner, Solution
from reasoner.extract import answer_after_marker, last_number
from strategies.scoring import FunctionScorer, register_scorer

EQUATION = re.compile(r"(\d[\d\s+\-*/×()]*?)\s*=\s*(-?\d+)")


def arith_steps(question: str, response: str) -> float:
    """Share of checkable steps that are right (smoothed): each `expression = value` written, and the
    final answer that disagrees with the last value as a wrong step. 0.5 when nothing can be checked.
    Never sees the reference."""
    right = checked = 0
    last_value: Fraction | None = None
    for left, value in EQUATION.findall(response):
        try:
            computed, _ = evaluate_expression(left)
        except ExpressionError:
            continue
        checked += 1
        right += computed == Fraction(value)
        last_value = Fraction(value)
    marked = answer_after_marker(response)
    final = last_number(marked) if marked else None
    if final is not None and last_value is not None and Fraction(final.replace(",", "")) != last_value:
        checked += 1
    return (right + 0.5) / (checked + 1)


register_scorer("arith_steps", lambda: FunctionScorer(arith_steps, name="arith_steps"))


def configs(args: argparse.Namespace, scorer: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        f"best-of-{args.n}": (
            "self_eval",
            {"policy": "best_of", "n": args.n, "sample_tokens": args.sample_tokens, "scorer": scorer},
        ),
        f"beam {args.n // args.expand}x{args.expand}": (
            "tree_search",
            {
                "selection": "beam",
                "width": args.n // args.expand,
                "expand": args.expand,
                "max_depth": args.steps,
                "step_tokens": args.step_tokens,
                "scorer": scorer,
            },
        ),
        f"particle filter {args.n}": (
            "particle_filter",
            {"particles": args.n, "max_steps": args.steps, "step_tokens": args.step_tokens, "scorer": scorer},
        ),
    }


def number(solution: Solution, name: str) -> float | None:
    value = solution.metrics.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def mean_of(solutions: list[Solution], name: str) -> str:
    values = [value for solution in solutions if (value := number(solution, name)) is not None]
    return f"{statistics.mean(values):.1f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--difficulty", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--expand", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-tokens", type=int, default=32)
    parser.add_argument("--sample-tokens", type=int, default=96)
    parser.add_argument("--budget", type=int, default=448, help="Token budget of each problem, for every strategy.")
    parser.add_argument("--scorers", default="arith_steps,self_eval")
    args = parser.parse_args()
    problems: list[Problem] = list(load_suite("arith", limit=args.problems, seed=args.seed, difficulty=args.difficulty))
    console = Console(width=140)
    table = Table(
        title=f"arith d{args.difficulty}, {len(problems)} problems, budget {args.budget} tokens/problem, "
        f"N={args.n}, steps<={args.steps} x {args.step_tokens} tokens"
    )
    for column in (
        "scorer",
        "strategy",
        "accuracy",
        "95% CI",
        "mean tokens",
        "steps",
        "ESS min",
        "KV distinct/unshared",
        "wall s",
    ):
        table.add_column(column, justify="left" if column in ("scorer", "strategy") else "right")
    accuracy: dict[tuple[str, str], float] = {}
    with Reasoner(args.model) as reasoner:
        reasoner.start()
        for scorer in args.scorers.split(","):
            for label, (strategy, options) in configs(args, scorer).items():
                started = time.monotonic()
                solutions = reasoner.solve_many(
                    [problem.prompt for problem in problems],
                    Budget(tokens=args.budget),
                    strategy,
                    budget_per_prompt=True,
                    **options,
                )
                wall = time.monotonic() - started
                correct = [float(grade(p, s.answer)) for p, s in zip(problems, solutions, strict=True)]
                interval = bootstrap_mean(correct)
                accuracy[(scorer, label)] = interval.estimate
                kv = f"{mean_of(solutions, 'kv_peak_distinct_tokens')}/{mean_of(solutions, 'kv_peak_unshared_tokens')}"
                table.add_row(
                    scorer,
                    label,
                    f"{interval.estimate:.3f}",
                    f"{interval.low:.2f}-{interval.high:.2f}",
                    f"{statistics.mean(s.usage.generated_tokens for s in solutions):.1f}",
                    mean_of(solutions, "rounds"),
                    mean_of(solutions, "ess_min"),
                    kv if strategy != "self_eval" else "-",
                    f"{wall:.1f}",
                )
    console.print(table)
    for scorer in args.scorers.split(","):
        rows = {label: value for (name, label), value in accuracy.items() if name == scorer}
        shown = ", ".join(f"{label} {value:.3f}" for label, value in rows.items())
        console.print(f"accuracy with {scorer}: {shown}")


if __name__ == "__main__":
    main()
