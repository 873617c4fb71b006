"""Compute by difficulty: `auto` against fixed (strategy, budget) configurations at the same total budget.

Runs the REAL engine (the embedded model unless --model) on the procedural `arith` suite at
difficulties 1..4, split per difficulty into a calibration half and a held-out half.

1. Calibration half: every fixed configuration (direct, and self_consistency = best-of-N by
   vote at N = 2, 4, 8) runs on every problem; the records go to `--records`. Then what
   `reasoner calibrate` does: the `--estimator` (default `hidden`: a probe over the prompt's
   hidden state from a vLLM pooling engine, zero generated tokens) runs on every problem and
   the policy is learned on its scores (`controllers.calibration.acalibrate`).
2. Held-out half: every fixed configuration again, and `auto` (the learned policy and its
   estimator) through `solve_many` with a shared budget equal to the total of the `--match`
   configuration, so estimation and allocation are paid from the same total. The estimator's
   held-out AUC at telling unsolved prompts from solved ones is printed.
3. Tight budget: `solve_many(8 held-out prompts, Budget(tokens=1600), "auto")` must answer
   every prompt within the total, degrading (estimate skipped, cheaper configuration) rather
   than raising after spending.

The table gives accuracy (± its binomial standard error), generated tokens and the budget per
configuration; the last line is the compute ratio: the tokens of the cheapest best-of-N (N = 1
is direct; N > 1 votes with self_consistency) whose held-out accuracy reaches auto's, divided
by the tokens auto spent.

    engine-slot .venv/bin/python bench/auto.py --per-difficulty 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from controllers.calibration import acalibrate, estimate_all
from evals.suites import Problem, grade, load_suite
from reasoner import Budget, Reasoner, Solution


@dataclass(frozen=True)
class Config:
    """A fixed configuration: strategy, options and per-prompt budget."""

    label: str
    strategy: str
    budget: int
    options: dict[str, Any]


@dataclass
class Row:
    label: str
    budget_total: int
    correct: int = 0
    tokens: int = 0
    count: int = 0
    seconds: float = 0.0


def fixed_configs(sample_tokens: int) -> list[Config]:
    configs = [Config("best-of-1 (direct)", "direct", sample_tokens, {})]
    for n in (2, 4, 8):
        options = {"n": n, "sample_tokens": sample_tokens, "temperature": 0.7}
        configs.append(Config(f"best-of-{n} (vote)", "self_consistency", n * sample_tokens, options))
    return configs


def split_problems(per_difficulty: int, seed: int) -> tuple[list[Problem], list[Problem]]:
    calibration, held_out = [], []
    for difficulty in (1, 2, 3, 4):
        problems = list(load_suite("arith", limit=per_difficulty, seed=seed, difficulty=difficulty))
        half = len(problems) // 2
        calibration += problems[:half]
        held_out += problems[half:]
    return calibration, held_out


async def run_fixed(reasoner: Reasoner, config: Config, problems: list[Problem]) -> list[tuple[Problem, Solution]]:
    solutions = await reasoner.asolve_many(
        [problem.prompt for problem in problems],
        config.budget,
        config.strategy,
        budget_per_prompt=True,
        **config.options,
    )
    return list(zip(problems, solutions, strict=True))


def record_of(problem: Problem, config: Config, solution: Solution, model: str) -> dict[str, Any]:
    return {
        "key": f"{problem.suite}|{problem.id}|{config.strategy}|{config.budget}|{json.dumps(config.options)}",
        "suite": problem.suite,
        "problem_id": problem.id,
        "strategy": config.strategy,
        "budget": config.budget,
        "options": config.options,
        "model": model,
        "answer": solution.answer,
        "reference": problem.reference,
        "correct": grade(problem, solution.answer),
        "usage": solution.usage.model_dump(),
        "meta": problem.meta,
        "label": config.label,
    }


def auc(scores: list[float], positive: list[bool]) -> float:
    """P(a random positive scores above a random negative), ties count half; 0.5 when one class is empty."""
    positives = [score for score, label in zip(scores, positive, strict=True) if label]
    negatives = [score for score, label in zip(scores, positive, strict=True) if not label]
    if not positives or not negatives:
        return 0.5
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def unsolved(records: list[dict[str, Any]], problems: list[Problem]) -> list[bool]:
    """Per problem: True when no configuration answered it right (the probe's label)."""
    solved: dict[str, bool] = defaultdict(bool)
    for record in records:
        solved[record["problem_id"]] |= bool(record["correct"])
    return [not solved[problem.id] for problem in problems]


def by_difficulty(records: list[dict[str, Any]], label: str) -> str:
    """Accuracy of one configuration per suite difficulty, e.g. `d1 33%, d2 8%`."""
    cells: dict[int, list[bool]] = defaultdict(list)
    for record in records:
        if record["label"] == label:
            cells[int(record["meta"]["difficulty"])].append(bool(record["correct"]))
    return ", ".join(f"d{level} {sum(cell) / len(cell):.0%}" for level, cell in sorted(cells.items()))


def tally(label: str, budget_total: int, results: list[tuple[Problem, Solution]], seconds: float) -> Row:
    row = Row(label, budget_total, count=len(results), seconds=seconds)
    for problem, solution in results:
        row.correct += int(grade(problem, solution.answer))
        row.tokens += solution.usage.generated_tokens
    return row


def standard_error(row: Row) -> float:
    """The binomial standard error of the row's accuracy: the spread one rerun on other problems may show."""
    accuracy = row.correct / row.count
    return math.sqrt(accuracy * (1 - accuracy) / row.count)


def cheapest_reaching(accuracy: float, curve: list[Row]) -> Row | None:
    """The best-of-N row with the fewest tokens whose accuracy is at least `accuracy`; None when none is."""
    reaching = [row for row in curve if row.correct / row.count >= accuracy]
    return min(reaching, key=lambda row: row.tokens) if reaching else None


async def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    console = Console()
    configs = fixed_configs(args.sample_tokens)
    calibration, held_out = split_problems(args.per_difficulty, args.seed)
    async with Reasoner(args.model) as reasoner:
        await reasoner.astart()
        records: list[dict[str, Any]] = []
        for config in configs:
            for problem, solution in await run_fixed(reasoner, config, calibration):
                records.append(record_of(problem, config, solution, reasoner.model_name))
        Path(args.records).parent.mkdir(parents=True, exist_ok=True)
        Path(args.records).write_text("".join(json.dumps(record) + "\n" for record in records))
        prompts = {f"{problem.suite}|{problem.id}": problem.prompt for problem in calibration}
        started = time.monotonic()
        learned = await acalibrate(reasoner, records, prompts, args.estimator, model=reasoner.model_name)
        calibration_seconds = time.monotonic() - started
        policy = learned.policy
        policy_path = Path(tempfile.mkdtemp(prefix="bench-auto-")) / "policy.json"
        policy.save(policy_path)
        rows = []
        held_records: list[dict[str, Any]] = []
        for config in configs:
            started = time.monotonic()
            results = await run_fixed(reasoner, config, held_out)
            rows.append(tally(config.label, config.budget * len(held_out), results, time.monotonic() - started))
            held_records += [record_of(problem, config, solution, reasoner.model_name) for problem, solution in results]
        assert policy.estimator is not None
        held_estimates = await estimate_all(reasoner, [problem.prompt for problem in held_out], policy.estimator)
        total = configs[args.match].budget * len(held_out)
        started = time.monotonic()
        prompts_held = [problem.prompt for problem in held_out]
        solutions = await reasoner.asolve_many(prompts_held, Budget(tokens=total), "auto", policy_file=str(policy_path))
        auto_row = tally(
            f"auto ({args.estimator})", total, list(zip(held_out, solutions, strict=True)), time.monotonic() - started
        )
        tight = await reasoner.asolve_many(prompts_held[:8], Budget(tokens=1600), "auto", policy_file=str(policy_path))
    show(console, [*rows, auto_row], policy.thresholds, policy.choices, [solution.metrics for solution in solutions])
    for label in (configs[0].label, configs[-1].label):
        console.print(f"held-out accuracy by difficulty, {label}: {by_difficulty(held_records, label)}")
    if learned.entropy is not None:
        cells = ", ".join(f"{mean:.2f}: {level:.2f}" for mean, level in learned.entropy.tertiles)
        console.print(
            f"pilot entropy tertiles (entropy: oracle difficulty) {cells}: {learned.entropy.shape}, "
            f"entropy weight {learned.entropy.entropy_weight:.1f}"
        )
    held_wrong = unsolved(held_records, held_out)
    estimator_tokens = sum(estimate.tokens for estimate in held_estimates)
    console.print(
        f"estimator {args.estimator}: calibration {calibration_seconds:.1f}s on {len(calibration)} prompts"
        + (f", probe held-out accuracy {learned.probe_accuracy:.1%}" if learned.probe_accuracy is not None else "")
        + f"; held-out AUC at telling unsolved prompts {auc([e.difficulty for e in held_estimates], held_wrong):.2f}"
        f" (share unsolved {sum(held_wrong) / len(held_wrong):.1%}), {estimator_tokens} tokens generated to estimate"
        f" {len(held_out)} prompts"
    )
    spent = sum(solution.usage.generated_tokens for solution in tight)
    answered = sum(
        solution.usage.generated_tokens > solution.usage.generated_by_phase.get("estimation", 0) for solution in tight
    )
    skipped = sum(bool(solution.metrics.get("estimate_skipped")) for solution in tight)
    degraded = sum(bool(solution.metrics.get("configuration_degraded")) for solution in tight)
    console.print(
        f"tight batch, 8 prompts in Budget(tokens=1600): {spent} tokens spent, {answered}/8 answered, "
        f"{skipped} estimates skipped, {degraded} configurations degraded, chosen budgets "
        f"{[solution.metrics.get('chosen_budget') for solution in tight]}"
    )
    accuracy = auto_row.correct / auto_row.count
    voting = cheapest_reaching(accuracy, rows[1:])
    if voting is not None:
        console.print(
            f"vs voting only (N >= 2): {voting.label} needs {voting.tokens} tokens for "
            f"{voting.correct / voting.count:.1%}: {voting.tokens / max(auto_row.tokens, 1):.2f}x auto's tokens"
        )
    needed = cheapest_reaching(accuracy, rows)
    if needed is None:
        console.print(f"auto's accuracy {accuracy:.1%} is above every best-of-N measured; ratio not defined")
    else:
        ratio = needed.tokens / max(auto_row.tokens, 1)
        console.print(
            f"compute ratio at equal accuracy: {needed.label} needs {needed.tokens} tokens for "
            f"{needed.correct / needed.count:.1%}, auto {auto_row.tokens} for {accuracy:.1%} (paper: ~4x)"
        )
        console.print(f"best-of-N tokens / auto tokens at equal accuracy: {ratio:.2f}x")


def show(
    console: Console, rows: list[Row], thresholds: tuple[float, float], choices: dict[str, Any], metrics: list[Any]
) -> None:
    table = Table(title="arith d1-4, held-out half: fixed configurations vs auto at the same total budget")
    for column in ("configuration", "accuracy", "generated tokens", "budget (total)", "seconds"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.label,
            f"{row.correct}/{row.count} ({row.correct / row.count:.1%} ± {standard_error(row):.1%})",
            str(row.tokens),
            str(row.budget_total),
            f"{row.seconds:.1f}",
        )
    console.print(table)
    console.print(f"policy thresholds {thresholds[0]:.3f} / {thresholds[1]:.3f}")
    for name, choice in choices.items():
        share = sum(1 for item in metrics if item.get("difficulty_bin") == name)
        spent = sum(int(item.get("chosen_budget") or 0) for item in metrics if item.get("difficulty_bin") == name)
        console.print(
            f"  {name}: {choice.strategy} {choice.options} at {choice.budget} tokens; "
            f"{share} held-out prompts, {spent} tokens allotted to their chosen strategies"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--per-difficulty", type=int, default=8, help="problems per difficulty, halved")
    parser.add_argument("--sample-tokens", type=int, default=64, help="tokens per sample (and direct's budget)")
    parser.add_argument("--match", type=int, default=2, help="index of the fixed configuration whose total auto gets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--estimator", default="hidden", choices=("pilot", "self_eval", "probe", "hidden"))
    parser.add_argument("--records", default="runs/auto_calibration.jsonl", help="calibration records file")
    asyncio.run(main(parser.parse_args()))
