"""The remote backend on real `vllm serve` processes of the embedded model (CPU).

(a) Throughput: the same 64 prompts, greedy, same max_tokens, as raw concurrent streaming
    HTTP requests (httpx, token-id prompts) and as `solve_many("direct")` over the endpoint;
    one server, prefix cache reset before every run; each repeat runs both, which goes first
    alternating from repeat to repeat (`alternation.py`). Printed: each side's tokens/s over
    the repeats, last the verdict ("within noise" when the repeats disagree in direction).
    Target >= 0.95.
(b) Prefix-cache hits: `self_consistency` and `tree_search` on 2 replicas, with the default
    prefix affinity and with per-request round robin; hit tokens from the servers' own
    `vllm:prefix_cache_hits_total`, caches reset before every run (so a count, not a time: the
    order of the runs does not enter). Target: affinity >= 1.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx
from alternation import per_side, ratios, repeat_count, schedule, spread, verdict
from rich.console import Console
from rich.table import Table

from reasoner import Budget, Reasoner
from reasoner.engines.remote import RemoteBackend
from reasoner.engines.routing import PrefixAffinity, RoundRobin, RoutingPolicy
from reasoner.engines.vllm_server import VLLMServer, cpu_server_args
from reasoner.models import resolve_model

QUESTIONS = [f"What is {a} + {b}? Explain briefly." for a in range(3, 67, 8) for b in range(5, 45, 5)]
SEARCH_QUESTIONS = [
    # A context of its own per question (~150 tokens, several KV blocks) that all of a solve's
    # requests share and no other solve does: where a solve's requests land decides its hits.
    "Here are some numbers: "
    + ", ".join(str((seed * 7919 + index * 104729) % 997) for index in range(60))
    + ". What is the first number plus the last number?"
    for seed in range(1, 9)
]
SERVER_ARGS = (*cpu_server_args(), "--max-model-len", "2048", "--enable-prompt-tokens-details", "--max-num-seqs", "64")
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING", "VLLM_SERVER_DEV_MODE": "1"}
HITS = "vllm:prefix_cache_hits_total"
RAW, TOOLKIT = "raw HTTP", "reasoner direct"
QUERIES = "vllm:prefix_cache_queries_total"


async def reset_caches(servers: list[VLLMServer]) -> None:
    async with httpx.AsyncClient() as client:
        for server in servers:
            (await client.post(f"{server.root_url}/reset_prefix_cache")).raise_for_status()


async def raw_http(server: VLLMServer, model: str, prompts: list[list[int]], max_tokens: int) -> tuple[int, float]:
    """Concurrent streaming completions, one per prompt, the way a user without the toolkit would send them."""

    async def one(client: httpx.AsyncClient, token_ids: list[int]) -> int:
        body = {
            "model": model,
            "prompt": token_ids,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
            "return_token_ids": True,
        }
        generated = 0
        async with client.stream("POST", f"{server.url}/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    for choice in httpx.Response(200, content=line[6:]).json().get("choices", []):
                        generated += len(choice.get("token_ids") or ())
        return generated

    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(timeout=600.0, limits=limits) as client:
        started = time.perf_counter()
        counts = await asyncio.gather(*(one(client, ids) for ids in prompts))
    return sum(counts), time.perf_counter() - started


async def toolkit(reasoner: Reasoner, max_tokens: int) -> tuple[int, float]:
    started = time.perf_counter()
    solutions = await reasoner.asolve_many(QUESTIONS, budget=Budget(tokens=max_tokens), budget_per_prompt=True)
    return sum(solution.usage.generated_tokens for solution in solutions), time.perf_counter() - started


async def throughput(server: VLLMServer, repeats: int, max_tokens: int) -> list[tuple[int, str, int, float]]:
    """(repeat, side, generated tokens, wall s) of every measured run, in the order they ran."""
    async with Reasoner(endpoint=server.url) as reasoner:
        await reasoner.astart()
        backend = reasoner.backend
        assert isinstance(backend, RemoteBackend) and backend.served_model is not None
        tokenizer = backend.tokenizer()
        prompts = [tokenizer.encode(reasoner.profile.build_prompt(tokenizer, q, thinking=False)) for q in QUESTIONS]
        await raw_http(server, backend.served_model, prompts[:8], 8)  # warm-up, not counted
        runs = {
            RAW: lambda: raw_http(server, backend.served_model, prompts, max_tokens),
            TOOLKIT: lambda: toolkit(reasoner, max_tokens),
        }
        rows = []
        for repeat, side in schedule(list(runs), repeats):
            await reset_caches([server])
            rows.append((repeat, side, *await runs[side]()))
    return rows


async def cache_hits(
    servers: list[VLLMServer], policy: RoutingPolicy, strategy: str, options: dict[str, Any], budget: int
) -> tuple[int, int]:
    """Prefix-cache hit and query tokens, summed over the replicas, for one strategy's solves."""
    backend = RemoteBackend([server.url for server in servers], policy=policy)
    async with Reasoner(backend=backend, profile="smollm2") as reasoner:
        await reasoner.astart()
        await reset_caches(servers)
        before = await backend.server_metrics()
        await reasoner.asolve_many(
            SEARCH_QUESTIONS, budget=budget, strategy=strategy, budget_per_prompt=True, **options
        )
        after = await backend.server_metrics()
    hits = sum(after[url][HITS] - before[url][HITS] for url in after)
    queries = sum(after[url][QUERIES] - before[url][QUERIES] for url in after)
    return int(hits), int(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=repeat_count, default=6)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--budget", type=int, default=256, help="per-solve budget of the cache-hit runs")
    args = parser.parse_args()
    model = resolve_model(None).source
    console = Console()
    with VLLMServer(model, SERVER_ARGS, env=SERVER_ENV) as first:
        rows = asyncio.run(throughput(first, args.repeats, args.max_tokens))
        table = Table(title=f"(a) {len(QUESTIONS)} prompts, max_tokens={args.max_tokens}, greedy, one server")
        for column in ("repeat", "run", "generated tokens", "wall s", "tokens/s"):
            table.add_column(column, justify="right")
        for repeat, side, tokens, seconds in rows:
            table.add_row(str(repeat + 1), side, str(tokens), f"{seconds:.2f}", f"{tokens / seconds:.1f}")
        console.print(table)
        rates = per_side((side, tokens / seconds) for _, side, tokens, seconds in rows)
        for side, values in rates.items():
            console.print(f"{side} tokens/s over {len(values)} repeats: {spread(values)}")
        with VLLMServer(model, SERVER_ARGS, env=SERVER_ENV) as second:
            table = Table(title=f"(b) {len(SEARCH_QUESTIONS)} solves per run, 2 replicas, budget {args.budget}")
            for column in ("strategy", "routing", "hit tokens", "query tokens", "hit rate"):
                table.add_column(column, justify="right")
            totals = {"prefix_affinity": 0, "round_robin": 0}
            for strategy, options in (("self_consistency", {"n": 4}), ("tree_search", {})):
                for policy in (PrefixAffinity(), RoundRobin()):
                    hits, queries = asyncio.run(cache_hits([first, second], policy, strategy, options, args.budget))
                    totals[policy.name] += hits
                    table.add_row(strategy, policy.name, str(hits), str(queries), f"{hits / max(queries, 1):.1%}")
            console.print(table)
    affinity_ratio = totals["prefix_affinity"] / max(totals["round_robin"], 1)
    console.print(f"prefix-cache hit tokens, affinity / round robin: {affinity_ratio:.2f}x")
    console.print(verdict("toolkit over HTTP / raw HTTP throughput", ratios(rates[TOOLKIT], rates[RAW])))


if __name__ == "__main__":
    main()
