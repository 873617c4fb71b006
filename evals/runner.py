"""The resumable eval runner: suite x strategy x budget on one engine, one record per result.

Every (problem, strategy, budget) is a `Reasoner.asolve` on the same engine, a bounded number
at a time, so the engine batches them. Each result is graded and appended to the records
file (flushed) as soon as it finishes; a rerun with the same file skips the keys already
there. A solve that fails with a toolkit error (engine death included) writes no record and
is counted in `EvalResult.failures`; the run goes on, and a rerun picks it up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.records import RecordWriter, read_records, record_key
from evals.sandbox import ISOLATIONS, Isolation, check_isolation
from evals.suites import Problem, agrade
from reasoner.api import Reasoner
from reasoner.errors import BudgetError, InputError, ReasonerError, StrategyError, SuiteError
from reasoner.solution import Solution
from reasoner.strategy import get_strategy
from reasoner.trace import trace_summary

DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class EvalPlan:
    """What to run. `options` apply to every strategy; a key `name.option` only to strategy `name`."""

    suite: str
    strategies: tuple[str, ...]
    budgets: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    concurrency: int = DEFAULT_CONCURRENCY
    sandbox: Isolation = "jail"

    def options_for(self, strategy: str) -> dict[str, Any]:
        """The options strategy `strategy` runs with."""
        chosen = {key: value for key, value in self.options.items() if "." not in key}
        prefix = f"{strategy}."
        chosen.update({key[len(prefix) :]: value for key, value in self.options.items() if key.startswith(prefix)})
        return chosen


@dataclass
class Failure:
    """One result that could not be produced; it has no record, so a rerun retries it."""

    key: str
    error: str


@dataclass
class EvalResult:
    """What a run did: records written now, records already there, failures, and totals."""

    written: int = 0
    skipped: int = 0
    correct: int = 0
    generated_tokens: int = 0
    elapsed_s: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.written if self.written else None


def parse_budgets(text: str) -> tuple[int, ...]:
    """`"256,1024"` -> (256, 1024); an empty list or a non-integer is a `BudgetError`."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise BudgetError("the budgets list is empty; pass token budgets like --budgets 256,1024")
    budgets = []
    for item in items:
        if not (item.isascii() and item.isdigit()) or int(item) < 1:
            raise BudgetError(f"budget {item!r} is not a positive whole number of tokens; e.g. --budgets 256,1024")
        budgets.append(int(item))
    return tuple(dict.fromkeys(budgets))


def make_plan(
    suite: str,
    strategies: Sequence[str],
    budgets: Sequence[int],
    options: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    concurrency: int = DEFAULT_CONCURRENCY,
    sandbox: Isolation = "jail",
) -> EvalPlan:
    """A validated plan: every strategy exists and accepts its options; budgets are positive."""
    names = tuple(dict.fromkeys(name.strip() for name in strategies if name.strip()))
    if not names:
        raise StrategyError("the strategies list is empty; pass names like --strategies direct,elastic")
    if not budgets:
        raise BudgetError("the budgets list is empty; pass token budgets like --budgets 256,1024")
    if any(not isinstance(budget, int) or budget < 1 for budget in budgets):
        raise BudgetError(f"budgets must be positive whole numbers of tokens, got {list(budgets)}")
    if concurrency < 1:
        raise BudgetError(f"concurrency must be at least 1, got {concurrency}")
    if sandbox not in ISOLATIONS:
        raise InputError(f"sandbox must be one of {', '.join(ISOLATIONS)}, got {sandbox!r}")
    plan = EvalPlan(suite, names, tuple(budgets), dict(options or {}), seed, concurrency, sandbox)
    for name in names:
        get_strategy(name).from_options(plan.options_for(name))
    scoped = {key.split(".", 1)[0] for key in plan.options if "." in key}
    if unknown := scoped - set(names):
        raise StrategyError(f"options name strategies not in the run: {', '.join(sorted(unknown))}")
    return plan


