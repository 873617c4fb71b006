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
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.budget_curve import run_method
from bench.sampling import sampling_configs
from cli.arguments import model_set_from
from controllers.auto import Auto
from controllers.calibration import acalibrate
from controllers.policy import Policy
from evals.records import record_key
from evals.runner import make_plan, make_record
from evals.suites import Problem, grade, load_suite
from reasoner import Budget, Reasoner, ReasonerError, Solution, get_strategy

ROUTELLM_FIGURE = (
    "GPT-4/Mixtral-8x7B, MT Bench: 95% of GPT-4's quality with 14% of calls to GPT-4 (~85% cost cut; "
    "GSM8K ~35%); over 2x cheaper at equal quality"
)


@dataclass
class Row:
    """One comparison: what the paper reports and what this run measured."""

    paper: str
    comparison: str
    paper_figure: str
    measured: str


@dataclass
class Tally:
    """Accuracy and tokens of one method over the problems."""

    correct: int
    problems: int
    tokens: int
    seconds: float = 0.0
    cost: float | None = None
    """eFLOPs of every solve together; None when any was unpriced."""

    @property
    def accuracy(self) -> float:
        return self.correct / self.problems if self.problems else 0.0


def tally(problems: list[Problem], solutions: list[Solution], seconds: float = 0.0) -> Tally:
    correct = sum(grade(problem, solution.answer) for problem, solution in zip(problems, solutions, strict=True))
    costs = [solution.usage.cost for solution in solutions]
    cost = None if None in costs else float(sum(cost or 0 for cost in costs))
    return Tally(correct, len(problems), sum(solution.usage.generated_tokens for solution in solutions), seconds, cost)


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


async def solve_all(
    reasoner: Reasoner, problems: list[Problem], budget: Budget | int, strategy: str, **options: Any
) -> tuple[list[Solution], float]:
    started = time.perf_counter()
    solutions = await reasoner.asolve_many(
        [problem.prompt for problem in problems], budget, strategy, budget_per_prompt=True, **options
    )
    return solutions, time.perf_counter() - started


async def elastic_vs_truncation(reasoner: Reasoner, problems: list[Problem], budgets: list[int]) -> Row:
    cells = []
    for budget in budgets:
        elastic = await run_method(reasoner, "elastic", problems, budget)
        truncation = await run_method(reasoner, "truncation", problems, budget)
        share = [sum(result.correct for result in results) / len(problems) for results in (elastic, truncation)]
        cells.append(f"B={budget}: {share[0]:.0%} vs {share[1]:.0%}")
    return Row(
        "Elastic Reasoning",
        "elastic vs truncation, accuracy at fixed budgets",
        "E1-Math-1.5B AIME24 at ~1.5K tokens: 13.5% vs 5.2% truncated (2.6x)",
        "; ".join(cells),
    )


async def pruning_vs_best_of(reasoner: Reasoner, problems: list[Problem], n: int, sample_tokens: int) -> Row:
    configs = {config.options.get("policy"): config for config in sampling_configs(n, sample_tokens, (16,))}
    results = {}
    for policy in ("best_of", "prune"):
        config = configs[policy]
        solutions, _ = await solve_all(reasoner, problems, config.budget, config.strategy, **config.options)
        results[policy] = tally(problems, solutions)
    best_of, pruned = results["best_of"], results["prune"]
    return Row(
        "Adaptive Inference-Time Compute",
        f"early pruning vs best-of-{n}: tokens, accuracy",
        "50-75% of samples pruned early with minimal loss; 74% of best-of-16's gain at 1.2 samples",
        f"tokens {ratio(pruned.tokens, best_of.tokens)} of best-of-{n}; "
        f"accuracy {pruned.accuracy:.0%} vs {best_of.accuracy:.0%}",
    )


async def ets_vs_rebase(reasoner: Reasoner, problems: list[Problem], width: int, budget: int) -> Row:
    runs = {}
    for selection in ("ets", "rebase"):
        solutions, seconds = await solve_all(
            reasoner, problems, budget, "tree_search", selection=selection, width=width, max_depth=6, step_tokens=16
        )
        kv = statistics.mean(float(solution.metrics["kv_peak_distinct_tokens"] or 0) for solution in solutions)
        runs[selection] = (tally(problems, solutions, seconds), kv)
    (ets, ets_kv), (rebase, rebase_kv) = runs["ets"], runs["rebase"]
    return Row(
        "ETS",
        f"ets vs rebase, width {width}: KV, throughput, accuracy",
        "KV 1.8x smaller, throughput 1.4x, accuracy within noise",
        f"KV rebase/ets {ratio(rebase_kv, ets_kv)}, throughput {ratio(rebase.seconds, ets.seconds)}, "
        f"accuracy {ets.accuracy:.0%} vs {rebase.accuracy:.0%}",
    )


