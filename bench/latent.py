"""Latent thinking on the real engine: what a latent step costs, and what the switch rules buy.

Part 1 times one latent step (a max_tokens=1 request over the prompt embeddings plus the
soft tokens so far, the prefix cache serving the unchanged head) against one explicit
decode step at the same context length, one chain at a time and several chains at once
(the engine batches their steps). vLLM caches only full KV blocks, so without the toolkit's
tail connector each latent step recomputes the rows since the last block boundary (1 to
block_size of them); the run reports how many rows a step recomputed, and for the batched
chains at the longest length the step time by that count (`--no-tail-kv` runs without the
connector, to see what it saves), and how many engine forward passes a round of steps took: the
connector holds a latent step that arrives while nothing runs until the other chains' steps of
the last pass are back, so a round of 8 chains is one pass, not two (`--round-wait-s 0` turns
that off).
Part 2 solves an easy procedural arithmetic suite with explicit-only, latent-only, SwiReasoning
and ThinkRouter thinking at `latent_switch`'s defaults (soft tokens over every logprob the engine
returns, SwiReasoning's two-stage cap, Cold Stop), with the spread: two standard errors of the
accuracy and of the mean tokens over the problems, and how thinking ended. One engine, one run.

Run: flock /tmp/engine.lock .venv/bin/python bench/latent.py
Target: a latent step costs at most 2x an explicit decode step at thinking length 1024.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from prometheus_client import REGISTRY
from rich.console import Console
from rich.table import Table

from evals.suites import grade, load_suite
from reasoner import Budget, Reasoner, RunningRequest, Session
from reasoner.engines.latent_rounds import ROUND_WAIT_S
from reasoner.engines.vllm_local import TAIL_KV_CONNECTOR
from strategies.soft_tokens import PrefixEmbeds, soft_embedding, top_k_distribution

LENGTHS = (64, 256, 1024)
TOP_K = 64  # the local engine's max_logprobs: what a latent_switch step reads by default
RULES = ("explicit", "latent", "swireasoning", "thinkrouter")


@dataclass
class StepCost:
    """Per-step seconds at one context length and concurrency."""

    length: int
    chains: int
    explicit_s: float
    latent_s: float
    cold_latent_s: float
    cached_fraction: float
    recomputed_rows: float
    by_recomputed: dict[str, float]
    passes_per_round: float

    @property
    def ratio(self) -> float:
        return self.latent_s / self.explicit_s


def engine_passes() -> float:
    """Forward passes the in-process engine has run so far (its `vllm:iteration_tokens_total` histogram count)."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == "vllm:iteration_tokens_total_count"
    )


def context_ids(session: Session, length: int, offset: int) -> list[int]:
    """`length` token ids of a counting sequence the model happily continues (`offset` makes chains differ)."""
    text = " ".join(str(number) for number in range(offset, offset + length))
    return session.encode(text)[:length]


async def explicit_steps(session: Session, contexts: list[list[int]], steps: int) -> float:
    """Median seconds per decoded token of concurrent requests, timed once every request has its first token."""
    requests = [
        await session.start(ids, max_tokens=steps + 1, phase="thinking", kind="think", logprobs=TOP_K)
        for ids in contexts
    ]
    await asyncio.gather(*(request.wait_for_tokens(1) for request in requests))
    started = time.perf_counter()
    tokens_then = [len(request.generation.token_ids) for request in requests]

    async def seconds_per_token(request: RunningRequest, already: int) -> float:
        generation = await request.result()
        return (time.perf_counter() - started) / max(1, len(generation.token_ids) - already)

    timed = zip(requests, tokens_then, strict=True)
    return statistics.median(await asyncio.gather(*(seconds_per_token(request, already) for request, already in timed)))


@dataclass(frozen=True)
class LatentStep:
    """One timed latent step: seconds, and the prompt rows the prefix cache served and those recomputed."""

    seconds: float
    prompt_rows: int
    cached_rows: int

    @property
    def recomputed_rows(self) -> int:
        return self.prompt_rows - self.cached_rows


async def latent_step(session: Session, embeddings: np.ndarray, prefix: PrefixEmbeds) -> LatentStep:
    """Run one latent step over `prefix` and append its soft token."""
    started = time.perf_counter()
    generation = await session.generate(prefix.view(), max_tokens=1, phase="thinking", kind="step", logprobs=TOP_K)
    seconds = time.perf_counter() - started
    assert generation.logprobs is not None
    prefix.append(soft_embedding(embeddings, top_k_distribution(generation.logprobs[0], TOP_K), 1.0))
    return LatentStep(seconds, generation.prompt_tokens, generation.cached_prompt_tokens)


