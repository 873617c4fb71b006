"""`Session`: one solve's handle on the engine, the ledger and the trace.

A strategy asks the session for generations; the session tokenizes, fits the request into
the context window and the budget (the ledger), runs it on the backend, counts what came
back and records it as a trace segment. Strategies never see the backend directly.

A Reasoner with several models (`reasoner.model_set`) gives its sessions all of them: a request
runs on the session's own model unless it names another (`start(..., model="large")`), and
`on_model` is the same solve seen from another model. The ledger and the trace are the solve's,
whichever model a request runs on; both record the model of every request.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from reasoner.budget import Budget
from reasoner.cost import CostModel
from reasoner.engines.base import Backend, Chunk, EmbedsPrompt, FinishReason, SamplingSpec, Tokenizer, TokensPrompt
from reasoner.errors import BudgetError, CapabilityError, ModelError, PromptError
from reasoner.events import EventCallback, SolveEvent
from reasoner.ledger import Ledger, Reservation
from reasoner.model_set import ModelTarget
from reasoner.profiles import ModelProfile
from reasoner.trace import Trace

_request_counter = itertools.count()
_solve_counter = itertools.count()

DEFAULT_MODEL = "default"


@dataclass
class Generation:
    """What one request produced. `node` is its segment in the trace; `model` the model it ran on."""

    request_id: str
    node: int
    prompt_token_ids: tuple[int, ...]
    model: str = ""
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    logprobs: list[dict[int, float]] | None = None
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    max_tokens: int = 0
    started_at: float = 0.0
    first_token_at: float | None = None
    finished_at: float | None = None

    @property
    def cut_by_limit(self) -> bool:
        """True when the request stopped because it reached its max_tokens."""
        return self.finish_reason == "length"


class RunningRequest:
    """A request in flight: watch its tokens arrive, wait for a length, abort it, or await it."""

    def __init__(
        self,
        session: Session,
        generation: Generation,
        reservation: Reservation,
        stream: AsyncIterator[Chunk],
        backend: Backend | None = None,
    ):
        self.generation = generation
        self._session = session
        self._backend = backend or session.backend
        self._reservation = reservation
        self.phase = reservation.phase
        self.kind = str(session.trace.graph.nodes[generation.node]["kind"])
        self._progress = asyncio.Condition()
        self._task = asyncio.ensure_future(self._consume(stream))

    async def _consume(self, stream: AsyncIterator[Chunk]) -> Generation:
        session, gen = self._session, self.generation
        first = True
        try:
            async for chunk in stream:
                if first:
                    session.ledger.record_prompt(chunk.prompt_tokens, chunk.cached_prompt_tokens, self._reservation)
                    gen.prompt_tokens, gen.cached_prompt_tokens = chunk.prompt_tokens, chunk.cached_prompt_tokens
                    first = False
                elif chunk.cached_prompt_tokens > gen.cached_prompt_tokens:
                    # A server may report its prefix-cache hits only with the last chunk.
                    session.ledger.record_prompt(
                        0, chunk.cached_prompt_tokens - gen.cached_prompt_tokens, self._reservation
                    )
                    gen.cached_prompt_tokens = chunk.cached_prompt_tokens
                gen.text += chunk.text
                if chunk.token_ids:
                    session.ledger.record_tokens(self._reservation, len(chunk.token_ids))
                    gen.first_token_at = gen.first_token_at or time.monotonic()
                    gen.token_ids.extend(chunk.token_ids)
                    if chunk.logprobs is not None:
                        gen.logprobs = (gen.logprobs or []) + list(chunk.logprobs)
                if chunk.finished:
                    gen.finish_reason = chunk.finish_reason
                session.emit(self, chunk.text, len(chunk.token_ids), chunk.finished, chunk.finish_reason)
                async with self._progress:
                    self._progress.notify_all()
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
            unfinished = gen.finish_reason is None
            gen.finish_reason = gen.finish_reason or "abort"
            gen.finished_at = time.monotonic()
            session.ledger.close(self._reservation, aborted=gen.finish_reason == "abort")
            session.running.discard(self)
            if unfinished:
                session.emit(self, "", 0, True, "abort")
            session.trace.update(
                gen.node,
                tokens=len(gen.token_ids),
                text=gen.text,
                finish_reason=gen.finish_reason,
                cached_prompt_tokens=gen.cached_prompt_tokens,
                started_at=gen.started_at - session.ledger.started_at,
                finished_at=gen.finished_at - session.ledger.started_at,
            )
            async with self._progress:
                self._progress.notify_all()
        return gen

    @property
    def done(self) -> bool:
        return self._task.done()

    async def wait_for_tokens(self, count: int) -> Generation:
        """Return once the request has at least `count` tokens or has finished."""
        async with self._progress:
            await self._progress.wait_for(lambda: len(self.generation.token_ids) >= count or self._task.done())
        return self.generation

    async def abort(self) -> Generation:
        """Stop the request; the tokens it would still have made are counted as saved."""
        if not self._task.done():
            await self._backend.abort(self.generation.request_id)
        return await self.result()

    async def result(self) -> Generation:
        """Wait for the request to finish and return what it produced."""
        return await asyncio.shield(self._task)


class Session:
    """The engine as one solve sees it: budgeted, counted and traced.

    Its request ids are `<solve_id>/r<n>`, so a backend with replicas can keep one solve's
    requests together (`engines.base.solve_key`). `cost_model` prices its requests
    (`reasoner.cost`); without one, `Usage.cost` is None and a cost budget is refused.
    `backend`, `tokenizer`, `profile` and `cost_model` are those of the session's own model,
    named `model`; `models` are the other models its requests may name.
    """

    def __init__(
        self,
        backend: Backend,
        tokenizer: Tokenizer,
        profile: ModelProfile,
        budget: Budget,
        answer_format: str = "math",
        ledger: Ledger | None = None,
        trace: Trace | None = None,
        on_event: EventCallback | None = None,
        *,
        cost_model: CostModel | None = None,
        models: Mapping[str, ModelTarget] | None = None,
        model: str = DEFAULT_MODEL,
    ):
        self.backend = backend
        self.tokenizer = tokenizer
        self.profile = profile
        self.budget = budget
        self.answer_format = answer_format
        self.cost_model = cost_model
        self.model = model
        given = dict(models or {})
        own_name = given[model].model_name if model in given else model
        self.models = given | {model: ModelTarget(model, own_name, backend, profile, cost_model)}
        self.ledger = ledger or Ledger(budget, priced=cost_model is not None, default_model=model)
        self.trace = trace or Trace()
        self.solve_id = f"s{next(_solve_counter)}"
        self.on_event = on_event
        self.running: set[RunningRequest] = set()

    @property
    def remaining(self) -> int:
        """Tokens still grantable to a new request."""
        return self.ledger.remaining

    @contextmanager
    def sub_session(self, tokens: int, cost: int | None = None) -> Iterator[Session]:
        """A session on the same engine, ledger and trace whose budget is `tokens` of what remains.

        While the block runs the rest of this session's budget is held back in the shared
        ledger, so the sub-session can never spend more than `tokens`; what it spends stays
        counted here. Under a cost cap, `cost` (eFLOPs) likewise caps the sub-session's cost (None:
        all the cost left). `Budget.samples`, `deadline_s` and `cost` carry over (the shared ledger
        holds the cost cap).
        """
        if not 1 <= tokens <= self.remaining:
            raise BudgetError(f"a sub-session of {tokens} tokens does not fit the {self.remaining} left")
        cost_left = self.ledger.cost_left
        if cost is not None and (cost_left is None or not 0 <= cost <= cost_left):
            raise BudgetError(f"a sub-session of {cost} eFLOPs does not fit the {cost_left} left of the cost budget")
        held_cost = 0 if cost is None or cost_left is None else cost_left - cost
        budget = Budget(
            tokens=tokens, samples=self.budget.samples, deadline_s=self.budget.deadline_s, cost=self.budget.cost
        )
        inner = Session(
            self.backend,
            self.tokenizer,
            self.profile,
            budget,
            self.answer_format,
            self.ledger,
            self.trace,
            self.on_event,
            cost_model=self.cost_model,
            models=self.models,
            model=self.model,
        )
        # The same in-flight set: a cancelled solve aborts the sub-session's requests too.
        inner.running = self.running
        with self.ledger.hold(self.remaining - tokens, cost=held_cost):
            yield inner

    def target(self, model: str | None = None) -> ModelTarget:
        """The model a request naming `model` runs on (None: the session's own); a `ModelError` if unknown."""
        name = self.model if model is None else model
        if name not in self.models:
            raise ModelError(f"unknown model {name!r}; this solve's models are {', '.join(sorted(self.models))}")
        return self.models[name]

    def on_model(self, model: str) -> Session:
        """This solve (ledger, trace, budget, requests in flight) with `model` as its own model.

        A strategy runs another strategy, or its own steps, on another model through it.
        """
        target = self.target(model)
        if target.name == self.model:
            return self
        view = Session(
            target.backend,
            target.tokenizer(),
            target.profile,
            self.budget,
            self.answer_format,
            self.ledger,
            self.trace,
            self.on_event,
            cost_model=target.cost_model,
            models=self.models,
            model=target.name,
        )
        view.solve_id, view.running = self.solve_id, self.running
        return view

    def emit(
        self, request: RunningRequest, text: str, new_tokens: int, finished: bool, reason: FinishReason | None
    ) -> None:
        """Tell the `on_event` callback, if any, what one request just produced."""
        if self.on_event is None:
            return
        self.on_event(
            SolveEvent(
                request_id=request.generation.request_id,
                phase=request.phase,
                kind=request.kind,
                text=text,
                new_tokens=new_tokens,
                finished=finished,
                finish_reason=reason,
                generated_tokens=self.ledger.generated_tokens,
                prompt_tokens=self.ledger.prompt_tokens,
                requests=self.ledger.requests,
                model=request.generation.model,
            )
        )

    def keep(self, phase: str, kind: str, text: str = "", *, finished: bool = False) -> None:
        """Tell the `on_event` callback, if any, that the solve keeps `text` in its chain (a `kept` event, see
        `reasoner.events`): for a strategy whose requests' raw output is not what it keeps."""
        if self.on_event is not None:
            totals = (self.ledger.generated_tokens, self.ledger.prompt_tokens, self.ledger.requests)
            self.on_event(SolveEvent("", phase, kind, text, 0, finished, None, *totals, model=self.model, kept=True))

    async def abort_all(self) -> None:
        """Abort every request of this session still in flight (a cancelled solve calls it)."""
        for request in list(self.running):
            await request.abort()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def extract_answer(self, text: str) -> str | None:
        return self.profile.extract_answer(text, self.answer_format)

    async def start(
        self,
        prompt: str | Sequence[int] | np.ndarray,
        *,
        max_tokens: int,
        phase: str,
        kind: str,
        parent: int | None = None,
        edge: str = "continue",
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        stop: Sequence[str] = (),
        stop_token_ids: Sequence[int] = (),
        logprobs: int | None = None,
        include_stop: bool = False,
        final: bool = False,
        model: str | None = None,
        **node_attrs: object,
    ) -> RunningRequest:
        """Start a request: text, token ids or input embeddings `[length, hidden]`.

        `max_tokens` is clamped to the context window and to what the ledger grants; the
        ledger raises `BudgetExhausted` when it can grant nothing. A `final` request (the
        strategy's answer) may still start after the budget's deadline. `model` names the
        model to run on (default: the session's own); a text prompt is tokenized by its tokenizer.
        """
        target = self.target(model)
        backend = target.backend
        capabilities = backend.capabilities
        if isinstance(prompt, np.ndarray):
            if not capabilities.prompt_embeds:
                raise CapabilityError(f"{capabilities.name} does not accept prompt embeddings")
            backend_prompt: TokensPrompt | EmbedsPrompt = EmbedsPrompt(prompt)
            prompt_ids: tuple[int, ...] = ()
            prompt_length = int(prompt.shape[0])
        else:
            tokenizer = self.tokenizer if target.name == self.model else target.tokenizer()
            prompt_ids = tuple(tokenizer.encode(prompt) if isinstance(prompt, str) else prompt)
            backend_prompt = TokensPrompt(prompt_ids)
            prompt_length = len(prompt_ids)
        context_room = capabilities.max_model_len - prompt_length
        if prompt_length == 0:
            raise PromptError("the prompt is empty after tokenization")
        if context_room < 1:
            raise PromptError(
                f"the prompt is {prompt_length} tokens, which leaves no room in the model's "
                f"{capabilities.max_model_len}-token context window; shorten it"
            )
        request_id = f"{self.solve_id}/r{next(_request_counter)}"
        reservation = self.ledger.reserve(
            request_id,
            min(max_tokens, context_room),
            phase,
            final=final,
            prompt_tokens=prompt_length,
            cost_model=target.cost_model,
            model=target.name,
        )
        sampling = SamplingSpec(
            max_tokens=reservation.granted,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            stop=tuple(stop),
            stop_token_ids=tuple(stop_token_ids),
            logprobs=logprobs,
            include_stop_str_in_output=include_stop,
        )
        node = self.trace.add(
            kind, parent=parent, edge=edge, phase=phase, request_id=request_id, model=target.name, **node_attrs
        )
        generation = Generation(
            request_id=request_id,
            node=node,
            prompt_token_ids=prompt_ids,
            model=target.name,
            max_tokens=reservation.granted,
            started_at=time.monotonic(),
        )
        stream = backend.generate(request_id, backend_prompt, sampling)
        running = RunningRequest(self, generation, reservation, stream, backend)
        self.running.add(running)
        return running

    async def generate(self, prompt: str | Sequence[int] | np.ndarray, **kwargs: object) -> Generation:
        """Run a request to completion; same arguments as `start`."""
        running = await self.start(prompt, **kwargs)  # type: ignore[arg-type]
        return await running.result()
