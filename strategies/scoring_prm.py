"""A process reward model (PRM) as a `Scorer`, served by its own vLLM engine in pooling mode.

The response is split into steps at `step_separator`; a `PRMFormat` renders the question and
the steps the way the PRM was trained to read them, with a step tag after every step; one
`token_classify` pooling request returns the per-token class probabilities, and the step
rewards are the positive-class probabilities at each step tag's last token. `aggregate`
turns them into one score in [0, 1]: the last step's reward, the lowest, the mean or the
product. A scorer built without one leaves the choice to the strategy: `particle_filter`
reads the last step's reward (Puri et al. 2025 found this "model aggregation" best), every
other strategy the lowest (`DEFAULT_AGGREGATE`); `aggregated_by` gives a view of the same PRM
with another aggregate.

Formats: `QWEN_PRM` is Qwen2.5-Math-PRM's (chat template, steps joined by `<extra_0>`, a
native `Qwen2ForProcessRewardModel`). A causal LM read through two of its LM-head tokens,
Math-Shepherd style (the "+" probability at a step tag), is a `PRMFormat` with
`classifier_tokens=(negative, positive)`: vLLM turns the LM head's rows for those tokens into
a two-class head.

Cost: the PRM's prompt tokens are not tokens the policy generated, so they are not charged to
the ledger (neither generated nor prompt tokens); each score is a trace segment of kind
`eval` with `tokens=0`, `prm_prompt_tokens`, `step_scores` and `score`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reasoner import Session, StrategyError
from reasoner.engines.lifecycle import build_async_engine
from reasoner.engines.pooling import PoolingEngineOwner
from reasoner.engines.remote_pooling import PoolingEndpoint
from reasoner.errors import EngineError, ModelError, PromptError
from reasoner.models import ResolvedModel, find_local_model, resolve_model

Aggregate = Literal["last", "min", "mean", "prod"]
AGGREGATES: tuple[str, ...] = ("last", "min", "mean", "prod")
DEFAULT_AGGREGATE: Aggregate = "min"
QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
PRM_ENGINE_DEFAULTS: dict[str, Any] = {
    "enforce_eager": True,
    "block_size": 32,
    "max_model_len": 4096,
    "kv_cache_memory_bytes": 512 << 20,
    "max_num_seqs": 32,
    # No vLLM stat loggers: a new engine's Prometheus logger unregisters the policy engine's metrics.
    "disable_log_stats": True,
}
_MARK = "\x00STEPS\x00"


@dataclass(frozen=True)
class PRMFormat:
    """How a PRM reads a question and its steps, and where its step rewards are.

    `step_tag` follows every step; the reward of a step is read at the tag's last token.
    With `chat`, the question is the user turn (after `system`, when given) and the tagged
    steps are the assistant turn of the PRM's chat template; without, the prompt is the
    question, a newline, then the tagged steps. `positive_label` is the class whose
    probability is the reward. `classifier_tokens` (negative, positive) makes a causal LM a
    PRM through those two LM-head tokens (spelled as tokenizer tokens, not text).
    """

    name: str
    step_tag: str
    chat: bool = True
    system: str | None = None
    positive_label: int = 1
    classifier_tokens: tuple[str, str] | None = None

    def engine_overrides(self) -> dict[str, Any]:
        """The vLLM engine arguments this format needs on top of pooling mode."""
        if self.classifier_tokens is None:
            return {}
        return {
            "convert": "classify",
            "hf_overrides": {"classifier_from_token": list(self.classifier_tokens), "method": "no_post_processing"},
        }

    def render(self, tokenizer: Any, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """The PRM's prompt token ids and, for each step, the position of its tag's last token."""
        prefix, suffix = self._frame(tokenizer, question)
        tag_ids = _encode(tokenizer, self.step_tag)
        if not tag_ids:
            raise StrategyError(f"the step tag {self.step_tag!r} of PRM format {self.name!r} encodes to no tokens")
        ids = _encode(tokenizer, prefix)
        positions = []
        for step in steps:
            ids += _encode(tokenizer, step) + tag_ids
            positions.append(len(ids) - 1)
        ids += _encode(tokenizer, suffix)
        return ids, positions

    def _frame(self, tokenizer: Any, question: str) -> tuple[str, str]:
        if not self.chat:
            return f"{question}\n", ""
        messages = [{"role": "system", "content": self.system}] if self.system is not None else []
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": _MARK}]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        prefix, suffix = rendered.split(_MARK, 1)
        return prefix, suffix


QWEN_PRM = PRMFormat("qwen2.5-math-prm", step_tag="<extra_0>", chat=True, system=QWEN_PRM_SYSTEM)


def split_steps(response: str, separator: str = "\n\n") -> list[str]:
    """The response's non-blank steps, stripped, in order."""
    if not separator:
        raise StrategyError("step_separator is empty; pass the text that ends a step, e.g. '\\n\\n'")
    return [step.strip() for step in response.split(separator) if step.strip()]


