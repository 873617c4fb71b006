"""Many samples on one engine: accuracy, tokens and samples per strategy; parallel vs serial latency.

Runs the REAL engine (the embedded model unless --model) on the procedural `arith` suite:
`direct` (greedy), `self_consistency@n`, best-of-n by self-score, adaptive sampling with
`self_eval`'s defaults (one sample at a time, annealed from a greedy first one, no-signal guard)
and early pruning, every sample capped at the same `--sample-tokens`. The `majority` column
counts solves where the self-scores did not separate the answers and the majority decided.
Then `parallel` (spawn="always") with its children concurrent vs the same plan with its
children run one after another, and `direct`, one prompt at a time at the same total budget,
for wall-clock latency (with the spread of the per-problem ratio, and how many children joined
with the message they wrote after `Result:`).

    flock /tmp/engine.lock .venv/bin/python bench/sampling.py --problems 24 --latency-problems 4
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.suites import Problem, grade, load_suite
from reasoner import Budget, Reasoner, Solution


@dataclass(frozen=True)
class Config:
    """One row of the table: a strategy, its options, and the budget of one solve."""

    label: str
    strategy: str
    budget: Budget
    options: dict[str, Any]


def sampling_configs(n: int, sample_tokens: int, checkpoints: tuple[int, ...]) -> list[Config]:
    scored = {"n": n, "sample_tokens": sample_tokens, "temperature": 0.7}
    return [
        Config("direct", "direct", Budget(tokens=sample_tokens), {}),
        Config(
            f"self_consistency@{n}",
            "self_consistency",
            Budget(tokens=n * sample_tokens),
            {"n": n, "sample_tokens": sample_tokens},
        ),
        Config(
            f"best-of-{n} (self-score)",
            "self_eval",
            Budget(tokens=n * (sample_tokens + 1)),
            scored | {"policy": "best_of"},
        ),
        Config(
            f"adaptive, defaults (n<={n})",
            "self_eval",
            Budget(tokens=n * (sample_tokens + 1)),
            {"n": n, "sample_tokens": sample_tokens},
        ),
        Config(
            f"early pruning ({n}, {'/'.join(map(str, checkpoints))})",
            "self_eval",
            Budget(tokens=n * (sample_tokens + len(checkpoints) + 1)),
            scored | {"policy": "prune", "checkpoints": checkpoints, "prune_fraction": 0.5},
        ),
    ]


def run_batch(reasoner: Reasoner, problems: list[Problem], config: Config) -> dict[str, float]:
    started = time.monotonic()
    solutions = reasoner.solve_many(
        [problem.prompt for problem in problems],
        config.budget,
        config.strategy,
        budget_per_prompt=True,
        **config.options,
    )
    wall = time.monotonic() - started
    return {
        "accuracy": statistics.mean(grade(p, s.answer) for p, s in zip(problems, solutions, strict=True)),
        "tokens": statistics.mean(s.usage.generated_tokens for s in solutions),
        "samples": statistics.mean(_samples(s) for s in solutions),
        "saved": statistics.mean(s.usage.aborted_tokens_saved for s in solutions),
        "majority": sum(s.metrics.get("selection") == "majority" for s in solutions),
        "wall": wall,
    }


def _samples(solution: Solution) -> float:
    value = solution.metrics.get("samples_used", 1)
    return float(value) if isinstance(value, (int, float)) else 1.0


def run_latency(
    reasoner: Reasoner, problems: list[Problem], budget: int, child_tokens: int
) -> dict[str, dict[str, list[float]]]:
    """One prompt at a time, so each latency is one solve's own; per plan, each figure per problem."""
    plans = {
        "parallel (children concurrent)": ("parallel", {"spawn": "always", "child_tokens": child_tokens}),
        "parallel (children serial)": (
            "parallel",
            {"spawn": "always", "child_tokens": child_tokens, "children": "serial"},
        ),
        "direct (serial)": ("direct", {}),
    }
    keys = ("latency", "tokens", "children", "results_written")
    rows: dict[str, dict[str, list[float]]] = {label: {key: [] for key in keys} for label in plans}
    for problem in problems:
        for label, (strategy, options) in plans.items():
            solution = reasoner.solve(problem.prompt, budget, strategy, **options)
            rows[label]["latency"].append(solution.latency_s)
            rows[label]["tokens"].append(solution.usage.generated_tokens)
            rows[label]["children"].append(float(solution.metrics.get("children") or 0))
            rows[label]["results_written"].append(float(solution.metrics.get("results_written") or 0))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--latency-problems", type=int, default=8)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--sample-tokens", type=int, default=64)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    problems = list(load_suite("arith", limit=args.problems, seed=args.seed, difficulty=1))
    console = Console()
    with Reasoner(args.model) as reasoner:
        reasoner.start()
        table = Table(title=f"arith difficulty 1, {len(problems)} problems, {args.sample_tokens} tokens per sample")
        for column in ("config", "accuracy", "mean tokens", "mean samples", "mean tokens saved", "majority", "wall s"):
            table.add_column(column, justify="left" if column == "config" else "right")
        results: dict[str, dict[str, float]] = {}
        configs = sampling_configs(args.n, args.sample_tokens, tuple(args.checkpoints))
        for config in configs:
            row = results[config.label] = run_batch(reasoner, problems, config)
            table.add_row(
                config.label,
                f"{row['accuracy']:.3f}",
                f"{row['tokens']:.1f}",
                f"{row['samples']:.2f}",
                f"{row['saved']:.1f}",
                str(int(row["majority"])),
                f"{row['wall']:.1f}",
            )
        console.print(table)
        budget = 4 * args.sample_tokens
        per_problem = run_latency(reasoner, problems[: args.latency_problems], budget, args.sample_tokens // 2)
        latency = {
            label: {key: statistics.mean(values) for key, values in row.items()} for label, row in per_problem.items()
        }
        table = Table(title=f"parallel vs serial, {args.latency_problems} problems one at a time, budget {budget}")
        columns = ("config", "mean latency s", "mean tokens", "mean children", "results written", "tokens/s")
        for column in columns:
            table.add_column(column, justify="left" if column == "config" else "right")
        for label, row in latency.items():
            rate = row["tokens"] / row["latency"] if row["latency"] else 0.0
            table.add_row(
                label,
                f"{row['latency']:.2f}",
                f"{row['tokens']:.1f}",
                f"{row['children']:.2f}",
                f"{row['results_written']:.2f}",
                f"{rate:.1f}",
            )
        console.print(table)
    by_policy = {config.options.get("policy"): results[config.label] for config in configs}
    best_of, pruned = by_policy["best_of"], by_policy["prune"]
    greedy, adaptive = results["direct"], by_policy[None]
    noise = 2 * math.sqrt(2 * max(greedy["accuracy"] * (1 - greedy["accuracy"]), 0.01) / len(problems))
    console.print(
        f"adaptive (defaults) - greedy accuracy: {adaptive['accuracy'] - greedy['accuracy']:+.3f} "
        f"(two standard errors of the difference: {noise:.3f}); best-of-{args.n} by self-score - greedy: "
        f"{best_of['accuracy'] - greedy['accuracy']:+.3f}"
    )
    concurrent, serial = latency["parallel (children concurrent)"], latency["parallel (children serial)"]
    console.print(f"early pruning tokens / best-of-{args.n} tokens: {pruned['tokens'] / best_of['tokens']:.2f}")
    ratios = [
        slow / fast
        for slow, fast in zip(
            per_problem["parallel (children serial)"]["latency"],
            per_problem["parallel (children concurrent)"]["latency"],
            strict=True,
        )
    ]
    console.print(
        f"parallel latency, children serial / concurrent: {serial['latency'] / concurrent['latency']:.2f}x "
        f"(per problem {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} problems); children whose join is the "
        f"message they wrote (Result: line): {concurrent['results_written']:.2f} of {concurrent['children']:.2f}"
    )


if __name__ == "__main__":
    main()
