"""The public entry points: `Reasoner`, `solve` and `solve_many`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from reasoner.accelerators import DEFAULT_ACCELERATOR, Accelerator, get_accelerator
from reasoner.budget import Budget, BudgetLike, as_budget
from reasoner.cost import CostModel
from reasoner.deadline import cost_cap_outcome, deadline_outcome
from reasoner.engines.base import Backend
from reasoner.errors import BudgetError, CostError, InputError, ModelError, UsageError
from reasoner.events import EventCallback
from reasoner.ledger import BudgetExhausted, CostExhausted
from reasoner.models import EMBEDDED_MODEL, find_local_model, resolve_model
from reasoner.profiles import ModelProfile, detect_profile, get_profile
from reasoner.request_checks import check_budget_fits_profile, split_batch_budget, validate_request
from reasoner.runtime import LoopThread
from reasoner.session import Session
from reasoner.solution import Solution, Usage
from reasoner.strategy import Strategy, get_strategy

T = TypeVar("T")

DEFAULT_CONCURRENCY = 256


class Reasoner:
    """One model, one engine, many solves. Use as a (async) context manager, or call `close`.

    `engine_args` go to vLLM unchanged (tensor_parallel_size, distributed_executor_backend,
    quantization, max_model_len, ...). `endpoint` runs on vLLM OpenAI-compatible servers
    instead of an in-process engine: one URL, or a list of replicas of one model (`model`
    then names the served model when a server lists several; `api_key` defaults to
    `REASONER_API_KEY`). `backend` replaces the engine, e.g. with
    `reasoner.testing.ScriptedBackend` in unit tests. `verbose=True` shows the engine's own
    logs; by default its processes write them to a log file under `REASONER_HOME/logs`.
    `cost_model` prices requests (`Usage.cost`, `Budget(cost=...)`); by default it is read from
    the model's config.json when the weights are local, on `accelerator` (`reasoner.accelerators`).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        engine_args: dict[str, Any] | None = None,
        endpoint: str | Sequence[str] | None = None,
        api_key: str | None = None,
        backend: Backend | None = None,
        profile: str | ModelProfile | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        verbose: bool = False,
        cost_model: CostModel | None = None,
        accelerator: str | Accelerator = DEFAULT_ACCELERATOR,
    ):
        if model is not None and not isinstance(model, str):
            raise ModelError(f"model must be a Hugging Face id or a local folder (a string), got {model!r}")
        if engine_args is not None and not isinstance(engine_args, dict):
            raise InputError(f"engine_args must be a dict of vLLM engine arguments, got {type(engine_args).__name__}")
        if endpoint is not None and (backend is not None or engine_args):
            raise InputError("endpoint= runs on remote servers; it cannot be combined with backend= or engine_args=")
        accelerator = get_accelerator(accelerator)
        if cost_model is not None and not isinstance(cost_model, CostModel):
            raise InputError(f"cost_model must be a reasoner.cost.CostModel, got {type(cost_model).__name__}")
        model_dir: Path | None = None
        if endpoint is not None:
            from reasoner.engines.remote import RemoteBackend
            from reasoner.engines.remote_discovery import describe_remote_model

            backend = RemoteBackend(endpoint, model=model, api_key=api_key)
            self.model_name, model_type = describe_remote_model(backend)
            local = find_local_model(self.model_name)
            model_dir = local.local_dir if local is not None else None
        elif backend is None:
            from reasoner.engines.vllm_local import VLLMBackend

            resolved = resolve_model(model)
            backend = VLLMBackend(resolved, engine_args, verbose=verbose)
            self.model_name = resolved.name
            model_type = resolved.model_type
            model_dir = resolved.local_dir
        else:
            self.model_name = model or "scripted"
            model_type = None
        self.backend = backend
        self.cost_model = cost_model or _config_cost_model(model_dir, accelerator, self.model_name)
        if isinstance(profile, ModelProfile):
            self.profile = profile
        elif isinstance(profile, str):
            self.profile = get_profile(profile)
        else:
            self.profile = detect_profile(self.model_name, model_type)
        if max_concurrency < 1:
            raise InputError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._portal: LoopThread | None = None
        self._limiter: asyncio.Semaphore | None = None

    async def asolve(
        self,
        prompt: str,
        budget: BudgetLike = 512,
        strategy: str = "direct",
        *,
        answer_format: str = "math",
        on_event: EventCallback | None = None,
        **options: Any,
    ) -> Solution:
        """Solve one prompt; `options` are the strategy's own (validated by its options model).

        `on_event`, when given, is called with a `SolveEvent` each time a request of the solve
        produces output (see `reasoner.events`). Cancelling the solve aborts all its requests.
        """
        return await self._on_own_loop(self._solve(prompt, budget, strategy, answer_format, options, on_event))

    async def asolve_many(
        self,
        prompts: Sequence[str],
        budget: BudgetLike | Sequence[BudgetLike] = 512,
        strategy: str = "direct",
        *,
        budget_per_prompt: bool = False,
        answer_format: str = "math",
        **options: Any,
    ) -> list[Solution]:
        """Solve many prompts concurrently on one engine.

        By default `budget` is shared by the whole batch and split evenly between prompts, or by
        the strategy's `allocate_batch` class method when it has one (`auto` does); with
        `budget_per_prompt=True` every prompt gets the whole `budget`. A list of budgets gives
        each prompt its own.
        """
        budgets = split_batch_budget(prompts, budget, budget_per_prompt)
        allocate_batch = getattr(get_strategy(strategy), "allocate_batch", None)
        if allocate_batch is not None and not budget_per_prompt and not isinstance(budget, Sequence):
            return await self._on_own_loop(
                self._solve_allocated(allocate_batch, prompts, as_budget(budget), strategy, answer_format, options)
            )
        calls = [
            self._solve(prompt, share, strategy, answer_format, options)
            for prompt, share in zip(prompts, budgets, strict=True)
        ]
        return await self._on_own_loop(_gather(calls))

    async def arun_on_engine_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await `coroutine` on the event loop that owns this Reasoner's engine.

        Code that drives `self.backend` itself (a `Session` of its own, as the estimators of
        calibration do) must run there: an engine answers only on the loop that started it, so
        from any other loop its requests would hang.
        """
        return cast(T, await self._on_own_loop(coroutine))

    async def _solve_allocated(
        self,
        allocate_batch: Any,
        prompts: Sequence[str],
        budget: Budget,
        strategy: str,
        answer_format: str,
        options: dict[str, Any],
    ) -> list[Solution]:
        """A shared budget split by the strategy's `allocate_batch`, which returns (budget, options) per prompt."""
        plans = await allocate_batch(self, prompts, budget, answer_format, options)
        calls = [
            self._solve(prompt, share, strategy, answer_format, {**options, **extra})
            for prompt, (share, extra) in zip(prompts, plans, strict=True)
        ]
        return await _gather(calls)

    def solve(self, prompt: str, budget: BudgetLike = 512, strategy: str = "direct", **kwargs: Any) -> Solution:
        """Synchronous `asolve`; works in scripts and inside a running event loop."""
        return self._portal_loop().run(self.asolve(prompt, budget, strategy, **kwargs))

    def solve_many(
        self,
        prompts: Sequence[str],
        budget: BudgetLike | Sequence[BudgetLike] = 512,
        strategy: str = "direct",
        **kwargs: Any,
    ) -> list[Solution]:
        """Synchronous `asolve_many`."""
        return self._portal_loop().run(self.asolve_many(prompts, budget, strategy, **kwargs))

    async def astart(self) -> None:
        """Start the engine now instead of at the first solve."""
        await self._on_own_loop(self.backend.start())

    def start(self) -> None:
        """Synchronous `astart`."""
        self._portal_loop().run(self.astart())

    async def aclose(self) -> None:
        """Stop the engine; a later solve starts it again."""
        if self._loop is not None and self._loop is not asyncio.get_running_loop() and self._loop.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.backend.close(), self._loop))
        else:
            await self.backend.close()

    def close(self) -> None:
        """Stop the engine and the helper thread, if any.

        Inside the event loop that runs the engine (after `await astart()` or `asolve` there),
        blocking would stop that loop for good: that is a `UsageError`; use `await aclose()`.
        """
        if self._loop is not None and self._loop is _running_loop():
            raise UsageError(
                "Reasoner.close() was called inside the event loop that runs the engine, where it would block "
                "forever; use `await reasoner.aclose()` or `async with Reasoner(...)`"
            )
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.backend.close(), self._loop).result()
        else:
            asyncio.run(self.backend.close())
        if self._portal is not None:
            self._portal.stop()
            self._portal = None
        self._loop = None

    async def __aenter__(self) -> Reasoner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Reasoner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _portal_loop(self) -> LoopThread:
        if self._portal is None:
            self._portal = LoopThread()
        return self._portal

    async def _on_own_loop(self, coroutine: Any) -> Any:
        """Run on the loop that owns the engine; the first loop to use this Reasoner owns it."""
        current = asyncio.get_running_loop()
        if self._loop is None or self._loop.is_closed() or (self._loop is not current and not self._loop.is_running()):
            if self._loop is not None and self._loop is not current:
                await self.backend.close()
            self._loop = current
            self._limiter = asyncio.Semaphore(self.max_concurrency)
        if self._loop is current:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    def validate(
        self, prompt: str, budget: BudgetLike, strategy: str, *, answer_format: str = "math", **options: Any
    ) -> tuple[Budget, Strategy]:
        """Check a request without running it: the typed error a solve would raise, raised now."""
        resolved_budget, strategy_obj = validate_request(prompt, budget, strategy, answer_format, options)
        check_budget_fits_profile(resolved_budget, self.profile)
        if resolved_budget.cost is not None and self.cost_model is None:
            raise BudgetError(
                f"Budget(cost=...) needs a cost model, and {self.model_name}'s config is not on this machine; "
                "pass Reasoner(cost_model=reasoner.cost.CostModel.from_config(...))"
            )
        return resolved_budget, strategy_obj

    async def _solve(
        self,
        prompt: str,
        budget: BudgetLike,
        strategy: str,
        answer_format: str,
        options: dict[str, Any],
        on_event: EventCallback | None = None,
    ) -> Solution:
        started = time.monotonic()
        resolved_budget, strategy_obj = self.validate(prompt, budget, strategy, answer_format=answer_format, **options)
        assert self._limiter is not None
        async with self._limiter:
            await self.backend.start()
            session = Session(
                self.backend,
                self.backend.tokenizer(),
                self.profile,
                resolved_budget,
                answer_format,
                on_event=on_event,
                cost_model=self.cost_model,
            )
            try:
                try:
                    outcome = await strategy_obj.run(session, prompt)
                except CostExhausted:
                    if not session.ledger.generated_tokens:
                        raise
                    outcome = cost_cap_outcome(session)
                except BudgetExhausted:
                    if not session.ledger.deadline_passed():
                        raise
                    outcome = deadline_outcome(session)
            except BaseException:
                await asyncio.shield(session.abort_all())
                raise
        return Solution(
            answer=outcome.answer,
            text=outcome.text,
            strategy=strategy,
            model=self.model_name,
            budget=resolved_budget,
            usage=Usage.from_ledger(session.ledger),
            latency_s=time.monotonic() - started,
            trace=session.trace.graph,
            metrics=outcome.metrics,
            options=strategy_obj.options.model_dump(),
        )


