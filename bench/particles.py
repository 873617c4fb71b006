"""Particle filtering vs beam search vs best-of-N at equal generated tokens, with two scorers.

Runs the REAL engine (the embedded model unless --model) on the procedural `arith` suite, one
engine for every run. Each strategy runs at several sizes N (`--sizes`), every problem with the
same generous budget cap, so each (strategy, N) spends what it needs:
- best-of-N: `self_eval` policy `best_of`, N whole samples, the best-scored one answers;
- beam: `tree_search` selection `beam`, width N/2, 2 children per kept leaf;
- particle filtering: `particle_filter`, N particles, resampled every step.
Scorers: `arith_steps`, a function that checks every `a op b = c` the response writes (and that
a final answer agrees with the last result) without knowing the reference, so it carries
signal; and the model's own one-token self-evaluation. Reported per (scorer, strategy, N):
accuracy with a bootstrap interval, mean generated tokens (scoring tokens included), mean
steps, particle ESS and KV. The last lines compare, per scorer, particle filtering at
`--reference` particles with the size of each other strategy whose mean tokens come nearest.

    engine-slot .venv/bin/python bench/particles.py --problems 20
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Row:
    """One (scorer, strategy, N) run."""

    scorer: str
    strategy: str
    size: int
    accuracy: float
    tokens: float


def configs(size: int, args: argparse.Namespace, scorer: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "best-of-N": (
            "self_eval",
            {"policy": "best_of", "n": size, "sample_tokens": args.sample_tokens, "scorer": scorer},
        ),
        "beam": (
            "tree_search",
            {
                "selection": "beam",
                "width": max(1, size // 2),
                "expand": 2,
                "max_depth": args.steps,
                "step_tokens": args.step_tokens,
                "scorer": scorer,
            },
        ),
        "particle filter": (
            "particle_filter",
            {"particles": size, "max_steps": args.steps, "step_tokens": args.step_tokens, "scorer": scorer},
        ),
    }


def number(solution: Solution, name: str) -> float | None:
    value = solution.metrics.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def mean_of(solutions: list[Solution], name: str) -> str:
    values = [value for solution in solutions if (value := number(solution, name)) is not None]
    return f"{statistics.mean(values):.1f}" if values else "-"


def matched_line(rows: list[Row], scorer: str, reference: int) -> str:
    """Particle filtering at `reference` particles against each other strategy's nearest-in-tokens size."""
    mine = [row for row in rows if row.scorer == scorer]
    pf = next(row for row in mine if row.strategy == "particle filter" and row.size == reference)
    parts = [f"particle filter N={pf.size} {pf.accuracy:.3f} at {pf.tokens:.0f} tok"]
    for strategy in ("best-of-N", "beam"):
        candidates = [row for row in mine if row.strategy == strategy]
        if candidates:
            near = min(candidates, key=lambda row: abs(row.tokens - pf.tokens))
            parts.append(f"{strategy} N={near.size} {near.accuracy:.3f} at {near.tokens:.0f} tok")
    return f"{scorer}, nearest equal tokens: " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--difficulty", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default="2,4,8", help="N for each strategy with the function scorer.")
    parser.add_argument("--self-eval-sizes", default="4", help="N for each strategy with self-evaluation.")
    parser.add_argument("--reference", type=int, default=4, help="Particle count the last lines compare at.")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-tokens", type=int, default=32)
    parser.add_argument("--sample-tokens", type=int, default=96)
    parser.add_argument("--budget", type=int, default=1024, help="Token cap of each problem, for every strategy.")
    args = parser.parse_args()
    problems: list[Problem] = list(load_suite("arith", limit=args.problems, seed=args.seed, difficulty=args.difficulty))
    plan = {"arith_steps": args.sizes, "self_eval": args.self_eval_sizes}
    console = Console(width=140)
    table = Table(
        title=f"arith d{args.difficulty}, {len(problems)} problems, cap {args.budget} tokens/problem, "
        f"steps<={args.steps} x {args.step_tokens} tokens, samples<={args.sample_tokens} tokens"
    )
    columns = (
        "scorer",
        "strategy",
        "N",
        "accuracy",
        "95% CI",
        "mean tokens",
        "steps",
        "ESS min",
        "KV distinct/unshared",
    )
    for column in (*columns, "wall s"):
        table.add_column(column, justify="left" if column in ("scorer", "strategy") else "right")
    rows: list[Row] = []
    with Reasoner(args.model) as reasoner:
        reasoner.start()
        for scorer, sizes in plan.items():
            for size in (int(size) for size in sizes.split(",")):
                for label, (strategy, options) in configs(size, args, scorer).items():
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
                    tokens = statistics.mean(s.usage.generated_tokens for s in solutions)
                    rows.append(Row(scorer, label, size, interval.estimate, tokens))
                    distinct, unshared = (
                        mean_of(solutions, f"kv_peak_{kind}_tokens") for kind in ("distinct", "unshared")
                    )
                    table.add_row(
                        scorer,
                        label,
                        str(size),
                        f"{interval.estimate:.3f}",
                        f"{interval.low:.2f}-{interval.high:.2f}",
                        f"{tokens:.1f}",
                        mean_of(solutions, "rounds"),
                        mean_of(solutions, "ess_min"),
                        f"{distinct}/{unshared}" if strategy != "self_eval" else "-",
                        f"{wall:.1f}",
                    )
    console.print(table)
    for scorer in plan:
        console.print(matched_line(rows, scorer, args.reference))


if __name__ == "__main__":
    main()
