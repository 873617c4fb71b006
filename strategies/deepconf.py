"""`deepconf`: confidence-filtered voting with online early stopping (DeepConf).

Deep Think with Confidence (Fu et al., 2025). Every trace is sampled with its top-k
log-probabilities; `strategies.confidence` turns them into token, group (sliding window) and
trace confidences. `offline`: run n traces, keep the top `eta` percent by `trace_score`, and
answer by the confidence-weighted vote `V(a) = sum of scores of kept traces answering a`.
`online`: a warm-up of `n_init` traces sets the stop threshold `s`, the (100 - eta)th
percentile of their lowest-group confidences (eta=90 is the paper's DeepConf-high, eta=10
DeepConf-low); each later trace is aborted in the engine as soon as the group confidence of
its latest `window` tokens falls below `s`; sampling stops once the weighted consensus
`V(top answer) / sum V` reaches `tau`, or after n traces, or when the budget refuses.

Differences from the paper and its reference code: the paper generates the online traces one
by one; here up to `parallel` run at once on the engine, and when the consensus is reached
the ones still running are aborted (`cancelled`). The consensus is checked after the warm-up
too, so an easy question can stop there. As in the reference code, a trace votes only when
its lowest-group confidence is at least `s` (a trace shorter than `window` has one group, all
of it, and is never stopped early), and the vote weight is its `trace_score`. Answers that
`reasoner.answers.same_answer` calls equivalent vote together. Needs a backend that returns
logprobs (`CapabilityError` otherwise) at least `top_k` deep.

Metrics:
- `mode`, `threshold` (online: the stop threshold `s`; offline: None).
- `traces`: traces started; `warmup`: of which warm-up; `sample_tokens`: each one's token cap.
- `aborted`: traces stopped for low confidence; `cancelled`: running traces stopped because
  the consensus was reached; `tokens_saved`: tokens those were granted but never generated.
- `voted`: traces whose answer voted (offline: the kept top eta%); `distinct_answers`.
- `consensus`: the winning answer's share of the vote weight.
- `stopped_by` (online): `consensus`, `n` (all n traces ran) or `budget`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from reasoner import (
    BudgetExhausted,
    CapabilityError,
    Generation,
    Outcome,
    RunningRequest,
    Session,
    Strategy,
    StrategyError,
    register_strategy,
)
from reasoner.solution import MetricValue
from reasoner.strategy import AppliesWhen
from strategies.confidence import (
    GroupWindow,
    TraceScore,
    keep_top,
    stop_threshold,
    token_confidence,
    token_confidences,
    trace_score,
)
from strategies.self_consistency import (
    SamplePlan,
    SelfConsistencyOptions,
    plan_samples,
    results,
    sample_prompt,
    vote,
)

_ONLINE = AppliesWhen("mode", ("online",))


class DeepConfOptions(SelfConsistencyOptions):
    """DeepConf's knobs on top of the sampling options of `self_consistency`."""

    mode: Literal["online", "offline"] = Field(default="online", description="online early stop, or offline filter.")
    n: int = Field(default=16, ge=1, description="Most traces (the paper's budget K; capped by the budget).")
    n_init: Annotated[int, _ONLINE] = Field(
        default=4, ge=1, description="online: warm-up traces that set the stop threshold."
    )
    eta: float = Field(
        default=90.0, gt=0.0, le=100.0, description="Percent of traces kept: 90 = DeepConf-high, 10 = DeepConf-low."
    )
    window: int = Field(default=2048, ge=1, description="Tokens in a group (the sliding window).")
    tail_tokens: Annotated[int, AppliesWhen("trace_score", ("tail",))] = Field(
        default=2048, ge=1, description="Tokens the `tail` trace score averages."
    )
    tau: Annotated[float, _ONLINE] = Field(
        default=0.95, gt=0.0, le=1.0, description="online: stop once the consensus reaches it."
    )
    top_k: int = Field(default=20, ge=1, description="Log-probabilities per token behind the token confidence.")
    trace_score: TraceScore = Field(
        default="lowest_group", description="Trace confidence for filtering and vote weights."
    )
    parallel: Annotated[int, _ONLINE] = Field(
        default=4, ge=1, description="online: traces in flight at once after the warm-up."
    )
    temperature: float = Field(default=0.6, ge=0.0, le=2.0, description="Sampling temperature of every trace.")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")

    @model_validator(mode="after")
    def _warmup_fits(self) -> DeepConfOptions:
        if self.mode == "online" and self.n_init > self.n:
            raise ValueError(f"n_init={self.n_init} warm-up traces exceed n={self.n}; lower n_init or raise n")
        return self


@dataclass
class _Trace:
    """One sampled trace and what DeepConf read from it."""

    generation: Generation
    confidences: list[float]
    lowest_group: float
    score: float
    answer: str | None
    warmup: bool = False
    aborted_at: int | None = None
    cancelled: bool = False

    @property
    def stopped(self) -> bool:
        return self.aborted_at is not None or self.cancelled


@register_strategy
class DeepConf(Strategy):
    """Confidence-weighted voting over filtered traces; online, low-confidence traces are aborted early."""

    name = "deepconf"
    Options = DeepConfOptions
    options: DeepConfOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        _check_backend(session, self.options.top_k)
        run = _Run(session, prompt, self.options)
        return await (run.online() if self.options.mode == "online" else run.offline())


def _check_backend(session: Session, top_k: int) -> None:
    capabilities = session.backend.capabilities
    if not capabilities.logprobs:
        raise CapabilityError(
            f"deepconf needs the 'logprobs' capability (top-k log-probabilities per token), "
            f"which backend {capabilities.name!r} lacks"
        )
    if capabilities.max_logprobs < top_k:
        raise StrategyError(
            f"option top_k={top_k} asks for more logprobs than backend {capabilities.name!r} returns "
            f"({capabilities.max_logprobs}); lower top_k"
        )