def aggregate_rewards(rewards: Sequence[float], how: str) -> float:
    """One score in [0, 1] from per-step rewards: the last, the lowest, the mean or the product."""
    if not rewards:
        raise StrategyError("there are no step rewards to aggregate")
    if how == "last":
        return rewards[-1]
    if how == "min":
        return min(rewards)
    if how == "mean":
        return sum(rewards) / len(rewards)
    if how == "prod":
        return math.prod(rewards)
    raise StrategyError(f"unknown aggregate {how!r}; use one of {', '.join(AGGREGATES)}")


class PRMScorer(PoolingEngineOwner):
    """Scores a response by a process reward model on its own vLLM pooling engine, or on a server.

    With `endpoint`, the PRM runs on a vLLM pooling server (`vllm serve PRM --runner pooling
    --pooler-config '{"task": "token_classify"}'`, plus the format's `--convert classify` and
    `--hf-overrides` when it has classifier tokens) and `model`
    names its tokenizer on this machine (and the served model when the server lists several).

    The engine starts on the first score and stops at `close()` (or at interpreter exit);
    vLLM's errors leave as `EngineError`, and a failed engine is dropped so the next score
    starts a fresh one. The PRM's prompt tokens are recorded on the trace (`prm_prompt_tokens`
    on the `eval` segment) but never charged to the ledger: they are not policy tokens.
    """

    def __init__(
        self,
        model: str,
        *,
        prm_format: PRMFormat = QWEN_PRM,
        step_separator: str = "\n\n",
        aggregate: Aggregate | None = None,
        engine_args: dict[str, Any] | None = None,
        name: str = "prm",
        endpoint: str | None = None,
        api_key: str | None = None,
    ):
        if aggregate is not None and aggregate not in AGGREGATES:
            raise StrategyError(f"unknown aggregate {aggregate!r}; use one of {', '.join(AGGREGATES)}")
        if not step_separator:
            raise StrategyError("step_separator is empty; pass the text that ends a step, e.g. '\\n\\n'")
        if endpoint is not None and engine_args:
            raise StrategyError("a PRM endpoint runs on its server; engine_args do not apply to it")
        self._remote = PoolingEndpoint(endpoint, model=model, api_key=api_key) if endpoint is not None else None
        self.model: ResolvedModel = resolve_model(model) if endpoint is None else _tokenizer_model(model)
        self._remote_tokenizer: Any = None
        self.prm_format = prm_format
        self.step_separator = step_separator
        self.aggregate = aggregate
        self.name = name
        self._user_engine_args = dict(engine_args or {})

    def engine_args(self) -> dict[str, Any]:
        """The arguments handed to vLLM: pooling defaults, the format's needs, then the caller's."""
        runner = {"model": self.model.source, "runner": "pooling"}
        return runner | PRM_ENGINE_DEFAULTS | self.prm_format.engine_overrides() | self._user_engine_args

    async def start(self) -> None:
        """Start the PRM engine unless it runs already."""
        await self._on_engine_loop(self._started())

    def engine_label(self) -> str:
        return f"the PRM {self.model.name!r}"

    def _build_engine(self) -> Any:
        return build_async_engine(self.engine_args(), self.engine_label())

    async def step_rewards(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        """Each step's reward in [0, 1] and the PRM prompt's length in tokens."""
        return await self._on_engine_loop(self._step_rewards(question, steps))

    async def _step_rewards(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        limit: int | None
        if self._remote is None:
            engine = await self._started()
            tokenizer, limit = engine.tokenizer, int(engine.model_config.max_model_len)
        else:
            tokenizer, limit = await self._endpoint_tokenizer(), (await self._remote.served_model()).max_model_len
        ids, positions = self.prm_format.render(tokenizer, question, steps)
        if limit is not None and len(ids) > limit:
            raise PromptError(
                f"the PRM prompt is {len(ids)} tokens, over the PRM's {limit}-token window; "
                "raise max_model_len in engine_args or score shorter responses"
            )
        if self._remote is None:
            rows = await self._token_probabilities(ids)
        else:
            rows = await self._remote.token_probabilities(ids)
        if len(rows) == len(ids):
            picked = [rows[position] for position in positions]
        elif len(rows) == len(positions):
            picked = rows
        else:
            raise EngineError(
                f"the PRM returned {len(rows)} rows for a {len(ids)}-token prompt with {len(positions)} steps"
            )
        return [self._positive(row) for row in picked], len(ids)

    async def _endpoint_tokenizer(self) -> Any:
        """The PRM's tokenizer, loaded on this machine, for a PRM served by an endpoint."""
        if self._remote_tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self._remote_tokenizer = await asyncio.to_thread(AutoTokenizer.from_pretrained, self.model.source)
            except (OSError, ValueError) as exc:
                raise ModelError(f"cannot load the tokenizer of the PRM {self.model.name!r}: {exc}") from None
        return self._remote_tokenizer

    async def _token_probabilities(self, ids: list[int]) -> list[list[float]]:
        data = (await self._pool(ids, "token_classify", "the PRM request")).float()
        return [[float(value) for value in row] for row in data.reshape(len(ids), -1).tolist()]

    def _positive(self, row: list[float]) -> float:
        value = row[0] if len(row) == 1 else row[self.prm_format.positive_label]
        return min(1.0, max(0.0, value))

    def aggregated_by(self, aggregate: Aggregate) -> AggregatedPRM:
        """This PRM (same engine, same step rewards) with its step rewards combined by `aggregate`."""
        return AggregatedPRM(self, aggregate)

    async def score(self, session: Session, question: str, response: str, *, parent: int | None = None) -> float:
        """The aggregate of the response's step rewards; one `eval` trace segment, no ledger tokens."""
        return await self.score_by(self.aggregate or DEFAULT_AGGREGATE, session, question, response, parent=parent)

    async def score_by(
        self, aggregate: Aggregate, session: Session, question: str, response: str, *, parent: int | None = None
    ) -> float:
        """`score` with the step rewards combined by `aggregate`."""
        steps = split_steps(response, self.step_separator)
        if not steps:
            raise StrategyError("the response has no steps to score; it is empty or blank")
        rewards, prompt_tokens = await self.step_rewards(question, steps)
        value = aggregate_rewards(rewards, aggregate)
        session.trace.add(
            "eval",
            parent=parent,
            phase="evaluation",
            scorer=self.name,
            score=value,
            step_scores=rewards,
            aggregate=aggregate,
            prm_prompt_tokens=prompt_tokens,
        )
        return value


class AggregatedPRM:
    """A `PRMScorer` read with another aggregate: the same engine and step rewards, combined otherwise."""

    def __init__(self, prm: PRMScorer, aggregate: Aggregate):
        if aggregate not in AGGREGATES:
            raise StrategyError(f"unknown aggregate {aggregate!r}; use one of {', '.join(AGGREGATES)}")
        self.prm = prm
        self.aggregate = aggregate
        self.name = prm.name

    async def score(self, session: Session, question: str, response: str, *, parent: int | None = None) -> float:
        """The PRM's step rewards of `response`, combined by this view's aggregate."""
        return await self.prm.score_by(self.aggregate, session, question, response, parent=parent)


def _tokenizer_model(model: str) -> ResolvedModel:
    """The PRM served by an endpoint, as found on this machine for its tokenizer (its name otherwise)."""
    return find_local_model(model) or ResolvedModel(model, model, None, None)


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []
