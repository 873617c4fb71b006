"""`entropy_switch`: write on the small model, hand the uncertain stretches to the large one (EAD).

Entropy Adaptive Decoding (Simonds 2025, arXiv:2502.06833): one response is written by two
models of a shared vocabulary. The small model writes until the rolling entropy of the next-token
distributions, the mean over the last `window` tokens of the text, passes `threshold`; the large
model then continues from the same token ids (its prefix cache serves the shared context), and
hands back to the small model once the rolling entropy falls below `threshold` again. A segment,
whichever model writes it, is at least `min_segment` tokens long, which stops flapping.

Each token's entropy is that of the model that wrote it, read from its top-`top_k` log-probabilities
with the rest counted as one tail outcome (`strategies.soft_tokens.StepDistribution.entropy`, in
nats: a lower bound on the full-vocabulary entropy; the paper's bits are nats / ln 2). The rolling
window runs over the whole text across switches, as the paper's `H_t` does, and is defined once it
holds `window` tokens (`strategies.confidence.GroupWindow`); a switch is decided at the first token
where the rolling entropy crosses, which is the last token its model keeps. A crossing at the
response's last token hands nothing over: before aborting at a crossing, the segment waits for the
next token or the end, so whether it switches never depends on how the engine frames its stream.

Deviations: a segment streams from the engine and is aborted at the crossing token; the few
tokens the engine made before the abort took effect are dropped from the text (they are
generated and counted, `overshoot_tokens`). The prompt is built with the small model's profile.
A remote server reports a request's prefix-cache hits with the stream's last event, which an
aborted segment never reads, so there its cost counts the prompt uncached (an upper bound).

Both models must share a tokenizer (`tokenizer_mismatch`): the same object, or the same vocabulary
size, end-of-sequence ids, ids for a probe text and text for every token id (decoded in chunks
of `DECODE_CHUNK`; about 50 ms for a 49k vocabulary). Otherwise `CapabilityError`.

Metrics:
- `small_tokens`, `large_tokens`, `large_share`: tokens of the response each model wrote, and the
  large model's share.
- `switches`: model changes; `segments`; `switch_points`: the response's token positions where a
  switch happened (comma-separated); `overshoot_tokens`.
- `cost`, `large_alone_cost`: eFLOPs of the segments, and of the large model writing the same
  response alone in one request; `cost_saved`: 1 - cost / large_alone_cost. None when a model is unpriced.
- `finish_reason`: `stop` (the response ended), `length` (budget or context), `budget`.

Each segment is a trace node (`kind="answer"`, a `continue` edge from the one before) with its
`model`, `kept_tokens`, `start` (its position in the response), the per-token `entropies` and
`rolling` entropies it kept, and `switch_entropy`: the rolling entropy that ended it (None when it
was not ended by a switch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    StrategyOptions,
    register_strategy,
)
from reasoner.engines.base import Tokenizer
from reasoner.solution import MetricValue
from strategies.confidence import GroupWindow
from strategies.soft_tokens import top_k_distribution

DECODE_CHUNK = 4096
PROBE = "The answer is 3/4 = 0.75, since x^2 + 2x - 3 = 0.\n\tNaïve café: 数学 ∑ √2 🙂 <think>"
ROUND = 4


class EntropySwitchOptions(StrategyOptions):
    """The two models, the switching rule and the sampling of every segment."""

    small: str | None = Field(
        default=None, description="Model that writes by default; default: the Reasoner's first (other than large)."
    )
    large: str | None = Field(
        default=None, description="Model for the uncertain stretches; default: the Reasoner's next after small."
    )
    threshold: float = Field(
        default=1.0,
        gt=0.0,
        allow_inf_nan=False,
        description="Rolling entropy (nats) above which the large model writes.",
    )
    window: int = Field(default=5, ge=1, description="Tokens the rolling entropy averages (the paper's w=5).")
    min_segment: int = Field(default=8, ge=1, description="Fewest tokens a segment keeps before it may switch.")
    top_k: int = Field(default=20, ge=2, description="Log-probabilities per token behind each entropy.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")

    @model_validator(mode="after")
    def _two_models(self) -> EntropySwitchOptions:
        if self.small is not None and self.small == self.large:
            raise ValueError(f"options small and large both name {self.small!r}; name two different models")
        return self


@dataclass
class _Segment:
    """One model's stretch of the response."""

    model: str
    node: int
    start: int
    token_ids: list[int] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    rolling: list[float | None] = field(default_factory=list)
    switch_entropy: float | None = None
    generated: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    finish_reason: str = ""