async def _gather(calls: list[Any]) -> list[Solution]:
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


_default_reasoners: dict[str, Reasoner] = {}


def default_reasoner(model: str | None = None) -> Reasoner:
    """The shared `Reasoner` that `solve` and `solve_many` use for `model` (made on first use)."""
    key = model or EMBEDDED_MODEL
    if key not in _default_reasoners:
        _default_reasoners[key] = Reasoner(model)
    return _default_reasoners[key]


def solve(
    prompt: str, budget: BudgetLike = 512, strategy: str = "direct", *, model: str | None = None, **kwargs: Any
) -> Solution:
    """Solve one prompt with the default (or named) model; see `Reasoner.asolve`."""
    return default_reasoner(model).solve(prompt, budget, strategy, **kwargs)


def solve_many(
    prompts: Sequence[str],
    budget: BudgetLike | Sequence[BudgetLike] = 512,
    strategy: str = "direct",
    *,
    model: str | None = None,
    **kwargs: Any,
) -> list[Solution]:
    """Solve many prompts concurrently; see `Reasoner.asolve_many`."""
    return default_reasoner(model).solve_many(prompts, budget, strategy, **kwargs)


def _config_cost_model(model_dir: Path | None, accelerator: Accelerator, name: str) -> CostModel | None:
    """The cost model of the model in `model_dir` (its config.json), or None without one."""
    if model_dir is None or not (model_dir / "config.json").is_file():
        return None
    try:
        return CostModel.from_config(model_dir, accelerator, name=name)
    except CostError:  # a model the engine runs but whose config the cost model cannot read runs unpriced
        return None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
