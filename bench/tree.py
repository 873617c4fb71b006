"""Tree search selection policies: `ets` vs `beam` vs `rebase` at the same width and step budget.

One engine for all runs. Each policy solves the same seeded multi-step arithmetic problems
("What is a + b + c?", operands 1..5), all problems of a policy concurrently, with the same
width, depth, step cap and token budget (every round makes width - finished new steps; beam
gives `expand` children to each kept leaf); the prefix cache is reset before each policy. ETS
clusters steps with all-MiniLM-L6-v2 on its own pooling engine (`--step-embedder input` for
the mean-pooled fallback). A problem is right when the first number in the extracted answer
(`reasoner.extract.extract_math`) equals the sum. Reported per policy: accuracy, generated
tokens, leaves kept per round (and ETS's clusters per round), mean per-problem peak distinct
KV tokens of the retained tree (and without sharing),
the engine's prefix-cache hit rate, wall time and problems/s. The ratios ets/beam and
ets/rebase are printed last (ETS's paper: 1.8x smaller KV and 1.4x throughput vs REBASE),
each repeat's (`--repeats`, a new problem set each) and the KV ratio over every problem with
a 95% paired bootstrap interval (problems resampled, both policies' figures kept together).
ETS runs with the reference's terms (`tree_search`'s defaults; `--kv-cost tokens` for ours).

    flock /tmp/engine.lock .venv/bin/python bench/tree.py --problems 16 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from reasoner import Budget, Reasoner, Solution
from reasoner.extract import extract_math

POLICIES = ("ets", "beam", "rebase")
FIRST_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass
class PolicyRun:
    """What one policy did on the whole problem set."""

    policy: str
    correct: int
    problems: int
    generated_tokens: int
    kv_distinct: float
    kv_unshared: float
    rounds: float
    cache_hit_rate: float
    wall_s: float
    kv_per_problem: list[float]
    kept_per_round: float
    clusters_per_round: float | None

    @property
    def accuracy(self) -> float:
        return self.correct / self.problems

    @property
    def problems_per_s(self) -> float:
        return self.problems / self.wall_s


def arithmetic_problems(count: int, seed: int) -> list[tuple[str, int]]:
    """Seeded two-step sums: (question, answer)."""
    rng = random.Random(seed)
    problems = []
    for _ in range(count):
        a, b, c = (rng.randint(1, 5) for _ in range(3))
        problems.append((f"What is {a} + {b} + {c}?", a + b + c))
    return problems


def is_right(solution: Solution, expected: int) -> bool:
    """The first number of the extracted answer equals `expected` ("19, since ..." counts as 19)."""
    answer = extract_math(solution.text)
    first = FIRST_NUMBER.search(answer or "")
    return first is not None and float(first.group()) == expected


def kept_per_round(solution: Solution) -> float:
    """Mean leaves kept (given children) per selection, read off the trace."""
    kept_depths = [attrs["depth"] for _, attrs in solution.trace.nodes(data=True) if attrs.get("kept")]
    return len(kept_depths) / len(set(kept_depths)) if kept_depths else 0.0


def policy_options(policy: str, args: argparse.Namespace) -> dict[str, Any]:
    """The options only this policy reads (the others refuse them)."""
    if policy == "beam":
        return {"expand": args.expand}
    if policy == "ets":
        return {"step_embedder": args.step_embedder, "kv_cost": args.kv_cost}
    return {}


async def run_policy(
    reasoner: Reasoner, policy: str, problems: list[tuple[str, int]], args: argparse.Namespace
) -> PolicyRun:
    await reasoner.backend.engine.reset_prefix_cache()  # type: ignore[attr-defined]
    before = reasoner.backend.cache_stats()
    started = time.perf_counter()
    solutions = await reasoner.asolve_many(
        [question for question, _ in problems],
        budget=Budget(tokens=args.budget),
        budget_per_prompt=True,
        strategy="tree_search",
        selection=policy,
        width=args.width,
        max_depth=args.max_depth,
        step_tokens=args.step_tokens,
        **policy_options(policy, args),
    )
    wall_s = time.perf_counter() - started
    after = reasoner.backend.cache_stats()
    queries = after.prefix_cache_queries - before.prefix_cache_queries
    return PolicyRun(
        policy=policy,
        correct=sum(is_right(solution, expected) for solution, (_, expected) in zip(solutions, problems, strict=True)),
        problems=len(problems),
        generated_tokens=sum(solution.usage.generated_tokens for solution in solutions),
        kv_distinct=statistics.mean(float(s.metrics["kv_peak_distinct_tokens"] or 0) for s in solutions),
        kv_per_problem=[float(s.metrics["kv_peak_distinct_tokens"] or 0) for s in solutions],
        kept_per_round=statistics.mean(kept_per_round(solution) for solution in solutions),
        clusters_per_round=statistics.mean(float(s.metrics["clusters_per_round"] or 0) for s in solutions)
        if policy == "ets"
        else None,
        kv_unshared=statistics.mean(float(s.metrics["kv_peak_unshared_tokens"] or 0) for s in solutions),
        rounds=statistics.mean(float(s.metrics["rounds"] or 0) for s in solutions),
        cache_hit_rate=(after.prefix_cache_hits - before.prefix_cache_hits) / queries if queries else 0.0,
        wall_s=wall_s,
    )


async def measure(reasoner: Reasoner, args: argparse.Namespace) -> list[list[PolicyRun]]:
    """Every policy on each repeat's problem set (seeds seed, seed + 1, ...)."""
    await reasoner.astart()
    warm_up = {"width": 2, "max_depth": 1, "step_embedder": args.step_embedder}
    await reasoner.asolve("What is 1 + 1?", 64, "tree_search", **warm_up)  # starts the step embedder's engine too
    repeats = []
    for repeat in range(args.repeats):
        problems = arithmetic_problems(args.problems, args.seed + repeat)
        repeats.append([await run_policy(reasoner, policy, problems, args) for policy in POLICIES])
    return repeats


