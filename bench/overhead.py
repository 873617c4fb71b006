"""Toolkit overhead: the same 64 prompts through raw vLLM and through `solve_many("direct")`.

Both runs use ONE engine (the toolkit's own AsyncLLM), the same token-id prompts, greedy
decoding and the same max_tokens; the prefix cache is reset before every run. Runs
alternate raw/toolkit to spread machine noise, and the median ratio is printed last.
Target: the toolkit keeps at least 0.95 of raw vLLM's generated tokens/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from rich.console import Console
from rich.table import Table

from reasoner import Budget, Reasoner

QUESTIONS = [f"What is {a} + {b}? Explain briefly." for a in range(3, 67, 8) for b in range(5, 45, 5)]


async def raw_vllm(reasoner: Reasoner, prompts: list[list[int]], max_tokens: int) -> tuple[int, float]:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    engine = reasoner.backend.engine  # type: ignore[attr-defined]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, output_kind=RequestOutputKind.DELTA)

    async def one(index: int, token_ids: list[int]) -> int:
        generated = 0
        async for output in engine.generate(
            {"prompt_token_ids": token_ids}, params, request_id=f"raw-{index}-{time.time_ns()}"
        ):
            generated += len(output.outputs[0].token_ids)
        return generated

    await engine.reset_prefix_cache()
    started = time.perf_counter()
    counts = await asyncio.gather(*(one(index, ids) for index, ids in enumerate(prompts)))
    return sum(counts), time.perf_counter() - started


async def toolkit(reasoner: Reasoner, questions: list[str], max_tokens: int) -> tuple[int, float]:
    await reasoner.backend.engine.reset_prefix_cache()  # type: ignore[attr-defined]
    started = time.perf_counter()
    solutions = await reasoner.asolve_many(questions, budget=Budget(tokens=max_tokens), budget_per_prompt=True)
    return sum(solution.usage.generated_tokens for solution in solutions), time.perf_counter() - started


async def measure(reasoner: Reasoner, repeats: int, max_tokens: int) -> list[tuple[str, int, float]]:
    await reasoner.astart()
    tokenizer = reasoner.backend.tokenizer()
    prompts = [
        tokenizer.encode(reasoner.profile.build_prompt(tokenizer, question, thinking=False)) for question in QUESTIONS
    ]
    await raw_vllm(reasoner, prompts[:8], 8)  # warm-up, not counted
    rows = []
    for _ in range(repeats):
        rows.append(("raw vLLM", *await raw_vllm(reasoner, prompts, max_tokens)))
        rows.append(("reasoner direct", *await toolkit(reasoner, QUESTIONS, max_tokens)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    reasoner = Reasoner(args.model)
    try:
        rows = asyncio.run(measure(reasoner, args.repeats, args.max_tokens))
    finally:
        reasoner.close()
    table = Table(title=f"{len(QUESTIONS)} prompts, max_tokens={args.max_tokens}, greedy, one engine")
    for column in ("run", "generated tokens", "wall s", "tokens/s"):
        table.add_column(column, justify="right")
    for name, tokens, seconds in rows:
        table.add_row(name, str(tokens), f"{seconds:.2f}", f"{tokens / seconds:.1f}")
    console = Console()
    console.print(table)
    ratios = [
        (toolkit_tokens / toolkit_s) / (raw_tokens / raw_s)
        for (_, raw_tokens, raw_s), (_, toolkit_tokens, toolkit_s) in zip(rows[::2], rows[1::2], strict=True)
    ]
    console.print(f"per-repeat ratios: {', '.join(f'{ratio:.3f}' for ratio in ratios)}")
    console.print(f"toolkit / raw vLLM throughput (median): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