def check_plan(reasoner: Reasoner, plan: EvalPlan, problems: Sequence[Problem]) -> None:
    """Raise now the error any cell of the grid would raise (budget too small for the model, ...)."""
    if not problems:
        raise SuiteError("no problems to run; check the suite, its filters and --limit")
    if any(problem.answer_format == "code" for problem in problems):
        check_isolation(plan.sandbox)
    for strategy in plan.strategies:
        for budget in plan.budgets:
            reasoner.validate(
                problems[0].prompt,
                budget,
                strategy,
                answer_format=problems[0].answer_format,
                **plan.options_for(strategy),
            )


async def arun_eval(
    reasoner: Reasoner,
    plan: EvalPlan,
    problems: Sequence[Problem],
    out: str | Path | RecordWriter,
    *,
    on_start: Callable[[int, int], None] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> EvalResult:
    """Run the plan's grid on `problems`, appending one record per result to `out`; resumable.

    `out` is a path, or a `RecordWriter` already opened on it (closed at the end).
    `on_start(total, already_done)` is called once the finished keys are known, `on_record`
    with each record written.
    """
    check_plan(reasoner, plan, problems)
    result = EvalResult()
    started = time.monotonic()
    with out if isinstance(out, RecordWriter) else RecordWriter(out) as writer:
        done = read_records(writer.path, must_exist=False).keys
        limiter = asyncio.Semaphore(plan.concurrency)

        async def run_one(problem: Problem, strategy: str, budget: int, key: str) -> None:
            options = plan.options_for(strategy)
            async with limiter:
                try:
                    solution = await reasoner.asolve(
                        problem.prompt, budget, strategy, answer_format=problem.answer_format, **options
                    )
                except ReasonerError as exc:
                    result.failures.append(Failure(key, f"{type(exc).__name__}: {exc}"))
                    return
            response = solution.answer if problem.answer_format == "math" else (solution.answer or solution.text)
            correct = await agrade(problem, response, plan.sandbox)
            record = make_record(key, plan, problem, strategy, budget, options, solution, correct)
            if problem.answer_format == "code" and response and response.strip():  # the grader never downgrades
                record["isolation"] = plan.sandbox
            writer.write(record)
            result.written += 1
            result.correct += int(correct)
            result.generated_tokens += solution.usage.generated_tokens
            if on_record is not None:
                on_record(record)

        jobs = []
        for budget in plan.budgets:
            for strategy in plan.strategies:
                for problem in problems:
                    options = plan.options_for(strategy)
                    key = record_key(plan.suite, problem.id, strategy, budget, options, reasoner.model_name)
                    if key in done:
                        result.skipped += 1
                    else:
                        done.add(key)
                        jobs.append(run_one(problem, strategy, budget, key))
        if on_start is not None:
            on_start(len(jobs) + result.skipped, result.skipped)
        await _run_all(jobs)
    result.elapsed_s = time.monotonic() - started
    return result


def run_eval(reasoner: Reasoner, plan: EvalPlan, problems: Sequence[Problem], out: str | Path) -> EvalResult:
    """Synchronous `arun_eval` (starts its own event loop)."""
    return asyncio.run(arun_eval(reasoner, plan, problems, out))


def make_record(
    key: str,
    plan: EvalPlan,
    problem: Problem,
    strategy: str,
    budget: int,
    options: dict[str, Any],
    solution: Solution,
    correct: bool,
) -> dict[str, Any]:
    """The JSON record of one result: run config, problem, answer and response text, grade, usage,
    latency, the problem's difficulty fields, the strategy's metrics and a trace summary."""
    return {
        "key": key,
        "suite": plan.suite,
        "problem_id": problem.id,
        "strategy": strategy,
        "budget": budget,
        "options": options,
        "strategy_options": solution.options,
        "model": solution.model,
        "seed": plan.seed,
        "answer": solution.answer,
        "text": solution.text,
        "reference": problem.reference,
        "correct": correct,
        "usage": solution.usage.model_dump(),
        "latency_s": round(solution.latency_s, 4),
        "meta": problem.meta,
        "metrics": solution.metrics,
        "trace": trace_summary(solution.trace),
        "finished_at": time.time(),
    }


async def _run_all(jobs: list[Any]) -> None:
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
