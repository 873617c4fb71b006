"""Tree search selection policies: `ets` vs `beam` vs `rebase` at the same width and step budget.

One engine for all runs. Each policy solves the same seeded multi-step arithmetic problems
("What is a + b + c?", operands 1..5), all problems of a policy concurrently, with the same
width, depth, step cap and token budget (every round makes width - finished new steps; beam
gives `expand` children to each kept leaf); the prefix cache is reset before each policy. ETS
clusters steps with all-MiniLM-L6-v2 on its own pooling engine (`--step-embedder input` for
the mean-pooled fallback). A problem is right when the first number in the extracted answer
(`reasoner.extract.extract_math`) equals the sum. Reported per policy: accuracy, generated
tokens, mean per-problem peak distinct KV tokens of the retained tree (and without sharing),
the engine's prefix-cache hit rate, wall time and problems/s. The ratios ets/beam and
ets/rebase are printed last (ETS's paper: 1.8x smaller KV and 1.4x throughput vs REBASE).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import time
from dataclasses import dataclass

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
        expand=args.expand,
        max_depth=args.max_depth,
        step_tokens=args.step_tokens,
        step_embedder=args.step_embedder,
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
        kv_unshared=statistics.mean(float(s.metrics["kv_peak_unshared_tokens"] or 0) for s in solutions),
        rounds=statistics.mean(float(s.metrics["rounds"] or 0) for s in solutions),
        cache_hit_rate=(after.prefix_cache_hits - before.prefix_cache_hits) / queries if queries else 0.0,
        wall_s=wall_s,
    )


async def measure(reasoner: Reasoner, args: argparse.Namespace) -> list[PolicyRun]:
    await reasoner.astart()
    problems = arithmetic_problems(args.problems, args.seed)
    warm_up = {"width": 2, "max_depth": 1, "step_embedder": args.step_embedder}
    await reasoner.asolve("What is 1 + 1?", 64, "tree_search", **warm_up)  # starts the step embedder's engine too
    return [await run_policy(reasoner, policy, problems, args) for policy in POLICIES]


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
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--expand", type=int, default=2)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--step-tokens", type=int, default=16)
    parser.add_argument("--budget", type=int, default=3072, help="Token budget of each problem.")
    parser.add_argument("--model", default=None)
    parser.add_argument("--step-embedder", default="auto", help="ETS step embedder: auto, minilm, input or a URL")
    args = parser.parse_args()
    reasoner = Reasoner(args.model)
    try:
        runs = asyncio.run(measure(reasoner, args))
    finally:
        reasoner.close()
    table = Table(
        title=f"{args.problems} sums a+b+c, width={args.width}, expand={args.expand}, depth<={args.max_depth}, "
        f"step<={args.step_tokens} tokens, budget {args.budget}/problem, one engine"
    )
    columns = ("policy", "accuracy", "generated tokens", "rounds", "peak distinct KV", "peak unshared KV", "cache hit")
    for column in (*columns, "wall s", "problems/s"):
        table.add_column(column, justify="right")
    for run in runs:
        table.add_row(
            run.policy,
            f"{run.accuracy:.2f} ({run.correct}/{run.problems})",
            str(run.generated_tokens),
            f"{run.rounds:.1f}",
            f"{run.kv_distinct:.0f}",
            f"{run.kv_unshared:.0f}",
            f"{run.cache_hit_rate:.2f}",
            f"{run.wall_s:.1f}",
            f"{run.problems_per_s:.3f}",
        )
    console = Console(width=150)
    console.print(table)
    by_policy = {run.policy: run for run in runs}
    console.print(ratio_line(by_policy["ets"], by_policy["beam"]))
    console.print(ratio_line(by_policy["ets"], by_policy["rebase"]))
    ets, rebase = by_policy["ets"], by_policy["rebase"]
    console.print(
        f"KV rebase/ets {rebase.kv_distinct / ets.kv_distinct:.2f}x (paper 1.8x), "
        f"throughput ets/rebase {ets.problems_per_s / rebase.problems_per_s:.2f}x (paper 1.4x)"
    )


if __name__ == "__main__":
    main()
