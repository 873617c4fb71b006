"""The public entry points: `Reasoner`, `solve` and `solve_many`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from reasoner.accelerators import DEFAULT_ACCELERATOR, Accelerator, get_accelerator
from reasoner.batch import gather_solutions, split_batch_budget
from reasoner.budget import Budget, BudgetLike, as_budget
from reasoner.cost import CostModel
from reasoner.deadline import cost_cap_outcome, deadline_outcome
from reasoner.engine_loop import EngineLoopOwner
from reasoner.engines.base import Backend
from reasoner.errors import InputError, ModelError
from reasoner.events import EventCallback
from reasoner.ledger import BudgetExhausted, CostExhausted
from reasoner.model_set import ModelEntry, ModelSpec, ModelTarget, build_model_set
from reasoner.models import EMBEDDED_MODEL
from reasoner.profiles import ModelProfile
from reasoner.request_checks import validate_on_models
from reasoner.session import Session
from reasoner.solution import Solution, Usage
from reasoner.strategy import Strategy, get_strategy

DEFAULT_CONCURRENCY = 256


class Reasoner(EngineLoopOwner):
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
        self.models, self.default_model = build_model_set(single, models, default, accelerator, verbose=verbose)
        if max_concurrency < 1:
            raise InputError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        super().__init__()

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
        return await self._on_own_loop(gather_solutions(calls))

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
        return await gather_solutions(calls)

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

    async def __aenter__(self) -> Reasoner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Reasoner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        return validate_on_models(prompt, budget, strategy, answer_format, options, self.models, self.target(model))

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