class _Run:
    """One solve of `deepconf`: the traces so far, the threshold and the running counts."""

    def __init__(self, session: Session, prompt: str, options: DeepConfOptions):
        self.session = session
        self.options = options
        self.prompt_ids = sample_prompt(session, prompt, options.thinking)
        self.plan: SamplePlan = plan_samples(
            session, options.n, options.sample_tokens, prompt_tokens=len(self.prompt_ids)
        )
        self.traces: list[_Trace] = []
        self.threshold: float | None = None
        self.started = 0

    async def _start(self, warmup: bool) -> RunningRequest:
        request = await self.session.start(
            self.prompt_ids,
            max_tokens=self.plan.sample_tokens,
            phase="thinking" if self.options.thinking else "answer",
            kind="answer",
            temperature=self.options.temperature,
            top_p=self.options.top_p,
            logprobs=self.options.top_k,
            sample=self.started,
            warmup=warmup,
        )
        self.started += 1
        return request

    async def _start_many(self, count: int, warmup: bool) -> list[RunningRequest]:
        requests: list[RunningRequest] = []
        for _ in range(count):
            try:
                requests.append(await self._start(warmup))
            except BudgetExhausted:
                if not requests:
                    raise
                break
        return requests

    def _read(self, generation: Generation, warmup: bool = False) -> _Trace:
        options = self.options
        confidences = token_confidences(generation.logprobs, options.top_k)
        lowest = trace_score(confidences, "lowest_group", options.window, options.tail_tokens)
        score = trace_score(confidences, options.trace_score, options.window, options.tail_tokens)
        answer = self.session.extract_answer(generation.text)
        return _Trace(generation, confidences, lowest, score, answer, warmup=warmup)

    async def offline(self) -> Outcome:
        requests = await self._start_many(self.plan.count, warmup=False)
        generations = await results(requests)
        self.traces = [self._read(generation) for generation in generations]
        answered = [trace for trace in self.traces if trace.answer is not None]
        kept = [answered[index] for index in keep_top([trace.score for trace in answered], self.options.eta)]
        return self._outcome(kept, {})

    async def online(self) -> Outcome:
        options = self.options
        warmup = await self._start_many(min(options.n_init, self.plan.count), warmup=True)
        self.traces = [self._read(generation, warmup=True) for generation in await results(warmup)]
        threshold = self.threshold = stop_threshold([trace.lowest_group for trace in self.traces], options.eta)
        stopped_by = "n"
        running: dict[asyncio.Task[_Trace], RunningRequest] = {}
        try:
            while True:
                if self._consensus() >= options.tau:
                    stopped_by = "consensus"
                    break
                while len(running) < options.parallel and self.started < self.plan.count:
                    try:
                        request = await self._start(warmup=False)
                    except BudgetExhausted:
                        stopped_by = "budget"
                        break
                    running[asyncio.ensure_future(self._watch(request, threshold))] = request
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del running[task]
                    self.traces.append(task.result())
        finally:
            await self._cancel(running)
        return self._outcome(self._voters(), {"stopped_by": stopped_by})

    async def _watch(self, request: RunningRequest, threshold: float) -> _Trace:
        """Follow a trace token by token; abort it where its group confidence first falls below `threshold`."""
        window = GroupWindow(self.options.window)
        checked = 0
        while True:
            generation = await request.wait_for_tokens(len(request.generation.token_ids) + 1)
            positions = generation.logprobs or []
            for position in positions[checked:]:
                checked += 1
                group = window.push(token_confidence(position, self.options.top_k))
                if group is not None and group < threshold:
                    generation = await request.abort()
                    trace = self._read(generation)
                    if generation.finish_reason == "abort":
                        trace.aborted_at = checked
                        self.session.trace.update(generation.node, aborted_at=checked, group_confidence=group)
                    return trace
            if request.done and checked >= len(request.generation.logprobs or []):
                return self._read(await request.result())

    async def _cancel(self, running: dict[asyncio.Task[_Trace], RunningRequest]) -> None:
        """Abort the traces still running (consensus reached, or an error) and keep what they made."""
        if not running:
            return
        await asyncio.gather(*(request.abort() for request in running.values()), return_exceptions=True)
        for task in running:
            try:
                trace = await task
            except Exception:  # noqa: BLE001 - the error that ended the run is already propagating
                continue
            if trace.aborted_at is None and trace.generation.finish_reason == "abort":
                trace.cancelled = True
                self.session.trace.update(trace.generation.node, cancelled=True)
            self.traces.append(trace)

    def _voters(self) -> list[_Trace]:
        """Online: finished traces with an answer whose lowest-group confidence reaches the threshold."""
        threshold = self.threshold if self.threshold is not None else float("-inf")
        return [
            trace
            for trace in self.traces
            if not trace.stopped and trace.answer is not None and trace.lowest_group >= threshold
        ]

    def _consensus(self) -> float:
        groups = _weighted_groups(self._voters(), self.session.answer_format)
        total = sum(weight for weight, _ in groups)
        return groups[0][0] / total if groups and total > 0 else 0.0

    def _outcome(self, voters: list[_Trace], extra: dict[str, MetricValue]) -> Outcome:
        session = self.session
        for trace in self.traces:
            session.trace.update(
                trace.generation.node,
                confidence=trace.score,
                lowest_group_confidence=trace.lowest_group,
                voted=any(trace is voter for voter in voters),
            )
        groups = _weighted_groups(voters, session.answer_format)
        total = sum(weight for weight, _ in groups)
        if groups:
            chosen = max(groups[0][1], key=lambda trace: trace.score)
        else:
            chosen = max(self.traces, key=lambda trace: (not trace.stopped, trace.score))
        session.trace.update(chosen.generation.node, chosen=True)
        metrics: dict[str, MetricValue] = {
            "mode": self.options.mode,
            "threshold": self.threshold,
            "traces": len(self.traces),
            "warmup": sum(trace.warmup for trace in self.traces),
            "sample_tokens": self.plan.sample_tokens,
            "aborted": sum(trace.aborted_at is not None for trace in self.traces),
            "cancelled": sum(trace.cancelled for trace in self.traces),
            "tokens_saved": session.ledger.aborted_tokens_saved,
            "voted": len(voters),
            "distinct_answers": len(groups),
            "consensus": groups[0][0] / total if groups and total > 0 else 0.0,
        }
        answer = chosen.answer if groups else session.extract_answer(chosen.generation.text)
        return Outcome(text=chosen.generation.text, answer=answer, metrics=metrics | extra)


def _weighted_groups(voters: list[_Trace], answer_format: str) -> list[tuple[float, list[_Trace]]]:
    """Equivalent answers grouped, each with its summed score; the heaviest group first."""
    answers = [trace.answer for trace in voters]
    groups = vote(answers, [trace.score for trace in voters], answer_format)
    weighted = [
        (sum(voters[index].score for index in group.members), [voters[i] for i in group.members]) for group in groups
    ]
    return sorted(weighted, key=lambda item: -item[0])
