"""Each seed paper's headline comparison, measured on one model, with the paper's figure beside it.

One engine, eight comparisons, all on seeded procedural arithmetic (the only suite a tiny model
solves at all; on a real reasoning model pass `--suite gsm8k` or `math`):

1. Elastic Reasoning: `elastic` vs plain truncation at fixed total budgets.
2. Adaptive Inference-Time Compute: early pruning vs best-of-n, tokens and accuracy.
3. ETS: `tree_search` ets vs rebase, peak KV of the kept tree, throughput and accuracy.
4. SwiReasoning: `latent_switch` swireasoning vs explicit thinking at the same token budget.
5. Compute-optimal scaling: `auto` vs best-of-N (majority vote), the tokens best-of-N needs
   to match auto's accuracy.
6. Adaptive Parallel Reasoning: the parent's context with isolated children (APR) and with
   children that share the parent's context.
7. Adaptive Graph of Thoughts: `graph_of_thoughts` vs `direct` at the same budget, accuracy
   and tokens; "within noise" when the paired difference is within two standard errors.
8. Entropy Adaptive Decoding: `entropy_switch` over two models vs the large one alone (`direct`),
   accuracy, the large model's share of the tokens and the cost ratio; it runs only on a set,
   `--model small=MODEL --model large=MODEL` (the other rows then run on the first).
9. RouteLLM: `route` over two models vs the large one alone (`direct`), accuracy and cost (eFLOPs)
   of each. The routing policy is learned as `reasoner calibrate --model ...` learns it: `direct`
   at each `--route-budgets` budget on each model over as many other problems of the suite (none
   of the measured ones), the pilot estimator run on each, the cheapest configuration in
   cost within one standard error of the best per difficulty bin. Only on a set, as row 8.

The papers' figures come from trained or much larger models (E1-Math-1.5B, Llama-3.1-8B
finetuned for self-evaluation, Llemma-34B with a PRM, Qwen3-8B, PaLM-2-S*, gpt-4o-mini): this
script is how the same comparison is checked on a given model. On a GPU with a reasoning model:

    python -m bench.papers --model Qwen/Qwen3-1.7B --problems 200 --suite gsm8k

`--endpoint URL` runs everything against a remote vLLM server (OpenAI-compatible); it needs
the remote backend (`Reasoner(endpoint=...)`), and `latent_switch` needs prompt embeddings,
which a remote server does not take, so that row then says so. Run from the repository root
(`python -m bench.papers`); on this machine under `engine-slot`.

The rows live in `bench/paper_rows.py` (one model) and `bench/paper_model_rows.py` (two models).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.paper_model_rows import ead_vs_large, route_vs_large
from bench.paper_rows import (
    agot_vs_direct,
    auto_vs_best_of_n,
    elastic_vs_truncation,
    ets_vs_rebase,
    parallel_isolation,
    pruning_vs_best_of,
    swireasoning_vs_explicit,
)
from bench.paper_tally import Row
from cli.arguments import model_set_from
from evals.suites import load_suite
from reasoner import Reasoner, ReasonerError


async def measure(reasoner: Reasoner, args: argparse.Namespace) -> list[Row]:
    await reasoner.astart()
    difficulty = 1 if args.suite == "arith" else None
    problems = list(load_suite(args.suite, limit=args.problems, seed=args.seed, difficulty=difficulty))
    rows = [await elastic_vs_truncation(reasoner, problems, args.budgets)]
    rows.append(await pruning_vs_best_of(reasoner, problems, args.n, args.sample_tokens))
    rows.append(await ets_vs_rebase(reasoner, problems, args.width, args.tree_budget))
    rows.append(await swireasoning_vs_explicit(reasoner, problems, args.latent_budget))
    rows.append(await auto_vs_best_of_n(reasoner, problems, args.sample_tokens))
    rows.append(await parallel_isolation(reasoner, problems, args.parallel_budget))
    rows.append(await agot_vs_direct(reasoner, problems, args.agot_budget))
    rows.append(await ead_vs_large(reasoner, problems, args.ead_budget))
    measured = {problem.id for problem in problems}
    pool = load_suite(args.suite, limit=2 * args.problems, seed=args.seed, difficulty=difficulty)
    calibration = [problem for problem in pool if problem.id not in measured][: args.problems]
    rows.append(await route_vs_large(reasoner, calibration, problems, args.route_budgets))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="HF id or local path (default: the embedded model); repeat as NAME=MODEL|URL for a set "
        "(--model small=... --model large=...: the EAD and routing rows run on the first two, the rest on the first)",
    )
    parser.add_argument("--endpoint", default=None, help="URL of a vLLM server (needs the remote backend)")
    parser.add_argument("--suite", default="arith", help="procedural or hub suite name (arith, gsm8k, math)")
    parser.add_argument("--problems", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budgets", type=lambda text: [int(part) for part in text.split(",")], default=[24, 64])
    parser.add_argument("--n", type=int, default=4, help="samples of best-of-n and early pruning")
    parser.add_argument("--sample-tokens", type=int, default=64)
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--tree-budget", type=int, default=1024)
    parser.add_argument("--latent-budget", type=int, default=96)
    parser.add_argument("--parallel-budget", type=int, default=300)
    parser.add_argument("--agot-budget", type=int, default=768)
    parser.add_argument("--ead-budget", type=int, default=256)
    parser.add_argument(
        "--route-budgets",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[64, 256],
        help="budgets of direct on each model that the routing policy is learned from",
    )
    args = parser.parse_args()
    try:
        models = model_set_from(args.model, {})
    except ReasonerError as error:
        parser.error(str(error))
    if models is not None and args.endpoint:
        parser.error("--endpoint runs one model; name each model's server in --model NAME=URL instead")
    if models is not None:
        reasoner = Reasoner(models=models)
    else:
        connection: dict[str, Any] = {"endpoint": args.endpoint} if args.endpoint else {}
        reasoner = Reasoner(args.model[0] if args.model else None, **connection)
    try:
        rows = asyncio.run(measure(reasoner, args))
    finally:
        reasoner.close()
    table = Table(title=f"{args.problems} {args.suite} problems on {reasoner.model_name}: paper vs measured")
    for column in ("paper", "comparison", "paper's figure", "measured here"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.paper, row.comparison, row.paper_figure, row.measured)
    Console(width=160).print(table)
    ets = rows[2].measured.split(",")[0]
    print(f"ETS vs REBASE (the ratio this suite checks first): {ets} (paper 1.8x)")


if __name__ == "__main__":
    main()
