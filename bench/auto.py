"""Compute by difficulty: `auto` against fixed (strategy, budget) configurations at the same total budget.

Runs the REAL engine (the embedded model unless --model) on the procedural `arith` suite at
difficulties 1..4, split per difficulty into a calibration half and a held-out half.

1. Calibration half: every fixed configuration (direct, and self_consistency = best-of-N by
   vote at N = 2, 4, 8) runs on every problem; the records go to `--records`. The probe
   estimator's features are measured on every problem and a probe is trained on them
   (label: no configuration solved the problem); the policy is learned
   from the records with the probe's difficulties deciding the bins.
2. Held-out half: every fixed configuration again, and `auto` (estimator `probe`, the learned
   policy) through `solve_many` with a shared budget equal to the total of the middle
   configuration, so estimation and allocation are paid from the same total.

The table gives accuracy, generated tokens and the budget per configuration; the last line
is the compute ratio: the tokens of the cheapest best-of-N (N = 1 is direct; N > 1 votes with
self_consistency) whose held-out accuracy reaches auto's, divided by the tokens auto spent.

    flock /tmp/reasoner-engine.lock .venv/bin/python bench/auto.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from controllers.estimators import ProbeEstimator
from controllers.policy import learn_policy
from controllers.probe import Probe, train_probe
from evals.suites import Problem, grade, load_suite
from reasoner import Budget, Reasoner, Session, Solution


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


async def probe_features(reasoner: Reasoner, problems: list[Problem]) -> list[dict[str, float]]:
    estimator = ProbeEstimator()
    backend = reasoner.backend
    await backend.start()

    async def one(problem: Problem) -> dict[str, float]:
        session = Session(backend, backend.tokenizer(), reasoner.profile, Budget(tokens=estimator.cost_cap))
        return (await estimator.estimate(session, problem.prompt)).features

    return list(await asyncio.gather(*(one(problem) for problem in problems)))


def train_on_calibration(
    records: list[dict[str, Any]], problems: list[Problem], features: list[dict[str, float]]
) -> tuple[Probe, dict[str, float]]:
    probe = train_probe(features, unsolved(records, problems))
    difficulties = {
        f"{problem.suite}|{problem.id}": probe.predict(row) for problem, row in zip(problems, features, strict=False)
    }
    return probe, difficulties


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
        Path(args.records).write_text("".join(json.dumps(record) + "\n" for record in records))
        features = await probe_features(reasoner, calibration)
        probe, difficulties = train_on_calibration(records, calibration, features)
        policy = learn_policy(records, model=reasoner.model_name, difficulties=difficulties)
        workdir = Path(tempfile.mkdtemp(prefix="bench-auto-"))
        probe.save(workdir / "probe.json")
        policy.save(workdir / "policy.json")
        rows = []
        held_records: list[dict[str, Any]] = []
        for config in configs:
            started = time.monotonic()
            results = await run_fixed(reasoner, config, held_out)
            rows.append(tally(config.label, config.budget * len(held_out), results, time.monotonic() - started))
            held_records += [record_of(problem, config, solution, reasoner.model_name) for problem, solution in results]
        held_features = await probe_features(reasoner, held_out)
        total = configs[args.match].budget * len(held_out)
        started = time.monotonic()
        solutions = await reasoner.asolve_many(
            [problem.prompt for problem in held_out],
            Budget(tokens=total),
            "auto",
            estimator="probe",
            policy_file=str(workdir / "policy.json"),
            probe_file=str(workdir / "probe.json"),
        )
        auto_row = tally(
            "auto (probe)", total, list(zip(held_out, solutions, strict=False)), time.monotonic() - started
        )
    show(console, [*rows, auto_row], policy.thresholds, policy.choices, [solution.metrics for solution in solutions])
    held_wrong = unsolved(held_records, held_out)
    console.print(
        f"held-out accuracy by difficulty, {configs[0].label}: {by_difficulty(held_records, configs[0].label)}"
    )
    console.print(
        f"held-out accuracy by difficulty, {configs[-1].label}: {by_difficulty(held_records, configs[-1].label)}"
    )
    console.print(
        f"probe: trained on {len(calibration)} prompts, held-out accuracy "
        f"{probe.accuracy(held_features, held_wrong):.1%} at telling unsolved prompts "
        f"(share unsolved {sum(held_wrong) / len(held_wrong):.1%})"
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
            f"{needed.correct / needed.count:.1%}, auto {auto_row.tokens} for {accuracy:.1%}"
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
            f"{row.correct}/{row.count} ({row.correct / row.count:.1%})",
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
    parser.add_argument("--per-difficulty", type=int, default=16, help="problems per difficulty, halved")
    parser.add_argument("--sample-tokens", type=int, default=64, help="tokens per sample (and direct's budget)")
    parser.add_argument("--match", type=int, default=2, help="index of the fixed configuration whose total auto gets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records", default="runs/auto_calibration.jsonl", help="calibration records file")
    asyncio.run(main(parser.parse_args()))
