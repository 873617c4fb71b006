"""`bench/papers.py`'s rows that need two models (`--model small=M --model large=M`): Entropy Adaptive
Decoding and RouteLLM-style routing, each against the large model alone."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.paper_tally import Row, Tally, ratio, solve_all, tally
from controllers.auto import Auto
from controllers.calibration import acalibrate
from controllers.policy import Policy
from evals.records import record_key
from evals.runner import make_plan, make_record
from evals.suites import Problem, grade
from reasoner import Reasoner, ReasonerError, get_strategy

ROUTELLM_FIGURE = (
    "GPT-4/Mixtral-8x7B, MT Bench: 95% of GPT-4's quality with 14% of calls to GPT-4 (~85% cost cut; "
    "GSM8K ~35%); over 2x cheaper at equal quality"
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
