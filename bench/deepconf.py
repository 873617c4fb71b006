"""DeepConf online vs self-consistency at the same n: generated tokens and accuracy, in one run.

Runs the REAL engine (the embedded model unless --model) on the procedural `arith` suite at
difficulty 1. Both strategies get the same n traces, the same per-trace token cap and the
same sampling (temperature, top_p); `deepconf` stops traces whose group confidence falls
below its warm-up threshold and stops sampling at consensus `tau`. Each repeat draws a new
problem set (seed + repeat) and runs both strategies on it, which goes first alternating from
repeat to repeat (`alternation.py`: the second would otherwise always find the prompts in the
prefix cache). Reported: accuracy and mean tokens per strategy, each strategy's tokens and wall
time per repeat (mean ± sd, min-max), the paired accuracy difference (bootstrap interval) and,
last, the tokens ratio deepconf / self_consistency (bootstrap interval over problems, and the
per-repeat ratios); a difference or ratio whose interval or repeats straddle no-change is
printed as "within noise". The paper: up to 84.7% fewer tokens at equal or better accuracy;
the target here is at most 0.8x the tokens for no more than a small accuracy loss.

    engine-slot .venv/bin/python bench/deepconf.py --problems 20 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
from alternation import listing, ratios, repeat_count, schedule, spread, within_noise
from rich.console import Console
from rich.table import Table

from evals.stats import Interval, paired_bootstrap
from evals.suites import Problem, grade, load_suite
from reasoner import Budget, Reasoner, Solution


@dataclass
class Arm:
    """One strategy's per-problem results over every repeat."""

    label: str
    correct: list[float] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    repeat_tokens: list[float] = field(default_factory=list)
    repeat_wall_s: list[float] = field(default_factory=list)


def run_arm(reasoner: Reasoner, arm: Arm, problems: list[Problem], strategy: str, options: dict) -> None:
    started = time.monotonic()
    solutions: list[Solution] = reasoner.solve_many(
        [problem.prompt for problem in problems],
        Budget(tokens=options["n"] * options["sample_tokens"]),
        strategy,
        budget_per_prompt=True,
        **options,
    )
    arm.repeat_wall_s.append(time.monotonic() - started)
    for problem, solution in zip(problems, solutions, strict=True):
        arm.correct.append(float(grade(problem, solution.answer)))
        arm.tokens.append(float(solution.usage.generated_tokens))
        arm.metrics.append(dict(solution.metrics))
    arm.repeat_tokens.append(sum(arm.tokens[-len(problems) :]))


def ratio_interval(numerator: list[float], denominator: list[float], resamples: int = 2000) -> Interval:
    """sum(numerator) / sum(denominator) with a percentile bootstrap over paired problems."""
    top, bottom = np.asarray(numerator), np.asarray(denominator)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, top.size, size=(resamples, top.size))
    ratios = top[draws].sum(axis=1) / bottom[draws].sum(axis=1)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return Interval(float(top.sum() / bottom.sum()), float(low), float(high))


def mean_metric(arm: Arm, name: str) -> float:
    values = [float(m[name]) for m in arm.metrics if isinstance(m.get(name), (int, float))]
    return statistics.mean(values) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--repeats", type=repeat_count, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--n-init", type=int, default=3)
    parser.add_argument("--sample-tokens", type=int, default=64)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--eta", type=float, default=90.0)
    parser.add_argument("--tau", type=float, default=0.95)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.7)
    args = parser.parse_args()
    sampling = {"n": args.n, "sample_tokens": args.sample_tokens, "temperature": args.temperature, "top_p": 0.95}
    deepconf = sampling | {
        "mode": "online",
        "n_init": args.n_init,
        "window": args.window,
        "eta": args.eta,
        "tau": args.tau,
        "parallel": args.parallel,
    }
    baseline, online = Arm(f"self_consistency@{args.n}"), Arm(f"deepconf online@{args.n}")
    arms = {baseline.label: (baseline, "self_consistency", sampling), online.label: (online, "deepconf", deepconf)}
    console = Console(width=140)
    with Reasoner(args.model) as reasoner:
        reasoner.start()
        for repeat, label in schedule(list(arms), args.repeats):
            problems = list(load_suite("arith", limit=args.problems, seed=args.seed + repeat, difficulty=1))
            arm, strategy, options = arms[label]
            run_arm(reasoner, arm, problems, strategy, options)
    table = Table(
        title=f"arith d1, {args.problems} problems x {args.repeats} repeats, n={args.n}, "
        f"<= {args.sample_tokens} tokens/trace, deepconf n_init={args.n_init} window={args.window} "
        f"eta={args.eta:g} tau={args.tau:g}"
    )
    for column in ("strategy", "accuracy", "mean tokens", "traces", "aborted", "stopped by consensus", "wall s"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for arm in (baseline, online):
        consensus = sum(m.get("stopped_by") == "consensus" for m in arm.metrics) / len(arm.metrics)
        traces = mean_metric(arm, "traces") if arm is online else mean_metric(arm, "samples_used")
        table.add_row(
            arm.label,
            f"{statistics.mean(arm.correct):.3f}",
            f"{statistics.mean(arm.tokens):.1f}",
            f"{traces:.2f}",
            f"{mean_metric(arm, 'aborted'):.2f}" if arm is online else "-",
            f"{consensus:.2f}" if arm is online else "-",
            f"{sum(arm.repeat_wall_s):.1f}",
        )
    console.print(table)
    for arm in (baseline, online):
        console.print(f"{arm.label} per repeat: tokens {spread(arm.repeat_tokens)}, wall s {spread(arm.repeat_wall_s)}")
    accuracy = paired_bootstrap(online.correct, baseline.correct)
    noise = ", within noise" if within_noise((accuracy.low, accuracy.high), 0.0) else ""
    console.print(
        f"accuracy difference deepconf - self_consistency: {accuracy.estimate:+.3f}{noise} "
        f"(95% CI {accuracy.low:+.3f} .. {accuracy.high:+.3f}), {len(online.correct)} paired problems"
    )
    ratio = ratio_interval(online.tokens, baseline.tokens)
    per_repeat = ratios(online.repeat_tokens, baseline.repeat_tokens)
    shown = (
        "within noise"
        if within_noise(per_repeat) or within_noise((ratio.low, ratio.high))
        else f"{ratio.estimate:.2f}x"
    )
    console.print(
        f"tokens deepconf / self_consistency: {shown} "
        f"(95% CI {ratio.low:.2f} .. {ratio.high:.2f}; per-repeat {listing(per_repeat)})"
    )


if __name__ == "__main__":
    main()