@register_strategy
class EntropySwitch(Strategy):
    """One response from two models: the small one writes, the large one takes the high-entropy stretches."""

    name = "entropy_switch"
    Options = EntropySwitchOptions
    options: EntropySwitchOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        small, large = self._models(session)
        options = self.options
        writer = session.on_model(small)
        text_prompt = writer.profile.build_prompt(
            writer.tokenizer, prompt, thinking=False, answer_format=session.answer_format
        )
        prompt_ids = writer.encode(text_prompt)
        window = GroupWindow(options.window)
        segments: list[_Segment] = []
        output: list[int] = []
        model, finish = small, "stop"
        while True:
            if session.remaining < 1:
                finish = "budget"
                break
            try:
                request = await session.start(
                    [*prompt_ids, *output],
                    max_tokens=session.remaining,
                    phase="answer",
                    kind="answer",
                    parent=segments[-1].node if segments else None,
                    temperature=options.temperature,
                    top_p=options.top_p,
                    logprobs=options.top_k,
                    model=model,
                )
            except BudgetExhausted:
                finish = "budget"
                break
            segment = await self._write(session, request, model == small, window, len(output))
            segments.append(segment)
            output.extend(segment.token_ids)
            if segment.switch_entropy is None:
                finish = segment.finish_reason
                break
            model = large if model == small else small
        text = writer.tokenizer.decode(output)
        return Outcome(
            text=text, answer=writer.extract_answer(text), metrics=_metrics(session, segments, finish, large)
        )

    def _models(self, session: Session) -> tuple[str, str]:
        """The small and large model names, checked: known, two of them, one tokenizer, logprobs deep enough."""
        names = list(session.models)
        if len(names) < 2:
            raise CapabilityError(
                f"entropy_switch needs two models, a small and a large one; this solve has only {names[0]!r}: "
                "build Reasoner(models={'small': ..., 'large': ...})"
            )
        small = self.options.small or next(name for name in names if name != self.options.large)
        chosen = {"small": small, "large": self.options.large or next(name for name in names if name != small)}
        for option, name in chosen.items():
            if name not in session.models:
                raise StrategyError(
                    f"option {option}={name!r} names no model of this solve; its models are {', '.join(names)}"
                )
        small, large = chosen["small"], chosen["large"]
        for name in (small, large):
            capabilities = session.target(name).backend.capabilities
            if not capabilities.logprobs:
                raise CapabilityError(
                    f"entropy_switch needs top-k log-probabilities per token; model {name!r} "
                    f"({capabilities.name}) does not return them"
                )
            if capabilities.max_logprobs < self.options.top_k:
                raise StrategyError(
                    f"option top_k={self.options.top_k} asks model {name!r} for more log-probabilities than it "
                    f"returns ({capabilities.max_logprobs}); lower top_k"
                )
        mismatch = tokenizer_mismatch(session.target(small).tokenizer(), session.target(large).tokenizer())
        if mismatch is not None:
            raise CapabilityError(
                f"entropy_switch continues one model's token ids on the other, so models {small!r} and {large!r} "
                f"must share a tokenizer; theirs differ: {mismatch}"
            )
        return small, large

    async def _write(
        self, session: Session, request: RunningRequest, on_small: bool, window: GroupWindow, start: int
    ) -> _Segment:
        """Follow one segment token by token; abort it at the first token whose rolling entropy crosses."""
        options = self.options
        generation = request.generation
        segment = _Segment(generation.model, generation.node, start)
        while True:
            await request.wait_for_tokens(len(generation.token_ids) + 1)
            positions = generation.logprobs or []
            for index in range(len(segment.entropies), len(positions)):
                entropy = top_k_distribution(positions[index], options.top_k).entropy
                rolling = window.push(entropy)
                segment.entropies.append(entropy)
                segment.rolling.append(rolling)
                crossed = rolling is not None and (
                    rolling > options.threshold if on_small else rolling < options.threshold
                )
                if crossed and index + 1 >= options.min_segment:
                    generation = await request.wait_for_tokens(index + 2)
                    if request.done and len(generation.token_ids) == index + 1:
                        break  # the response ended at the crossing token: nothing to hand over
                    segment.switch_entropy = rolling
                    return _finish(session, segment, await request.abort(), index + 1)
            if request.done and len(segment.entropies) >= len(generation.logprobs or []):
                generation = await request.result()
                return _finish(session, segment, generation, len(generation.token_ids))


