"""`bench/papers.py`'s rows that run on one model: Elastic Reasoning, Adaptive Inference-Time Compute, ETS,
SwiReasoning, compute-optimal scaling, Adaptive Parallel Reasoning and Adaptive Graph of Thoughts."""

from __future__ import annotations

import statistics

from bench.budget_curve import run_method
from bench.paper_tally import Row, ratio, solve_all, tally
from bench.sampling import sampling_configs
from evals.suites import Problem, grade
from reasoner import Reasoner, ReasonerError


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