def by_recomputed_rows(steps: list[LatentStep], block_size: int) -> dict[str, float]:
    """Median step seconds for each quarter of the block, keyed by its range of recomputed rows."""
    quarter = max(1, block_size // 4)
    groups: dict[int, list[float]] = {}
    for step in steps:
        groups.setdefault(min((step.recomputed_rows - 1) // quarter, 3), []).append(step.seconds)
    return {
        f"{index * quarter + 1}-{block_size if index == 3 else (index + 1) * quarter}": statistics.median(times)
        for index, times in sorted(groups.items())
    }


async def latent_steps(
    session: Session, embeddings: np.ndarray, contexts: list[list[int]], steps: int
) -> tuple[list[LatentStep], list[LatentStep], float]:
    """(cold first steps, warm steps, engine passes per round of warm steps) of concurrent latent chains.

    Every chain's first (cold, fully prefilled) step runs before any warm step is timed.
    """
    prefixes = [PrefixEmbeds(embeddings.shape[1], len(ids) + steps + 1) for ids in contexts]
    for prefix, ids in zip(prefixes, contexts, strict=True):
        prefix.append(embeddings[ids])
    cold = await asyncio.gather(*(latent_step(session, embeddings, prefix) for prefix in prefixes))

    async def chain(prefix: PrefixEmbeds) -> list[LatentStep]:
        return [await latent_step(session, embeddings, prefix) for _ in range(steps)]

    passes_before = engine_passes()
    warm = [step for steps_of_chain in await asyncio.gather(*(chain(p) for p in prefixes)) for step in steps_of_chain]
    return list(cold), warm, (engine_passes() - passes_before) / steps


async def step_costs(reasoner: Reasoner, steps: int, chains: int, offset: int) -> list[StepCost]:
    backend = reasoner.backend
    embeddings = await backend.input_embeddings()
    session = Session(backend, backend.tokenizer(), reasoner.profile, Budget(tokens=10**9))
    await explicit_steps(session, [context_ids(session, 64, offset)], 2)
    await latent_steps(session, embeddings, [context_ids(session, 64, offset)], 2)
    block_size = int(backend.engine.vllm_config.cache_config.block_size)
    costs = []
    for length in LENGTHS:
        for concurrency in sorted({1, chains}):
            starts = [offset + length * 7 + 1000 * chain for chain in range(concurrency)]
            explicit = await explicit_steps(session, [context_ids(session, length, start) for start in starts], steps)
            cold, warm, passes_per_round = await latent_steps(
                session, embeddings, [context_ids(session, length, start + 1) for start in starts], steps
            )
            costs.append(
                StepCost(
                    length,
                    concurrency,
                    explicit,
                    statistics.median(step.seconds for step in warm),
                    statistics.median(step.seconds for step in cold),
                    statistics.mean(step.cached_rows / step.prompt_rows for step in warm),
                    statistics.mean(step.recomputed_rows for step in warm),
                    by_recomputed_rows(warm, block_size),
                    passes_per_round,
                )
            )
    return costs


@dataclass
class SuiteRow:
    """One rule's results on the suite, with two standard errors over the problems."""

    rule: str
    accuracy: float
    accuracy_2se: float
    tokens: float
    tokens_2se: float
    latent_steps: float
    switches: float
    close_injections: float
    unread_mass: float
    ends: Counter[str]


def two_se(values: list[float]) -> float:
    """Two standard errors of the mean of `values` (0 for fewer than two)."""
    return 2 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0


async def accuracy(reasoner: Reasoner, count: int, budget: int, seed: int) -> list[SuiteRow]:
    """Per rule, at latent_switch's defaults: accuracy, tokens, latent steps, switches, how thinking ended."""
    suite = load_suite("arith", limit=count, seed=seed, difficulty=1)
    rows = []
    for rule in RULES:
        solutions = await reasoner.asolve_many(
            [problem.prompt for problem in suite],
            budget=Budget(tokens=budget),
            budget_per_prompt=True,
            strategy="latent_switch",
            rule=rule,
        )
        correct = [float(grade(problem, s.answer)) for s, problem in zip(solutions, suite, strict=True)]
        tokens = [float(s.usage.generated_tokens) for s in solutions]
        rows.append(
            SuiteRow(
                rule=rule,
                accuracy=statistics.mean(correct),
                accuracy_2se=two_se(correct),
                tokens=statistics.mean(tokens),
                tokens_2se=two_se(tokens),
                latent_steps=statistics.mean(float(s.metrics["latent_steps"] or 0) for s in solutions),
                switches=statistics.mean(float(s.metrics["switches"] or 0) for s in solutions),
                close_injections=statistics.mean(float(s.metrics["close_injections"] or 0) for s in solutions),
                unread_mass=statistics.mean(float(s.metrics["unread_mass"] or 0) for s in solutions),
                ends=Counter(str(s.metrics["thinking_end"]) for s in solutions),
            )
        )
    return rows


async def measure(reasoner: Reasoner, args: argparse.Namespace) -> tuple[list[StepCost], list[SuiteRow]]:
    await reasoner.astart()
    costs = await step_costs(reasoner, args.steps, args.chains, args.seed)
    rows = [] if args.skip_accuracy else await accuracy(reasoner, args.problems, args.budget, args.seed)
    return costs, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32, help="steps timed per chain (a whole CPU KV block)")
    parser.add_argument("--chains", type=int, default=8, help="chains run at once in the batched rows")
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--budget", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument(
        "--block-size", type=int, default=None, help="engine KV block size (CPU attention takes multiples of 32)"
    )
    parser.add_argument("--no-tail-kv", action="store_true", help="run without the tail KV connector")
    parser.add_argument(
        "--round-wait-s",
        type=float,
        default=None,
        help=f"how long a latent step waits for the rest of its round (default {ROUND_WAIT_S}; 0: no waiting)",
    )
    args = parser.parse_args()
    engine_args: dict[str, object] = {"block_size": args.block_size} if args.block_size else {}
    if args.no_tail_kv:
        engine_args["kv_transfer_config"] = None
    elif args.round_wait_s is not None:
        extra = {"round_wait_s": args.round_wait_s}
        engine_args["kv_transfer_config"] = {**TAIL_KV_CONNECTOR, "kv_connector_extra_config": extra}
    reasoner = Reasoner(engine_args=engine_args or None)
    try:
        costs, rows = asyncio.run(measure(reasoner, args))
    finally:
        reasoner.close()
    console = Console()
    table = Table(title=f"one latent step vs one explicit decode step ({args.steps} steps per chain, top-k {TOP_K})")
    columns = (
        "length",
        "chains",
        "explicit ms",
        "latent ms",
        "cold latent ms",
        "cached",
        "recomputed",
        "passes/round",
        "ratio",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for cost in costs:
        table.add_row(
            str(cost.length),
            str(cost.chains),
            f"{cost.explicit_s * 1e3:.1f}",
            f"{cost.latent_s * 1e3:.1f}",
            f"{cost.cold_latent_s * 1e3:.1f}",
            f"{cost.cached_fraction:.1%}",
            f"{cost.recomputed_rows:.1f}",
            f"{cost.passes_per_round:.2f}",
            f"{cost.ratio:.2f}x",
        )
    console.print(table)
    batched = costs[-1]
    tail = Table(title=f"{batched.chains} chains at length {batched.length}: latent step by rows recomputed per chain")
    for column in ("recomputed rows", "latent ms", "latent/explicit"):
        tail.add_column(column, justify="right")
    for rows_range, seconds in batched.by_recomputed.items():
        tail.add_row(rows_range, f"{seconds * 1e3:.1f}", f"{seconds / batched.explicit_s:.2f}x")
    console.print(tail)
    if rows:
        suite = Table(title=f"arith suite, {args.problems} problems, budget {args.budget} tokens each")
        suite_columns = ("thinking", "accuracy", "tokens", "latent steps", "switches", "closes injected", "unread mass")
        for column in (*suite_columns, "thinking ended"):
            suite.add_column(column, justify="right")
        for row in rows:
            suite.add_row(
                row.rule,
                f"{row.accuracy:.1%} +- {row.accuracy_2se:.1%}",
                f"{row.tokens:.1f} +- {row.tokens_2se:.1f}",
                f"{row.latent_steps:.1f}",
                f"{row.switches:.1f}",
                f"{row.close_injections:.2f}",
                f"{row.unread_mass:.4f}",
                ", ".join(f"{end} {count}" for end, count in row.ends.most_common()),
            )
        console.print(suite)
    for cost in costs[-2:] if len(costs) > 1 else costs:
        print(
            f"latent step / explicit decode step at length {cost.length}, {cost.chains} chain(s): "
            f"{cost.ratio:.2f}x (target <= 2x), {cost.recomputed_rows:.1f} rows recomputed per step, "
            f"{cost.passes_per_round:.2f} engine passes per round"
        )


if __name__ == "__main__":
    main()