async def swireasoning_vs_explicit(reasoner: Reasoner, problems: list[Problem], budget: int) -> Row:
    tallies = {}
    try:
        for rule in ("swireasoning", "explicit"):
            solutions, _ = await solve_all(reasoner, problems, budget, "latent_switch", rule=rule)
            tallies[rule] = tally(problems, solutions)
    except ReasonerError as error:
        measured = f"not run: {error}"
    else:
        swi, explicit = tallies["swireasoning"], tallies["explicit"]
        per_token = [t.correct / t.tokens if t.tokens else 0.0 for t in (swi, explicit)]
        measured = (
            f"accuracy {swi.accuracy:.0%} vs {explicit.accuracy:.0%} at {budget} tokens; "
            f"accuracy per token {ratio(per_token[0], per_token[1])}"
        )
    return Row(
        "SwiReasoning",
        "swireasoning vs explicit thinking, equal token budget",
        "+56-79% accuracy per token at limited budgets; +1.5-2.8 pts unlimited",
        measured,
    )


async def auto_vs_best_of_n(reasoner: Reasoner, problems: list[Problem], sample_tokens: int) -> Row:
    try:
        solutions, _ = await solve_all(reasoner, problems, 8 * sample_tokens, "auto")
    except ReasonerError as error:
        return Row("Compute-optimal scaling", "auto vs best-of-N", "4x less compute", f"not run: {error}")
    auto = tally(problems, solutions)
    curve = []
    for n in (1, 2, 4, 8):
        options = {"n": n, "sample_tokens": sample_tokens, "temperature": 0.7} if n > 1 else {}
        strategy = "self_consistency" if n > 1 else "direct"
        voted, _ = await solve_all(reasoner, problems, n * sample_tokens, strategy, **options)
        curve.append((n, tally(problems, voted)))
    reaching = [(n, row) for n, row in curve if row.accuracy >= auto.accuracy]
    if reaching:
        n, row = min(reaching, key=lambda item: item[1].tokens)
        measured = f"best-of-{n} needs {ratio(row.tokens, auto.tokens)} auto's tokens for {auto.accuracy:.0%}"
    else:
        measured = f"no best-of-N up to 8 reaches auto's {auto.accuracy:.0%}"
    return Row(
        "Compute-optimal scaling (Snell et al.)",
        "tokens best-of-N needs to match auto's accuracy",
        "4x (best-of-N needs 4x the compute of compute-optimal)",
        measured,
    )


async def parallel_isolation(reasoner: Reasoner, problems: list[Problem], budget: int) -> Row:
    contexts, accuracies = {}, {}
    for context in ("isolated", "shared"):
        solutions, _ = await solve_all(
            reasoner, problems, budget, "parallel", spawn="always", max_fanout=2, child_tokens=48, context=context
        )
        contexts[context] = statistics.mean(
            int(solution.metrics["parent_context_tokens"] or 0) for solution in solutions
        )
        accuracies[context] = tally(problems, solutions).accuracy
    return Row(
        "Adaptive Parallel Reasoning",
        "parent context with vs without isolated children",
        "83.4% vs 60.0% at a 4k context (Countdown): children keep the parent's context small",
        f"parent context {contexts['isolated']:.0f} vs {contexts['shared']:.0f} tokens "
        f"({ratio(contexts['shared'], contexts['isolated'])} smaller); "
        f"accuracy {accuracies['isolated']:.0%} vs {accuracies['shared']:.0%}",
    )


async def agot_vs_direct(reasoner: Reasoner, problems: list[Problem], budget: int) -> Row:
    correct: dict[str, list[bool]] = {}
    tokens: dict[str, int] = {}
    for strategy in ("graph_of_thoughts", "direct"):
        solutions, _ = await solve_all(reasoner, problems, budget, strategy)
        correct[strategy] = [
            grade(problem, solution.answer) for problem, solution in zip(problems, solutions, strict=True)
        ]
        tokens[strategy] = sum(solution.usage.generated_tokens for solution in solutions)
    differences = [int(a) - int(d) for a, d in zip(correct["graph_of_thoughts"], correct["direct"], strict=True)]
    gain = statistics.mean(differences)
    error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else 0.0
    verdict = "within noise" if abs(gain) <= 2 * error else "beyond noise"
    agot, direct = (statistics.mean(correct[strategy]) for strategy in ("graph_of_thoughts", "direct"))
    return Row(
        "Adaptive Graph of Thoughts",
        f"graph_of_thoughts vs direct at {budget} tokens: accuracy, tokens",
        "up to +46.2% on GPQA (gpt-4o-mini, training-free)",
        f"accuracy {agot:.0%} vs {direct:.0%}, {gain:+.0%} ({verdict}: 2 s.e. {2 * error:.0%} paired); "
        f"tokens {ratio(tokens['graph_of_thoughts'], tokens['direct'])} of direct's",
    )


