"""The public entry points: `Reasoner`, `solve` and `solve_many`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar, cast

from reasoner.accelerators import DEFAULT_ACCELERATOR, Accelerator, get_accelerator
from reasoner.budget import Budget, BudgetLike, as_budget
from reasoner.cost import CostModel
from reasoner.deadline import cost_cap_outcome, deadline_outcome
from reasoner.engines.base import Backend
from reasoner.errors import BudgetError, InputError, ModelError, UsageError
from reasoner.events import EventCallback
from reasoner.ledger import BudgetExhausted, CostExhausted
from reasoner.model_set import ModelEntry, ModelSpec, ModelTarget, build_target, model_specs
from reasoner.models import EMBEDDED_MODEL
from reasoner.profiles import ModelProfile
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

    `models={"small": ..., "large": ...}` runs several models instead (`reasoner.model_set`): each
    entry a model id, or a dict / `ModelSpec` of the arguments above for that model. A solve runs
    on `default` (else the first) unless `asolve(..., model=name)` names another, and its strategy
    may send any request to any of them; the budget caps them all together. `backend`, `profile`,
    `cost_model` and `model_name` are those of the default model.
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
        models: Mapping[str, ModelEntry] | None = None,
        default: str | None = None,
    ):
        accelerator = get_accelerator(accelerator)
        single = ModelSpec(
            model=model,
            endpoint=endpoint,
            api_key=api_key,
            engine_args=engine_args,
            backend=backend,
            profile=profile,
            cost_model=cost_model,
        )
        if models is None:
            if default is not None:
                raise InputError("default= names one of models=; pass models= too, or drop default=")
            target = build_target(None, single, accelerator, verbose=verbose)
            self.models = {target.name: target}
            self.default_model = target.name
        else:
            given = [name for name, value in vars(single).items() if value is not None]
            if given:
                raise InputError(
                    f"models= names each model with its own arguments; {', '.join(given)}= cannot be given beside "
                    "it: put them in that model's entry (a dict or reasoner.ModelSpec)"
                )
            specs = model_specs(models)
            if default is not None and default not in specs:
                raise ModelError(f"default={default!r} is not one of the models: {', '.join(specs)}")
            self.models = {name: build_target(name, spec, accelerator, verbose=verbose) for name, spec in specs.items()}
            self.default_model = default if default is not None else next(iter(specs))
        if max_concurrency < 1:
            raise InputError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._portal: LoopThread | None = None
        self._limiter: asyncio.Semaphore | None = None

    @property
    def backend(self) -> Backend:
        return self.models[self.default_model].backend

    @backend.setter
    def backend(self, backend: Backend) -> None:
        self.models[self.default_model].backend = backend

    @property
    def profile(self) -> ModelProfile:
        return self.models[self.default_model].profile

    @profile.setter
    def profile(self, profile: ModelProfile) -> None:
        self.models[self.default_model].profile = profile

    @property
    def cost_model(self) -> CostModel | None:
        return self.models[self.default_model].cost_model

    @cost_model.setter
    def cost_model(self, cost_model: CostModel | None) -> None:
        self.models[self.default_model].cost_model = cost_model

    @property
    def model_name(self) -> str:
        """The default model's name: its own (an HF id, a served name) in a single-model Reasoner."""
        return self.default_model

    @model_name.setter
    def model_name(self, name: str) -> None:
        target = self.models.pop(self.default_model)
        target.name = self.default_model = name
        self.models = {name: target, **self.models}

    def target(self, model: str | None = None) -> ModelTarget:
        """The model named `model` (None: the default); a `ModelError` naming the known ones if there is none."""
        name = self.default_model if model is None else model
        if name not in self.models:
            raise ModelError(f"unknown model {name!r}; this Reasoner's models are {', '.join(self.models)}")
        return self.models[name]

    async def asolve(
        self,
        prompt: str,
        budget: BudgetLike = 512,
        strategy: str = "direct",
        *,
        answer_format: str = "math",
        on_event: EventCallback | None = None,
        model: str | None = None,
        **options: Any,
    ) -> Solution:
        """Solve one prompt; `options` are the strategy's own (validated by its options model).

        `on_event`, when given, is called with a `SolveEvent` each time a request of the solve
        produces output (see `reasoner.events`). Cancelling the solve aborts all its requests.
        `model` names the model of the set the solve runs on (default: the default model).
        """
        return await self._on_own_loop(self._solve(prompt, budget, strategy, answer_format, options, on_event, model))

    async def asolve_many(
        self,
        prompts: Sequence[str],
        budget: BudgetLike | Sequence[BudgetLike] = 512,
        strategy: str = "direct",
        *,
        budget_per_prompt: bool = False,
        answer_format: str = "math",
        model: str | None = None,
        **options: Any,
    ) -> list[Solution]:
        """Solve many prompts concurrently on one engine.

        By default `budget` is shared by the whole batch and split evenly between prompts, or by
        the strategy's `allocate_batch` class method when it has one (`auto` does); with
        `budget_per_prompt=True` every prompt gets the whole `budget`. A list of budgets gives
        each prompt its own. `model` as in `asolve`.
        """
        budgets = split_batch_budget(prompts, budget, budget_per_prompt)
        self.target(model)
        allocate_batch = getattr(get_strategy(strategy), "allocate_batch", None)
        if allocate_batch is not None and not budget_per_prompt and not isinstance(budget, Sequence):
            return await self._on_own_loop(
                self._solve_allocated(
                    allocate_batch, prompts, as_budget(budget), strategy, answer_format, options, model
                )
            )
        calls = [
            self._solve(prompt, share, strategy, answer_format, options, model=model)
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
        model: str | None,
    ) -> list[Solution]:
        """A shared budget split by the strategy's `allocate_batch`, which returns (budget, options) per prompt."""
        plans = await allocate_batch(self, prompts, budget, answer_format, options)
        calls = [
            self._solve(prompt, share, strategy, answer_format, {**options, **extra}, model=model)
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
        """Start the engines now instead of at the first solve."""
        await self._on_own_loop(self._start_engines())

    def start(self) -> None:
        """Synchronous `astart`."""
        self._portal_loop().run(self.astart())

    async def aclose(self) -> None:
        """Stop the engine; a later solve starts it again."""
        if self._loop is not None and self._loop is not asyncio.get_running_loop() and self._loop.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close_engines(), self._loop))
        else:
            await self._close_engines()

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
            asyncio.run_coroutine_threadsafe(self._close_engines(), self._loop).result()
        else:
            asyncio.run(self._close_engines())
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

    def _engines(self) -> list[Backend]:
        """Every model's backend, once each (two names may share one)."""
        return list({id(target.backend): target.backend for target in self.models.values()}.values())

    async def _start_engines(self) -> None:
        for backend in self._engines():
            await backend.start()

    async def _close_engines(self) -> None:
        for backend in self._engines():
            await backend.close()

    def _portal_loop(self) -> LoopThread:
        if self._portal is None:
            self._portal = LoopThread()
        return self._portal

    async def _on_own_loop(self, coroutine: Any) -> Any:
        """Run on the loop that owns the engine; the first loop to use this Reasoner owns it."""
        current = asyncio.get_running_loop()
        if self._loop is None or self._loop.is_closed() or (self._loop is not current and not self._loop.is_running()):
            if self._loop is not None and self._loop is not current:
                await self._close_engines()
            self._loop = current
            self._limiter = asyncio.Semaphore(self.max_concurrency)
        if self._loop is current:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    def validate(
        self,
        prompt: str,
        budget: BudgetLike,
        strategy: str,
        *,
        answer_format: str = "math",
        model: str | None = None,
        **options: Any,
    ) -> tuple[Budget, Strategy]:
        """Check a request without running it: the typed error a solve would raise, raised now."""
        target = self.target(model)
        resolved_budget, strategy_obj = validate_request(prompt, budget, strategy, answer_format, options)
        check_models = getattr(strategy_obj, "check_models", None)
        if check_models is not None:  # a strategy that names models (route's policy) refuses unknown ones now
            check_models(self.models)
        check_budget_fits_profile(resolved_budget, target.profile)
        unpriced = [name for name, each in self.models.items() if each.cost_model is None]
        if resolved_budget.cost is not None and unpriced:
            raise BudgetError(
                f"Budget(cost=...) needs a cost model, and {', '.join(unpriced)}'s config is not on this machine; "
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
        model: str | None = None,
    ) -> Solution:
        started = time.monotonic()
        resolved_budget, strategy_obj = self.validate(
            prompt, budget, strategy, answer_format=answer_format, model=model, **options
        )
        target = self.target(model)
        assert self._limiter is not None
        async with self._limiter:
            await self._start_engines()
            session = Session(
                target.backend,
                target.tokenizer(),
                target.profile,
                resolved_budget,
                answer_format,
                on_event=on_event,
                cost_model=target.cost_model,
                models=self.models,
                model=target.name,
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
            model=target.name,
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


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