def _finish(session: Session, segment: _Segment, generation: Generation, kept: int) -> _Segment:
    """Take the first `kept` tokens of the finished request and record the segment on its trace node."""
    segment.token_ids = generation.token_ids[:kept]
    segment.generated = len(generation.token_ids)
    segment.prompt_tokens = generation.prompt_tokens
    segment.cached_prompt_tokens = generation.cached_prompt_tokens
    segment.finish_reason = generation.finish_reason or "abort"
    if kept == segment.generated and segment.finish_reason != "abort":
        segment.switch_entropy = None  # the response ended at the crossing token: nothing to hand over
    session.trace.update(
        segment.node,
        kept_tokens=kept,
        start=segment.start,
        entropies=[round(value, ROUND) for value in segment.entropies],
        rolling=[None if value is None else round(value, ROUND) for value in segment.rolling],
        switch_entropy=segment.switch_entropy,
    )
    return segment


def tokenizer_mismatch(first: Tokenizer, second: Tokenizer) -> str | None:
    """How two tokenizers differ, or None when they are the same (see the module docstring)."""
    if first is second:
        return None
    if first.vocab_size != second.vocab_size:
        return f"vocabularies of {first.vocab_size} and {second.vocab_size} tokens"
    if tuple(first.eos_token_ids) != tuple(second.eos_token_ids):
        return f"end-of-sequence ids {tuple(first.eos_token_ids)} and {tuple(second.eos_token_ids)}"
    if first.encode(PROBE) != second.encode(PROBE):
        return "they split the same text into different token ids"
    for begin in range(0, first.vocab_size, DECODE_CHUNK):
        ids = list(range(begin, min(begin + DECODE_CHUNK, first.vocab_size)))
        if first.decode(ids) != second.decode(ids):
            return f"token ids {ids[0]}-{ids[-1]} decode to different text"
    return None


def _metrics(session: Session, segments: list[_Segment], finish: str, large: str) -> dict[str, MetricValue]:
    kept = {"small": 0, "large": 0}
    for segment in segments:
        kept["large" if segment.model == large else "small"] += len(segment.token_ids)
    points = [segment.start for segment in segments[1:]]
    total = kept["small"] + kept["large"]
    cost, alone = _costs(session, segments, large, total)
    return {
        "small_tokens": kept["small"],
        "large_tokens": kept["large"],
        "large_share": kept["large"] / total if total else 0.0,
        "switches": len(points),
        "segments": len(segments),
        "switch_points": ",".join(str(point) for point in points),
        "overshoot_tokens": sum(segment.generated - len(segment.token_ids) for segment in segments),
        "cost": cost,
        "large_alone_cost": alone,
        "cost_saved": 1 - cost / alone if cost is not None and alone else None,
        "finish_reason": finish,
    }


def _costs(session: Session, segments: list[_Segment], large: str, total: int) -> tuple[int | None, int | None]:
    """eFLOPs of the segments as run, and of the large model writing the whole response in one request."""
    large_model = session.target(large).cost_model
    models = [session.target(segment.model).cost_model for segment in segments]
    if large_model is None or any(model is None for model in models) or not segments:
        return None, None
    spent = 0
    for segment, model in zip(segments, models, strict=True):
        assert model is not None
        spent += model.eflops(segment.prompt_tokens, segment.cached_prompt_tokens, segment.generated)
    return spent, large_model.eflops(segments[0].prompt_tokens, 0, total)