async def ead_vs_large(reasoner: Reasoner, problems: list[Problem], budget: int) -> Row:
    """`entropy_switch` over the first two models of the set vs the second (large) one alone, at one budget."""
    paper, figure = (
        "Entropy Adaptive Decoding",
        "Qwen2.5 0.5B/14B MATH: 74.3% vs 80.0%, 14B writes 25%, 67% less compute",
    )
    names = list(reasoner.models)
    if len(names) < 2:
        return Row(paper, "entropy_switch vs the large model", figure, "not run: needs --model small=M --model large=M")
    switched, _ = await solve_all(reasoner, problems, budget, "entropy_switch")
    prompts = [problem.prompt for problem in problems]
    alone = await reasoner.asolve_many(prompts, budget, "direct", budget_per_prompt=True, model=names[1])
    ours, theirs = tally(problems, switched), tally(problems, alone)
    large_share = statistics.mean(float(solution.metrics["large_share"] or 0.0) for solution in switched)
    costs = [[solution.usage.cost for solution in solutions] for solutions in (switched, alone)]
    priced = [[cost for cost in each if cost is not None] for each in costs]
    saved = "unpriced" if priced != costs else f"cost {ratio(sum(priced[0]), sum(priced[1]))} of the large model's"
    return Row(
        paper,
        f"entropy_switch ({names[0]}/{names[1]}) vs {names[1]} alone (direct) at {budget} tokens",
        figure,
        f"accuracy {ours.accuracy:.0%} vs {theirs.accuracy:.0%}, {names[1]} writes {large_share:.0%}, {saved}",
    )


async def learn_routing_policy(
    reasoner: Reasoner, problems: Sequence[Problem], budgets: Sequence[int], names: Sequence[str]
) -> Policy:
    """The routing policy `reasoner calibrate --model ...` would learn from eval records of `direct` at each
    budget on each model of `names` over `problems` (the pilot estimator runs on the default model)."""
    suite = problems[0].suite
    plan = make_plan(suite, ["direct"], budgets)
    prompts = [problem.prompt for problem in problems]
    records = []
    for name in names:
        for budget in budgets:
            solutions = await reasoner.asolve_many(prompts, budget, "direct", budget_per_prompt=True, model=name)
            for problem, solution in zip(problems, solutions, strict=True):
                key = record_key(suite, problem.id, "direct", budget, {}, name)
                correct = grade(problem, solution.answer)
                records.append(make_record(key, plan, problem, "direct", budget, {}, solution, correct))
    calibration = await acalibrate(
        reasoner,
        records,
        {f"{suite}|{problem.id}": problem.prompt for problem in problems},
        "pilot",
        answer_formats={f"{suite}|{problem.id}": problem.answer_format for problem in problems},
        names={name: name for name in names},
    )
    return calibration.policy


def routing_comparison(routed: Tally, alone: Tally, on_large: int, large: str) -> str:
    """What the routing row reports: accuracy of each (and the share of the large one's kept), cost of each
    in eFLOPs (and how much less route spent, or how many times as much: its estimate is paid too), and how
    many prompts `route` sent to `large`."""
    kept = f"{routed.accuracy / alone.accuracy:.0%} of it kept" if alone.accuracy else "retention n/a"
    if routed.cost is None or alone.cost is None:
        cost = "cost unpriced"
    elif not alone.cost:
        cost = f"cost {routed.cost:.3g} vs 0 eFLOPs"
    else:
        share = routed.cost / alone.cost
        change = f"{1 - share:.0%} less" if share <= 1 else f"{share:.2f}x as much"
        cost = f"cost {routed.cost:.3g} vs {alone.cost:.3g} eFLOPs ({change})"
    return (
        f"accuracy {routed.accuracy:.0%} vs {alone.accuracy:.0%} ({kept}), {cost}; "
        f"{on_large}/{routed.problems} prompts routed to {large}"
    )


async def route_vs_large(
    reasoner: Reasoner, calibration: list[Problem], problems: list[Problem], budgets: list[int]
) -> Row:
    """`route` (a policy learned on `calibration` over the first two models) vs the second alone (`direct`)."""
    paper = "RouteLLM"
    names = list(reasoner.models)
    if len(names) < 2:
        return Row(paper, "route vs the large model", ROUTELLM_FIGURE, "not run: needs --model small=M --model large=M")
    large, budget = names[1], max(budgets)
    if not calibration:
        return Row(paper, "route vs the large model", ROUTELLM_FIGURE, "not run: no other problems to calibrate on")
    try:
        policy = await learn_routing_policy(reasoner, calibration, budgets, names[:2])
    except ReasonerError as error:
        return Row(paper, "route vs the large model", ROUTELLM_FIGURE, f"not run: {error}")
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "route.json")
        policy.save(path)
        route = get_strategy("route").from_options({"policy_file": path})
        assert isinstance(route, Auto)
        routed, _ = await solve_all(reasoner, problems, budget + route.estimator.cost_cap, "route", policy_file=path)
    prompts = [problem.prompt for problem in problems]
    alone = await reasoner.asolve_many(prompts, budget, "direct", budget_per_prompt=True, model=large)
    on_large = sum(solution.metrics.get("chosen_model") == large for solution in routed)
    return Row(
        paper,
        f"route ({names[0]}/{large}, policy from {len(calibration)} other problems) vs {large} alone (direct) "
        f"at {budget} tokens",
        ROUTELLM_FIGURE,
        routing_comparison(tally(problems, routed), tally(problems, alone), on_large, large),
    )


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