def paired_ratio_interval(numerators: list[float], denominators: list[float], draws: int = 4000) -> tuple[float, float]:
    """95% bootstrap interval of mean(numerators) / mean(denominators), problems resampled in pairs."""
    rng = random.Random(0)
    indices = range(len(numerators))
    ratios = []
    for _ in range(draws):
        sample = rng.choices(indices, k=len(numerators))
        denominator = sum(denominators[i] for i in sample)
        if denominator > 0:
            ratios.append(sum(numerators[i] for i in sample) / denominator)
    ratios.sort()
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def ratio_line(ets: PolicyRun, other: PolicyRun) -> str:
    return (
        f"ets/{other.policy}: peak distinct KV {ets.kv_distinct / other.kv_distinct:.2f}x, "
        f"generated tokens {ets.generated_tokens / other.generated_tokens:.2f}x, "
        f"problems/s {ets.problems_per_s / other.problems_per_s:.2f}x, "
        f"accuracy {ets.accuracy:.2f} vs {other.accuracy:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="Problem sets (seeds seed, seed + 1, ...).")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--expand", type=int, default=2)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--step-tokens", type=int, default=16)
    parser.add_argument("--budget", type=int, default=3072, help="Token budget of each problem.")
    parser.add_argument("--model", default=None)
    parser.add_argument("--step-embedder", default="auto", help="ETS step embedder: auto, minilm, input or a URL")
    parser.add_argument("--kv-cost", default="nodes", choices=("nodes", "tokens"), help="ETS: what a kept node costs")
    args = parser.parse_args()
    reasoner = Reasoner(args.model)
    try:
        repeats = asyncio.run(measure(reasoner, args))
    finally:
        reasoner.close()
    table = Table(
        title=f"{args.problems} sums a+b+c x {args.repeats} repeats, width={args.width}, expand={args.expand}, "
        f"depth<={args.max_depth}, step<={args.step_tokens} tokens, budget {args.budget}/problem, ETS KV cost "
        f"{args.kv_cost}, one engine"
    )
    columns = ("repeat", "policy", "accuracy", "generated tokens", "rounds", "kept/round", "clusters/round")
    for column in (*columns, "peak distinct KV", "peak unshared KV", "cache hit", "wall s", "problems/s"):
        table.add_column(column, justify="right")
    for repeat, runs in enumerate(repeats):
        for run in runs:
            add_row(table, repeat, run)
    console = Console(width=180)
    console.print(table)
    for repeat, runs in enumerate(repeats):
        by_policy = {run.policy: run for run in runs}
        console.print(f"repeat {repeat}: {ratio_line(by_policy['ets'], by_policy['beam'])}")
        console.print(f"repeat {repeat}: {ratio_line(by_policy['ets'], by_policy['rebase'])}")
    ets_runs = [run for runs in repeats for run in runs if run.policy == "ets"]
    rebase_runs = [run for runs in repeats for run in runs if run.policy == "rebase"]
    ets_kv = [kv for run in ets_runs for kv in run.kv_per_problem]
    rebase_kv = [kv for run in rebase_runs for kv in run.kv_per_problem]
    low, high = paired_ratio_interval(rebase_kv, ets_kv)
    throughput = [ets.problems_per_s / rebase.problems_per_s for ets, rebase in zip(ets_runs, rebase_runs, strict=True)]
    console.print(
        f"KV rebase/ets {statistics.mean(rebase_kv) / statistics.mean(ets_kv):.2f}x "
        f"(95% CI {low:.2f}-{high:.2f}, {len(ets_kv)} problems; paper 1.8x), throughput ets/rebase "
        f"{statistics.mean(throughput):.2f}x (repeats {', '.join(f'{value:.2f}' for value in throughput)}; paper 1.4x)"
    )


def add_row(table: Table, repeat: int, run: PolicyRun) -> None:
    table.add_row(
        str(repeat),
        run.policy,
        f"{run.accuracy:.2f} ({run.correct}/{run.problems})",
        str(run.generated_tokens),
        f"{run.rounds:.1f}",
        f"{run.kept_per_round:.1f}",
        "-" if run.clusters_per_round is None else f"{run.clusters_per_round:.1f}",
        f"{run.kv_distinct:.0f}",
        f"{run.kv_unshared:.0f}",
        f"{run.cache_hit_rate:.2f}",
        f"{run.wall_s:.1f}",
        f"{run.problems_per_s:.3f}",
    )


if __name__ == "__main__":
    main()
