"""`latent_switch`: thinking in blocks of latent soft tokens and explicit tokens (SwiReasoning, ThinkRouter).

A latent step feeds back, instead of a sampled token, the probability-weighted mixture of
the input embeddings of the top-k next tokens; an explicit block samples real tokens. A
switch rule (`strategies.switch_rules`) picks the mode step by step from the model's
confidence; SwiReasoning caps its latent->explicit switches and, at the cap, closes thinking
and forces the answer. Then the answer follows with its own budget.

Engine path: the prompt is one growing float32 array of input embeddings (prompt tokens,
soft tokens, sampled tokens), sent as prompt embeddings. A latent step is a request with
max_tokens=1 and top-k logprobs over that array; rows are only ever appended, so every
step re-sends the previous step's bytes: vLLM's prefix cache serves its full KV blocks and,
on the CPU engine, the tail connector (`reasoner.engines.tail_kv`) the partial last one, so a
step computes one row. An explicit block is one streamed request, aborted when the rule switches.
At a SwiReasoning switch the fed embedding is mixed with the thinking delimiters' embeddings,
as the reference implementation does: the first explicit token after a latent block with the
close-thinking embedding (`close_mix`), the first soft token after an explicit block with the
open-thinking one (`open_mix`), both weights decaying linearly to 0 over the thinking budget.
SwiReasoning also feeds a latent step whose token spells math (a digit, a single letter, an
operator, a LaTeX command; `soft_tokens.math_token_ids`) as that token, as the reference does,
so a soft mixture never blurs a number (`explicit_math`; metric `math_steps`).
The mix needs a delimiter that is one token of the vocabulary (a model trained to think, such
as Qwen3 or DeepSeek-R1-Distill); a prompted delimiter that is several tokens (the embedded
model's `</think>`) has no embedding of its own, so nothing is mixed in (`delimiter_mix` false).
Metrics: `switches` (all), `latent_to_explicit` (the switches SwiReasoning's cap counts),
`delimiter_mix`, `math_steps`, `latent_steps`, `explicit_tokens`, `discarded_tokens` (thinking
tokens the engine made past a switch), `blocks`, `thinking_end` (think_close, eos, switch_cap or budget),
`thinking_tokens`, `answer_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from reasoner import (
    Budget,
    CapabilityError,
    Outcome,
    Session,
    Strategy,
    StrategyError,
    StrategyOptions,
    register_strategy,
)
from strategies.soft_tokens import (
    PrefixEmbeds,
    StepDistribution,
    math_token_ids,
    soft_embedding,
    top_k_distribution,
)
from strategies.switch_rules import FixedMode, Mode, SwiReasoning, SwitchRule, ThinkRouter

ThinkingEnd = Literal["think_close", "eos", "switch_cap", "budget"]
_BLOCK_KIND: dict[Mode, str] = {"latent": "latent", "explicit": "think"}
_CLOSE_WINDOW = 8


class LatentSwitchOptions(StrategyOptions):
    """How thinking switches between latent soft tokens and explicit tokens."""

    rule: Literal["swireasoning", "thinkrouter", "latent", "explicit"] = Field(
        default="swireasoning",
        description="Switch rule: swireasoning (entropy trend per block), thinkrouter (per-step confidence), "
        "or a fixed mode (latent-only soft thinking, explicit-only thinking) for comparison.",
    )
    top_k: int = Field(default=10, ge=1, description="Tokens mixed into a soft token (and logprobs asked per step).")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Probability mass of the top-k kept in the mix.")
    threshold: float = Field(
        default=0.6, gt=0.0, lt=1.0, description="ThinkRouter: max probability at or above which a step goes latent."
    )
    max_switches: int | None = Field(
        default=8,
        ge=1,
        description="SwiReasoning: most latent->explicit switches; the one that reaches it closes thinking and "
        "forces the answer (None: no cap). ThinkRouter is never capped.",
    )
    window: int = Field(
        default=32,
        ge=1,
        description="SwiReasoning: steps an explicit block lasts before rising entropy may send it back to latent "
        "(the dwell window; the reference uses 512 at 32k-token budgets). Latent->explicit needs no wait.",
    )
    close_mix: float = Field(
        default=0.3,
        ge=0.0,
        lt=1.0,
        description="SwiReasoning: weight of the close-thinking embedding in the first explicit token after a "
        "latent block, decaying to 0 over the thinking budget (the reference's 1 - beta_0).",
    )
    explicit_math: bool = Field(
        default=True,
        description="SwiReasoning: in a latent block, feed a step whose token spells math (digits, single letters, "
        "operators, LaTeX commands) as that token instead of the soft mixture, as the reference does.",
    )
    open_mix: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="SwiReasoning: weight of the open-thinking embedding in the first soft token after an "
        "explicit block, decaying likewise (the reference's 1 - alpha_0).",
    )
    start_mode: Literal["latent", "explicit"] = Field(default="latent", description="Mode of the first block.")
    answer_tokens: int = Field(
        default=48, ge=1, description="Answer budget when the Budget sets no answer/thinking split."
    )
    temperature: float = Field(default=0.0, ge=0.0, description="Sampling temperature of explicit tokens; 0 is greedy.")


def make_rule(options: LatentSwitchOptions) -> SwitchRule:
    """The switch rule the options name."""
    if options.rule == "swireasoning":
        return SwiReasoning(options.start_mode, options.max_switches, options.window)
    if options.rule == "thinkrouter":
        return ThinkRouter(options.threshold, options.start_mode)
    return FixedMode(options.rule)


def split_budget(budget: Budget, answer_tokens: int, least_answer: int = 1) -> tuple[int, int]:
    """(thinking, answer) tokens: the Budget's own split where it has one, else `answer_tokens` (at most half).

    The answer always keeps `least_answer` tokens, taken from thinking when the split leaves it fewer.
    """
    if budget.answer is not None:
        answer = budget.answer
    elif budget.thinking is not None:
        answer = budget.tokens - budget.thinking
    else:
        answer = min(answer_tokens, budget.tokens // 2)
    answer = min(max(answer, least_answer), budget.tokens)
    thinking = min(budget.thinking if budget.thinking is not None else budget.tokens, budget.tokens - answer)
    return thinking, answer


def mix_in(row: np.ndarray, delimiter: np.ndarray, weight: float) -> np.ndarray:
    """`(1 - weight) * row + weight * delimiter`, as float32; `row` unchanged at weight 0."""
    if weight <= 0.0:
        return np.asarray(row, dtype=np.float32)
    return ((1.0 - weight) * np.asarray(row, dtype=np.float64) + weight * delimiter).astype(np.float32)


@dataclass
class Block:
    """One run of steps in one mode; `token_ids` are the sampled (explicit) or most likely (latent) tokens."""

    mode: Mode
    node: int
    start: int
    token_ids: list[int] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)


class LatentThinking:
    """One solve's thinking loop: runs steps on the engine and feeds each back as the rule says."""

    def __init__(self, session: Session, options: LatentSwitchOptions, embeddings: np.ndarray, prefix: PrefixEmbeds):
        self.session = session
        self.options = options
        self.embeddings = embeddings
        self.prefix = prefix
        self.rule = make_rule(options)
        self.eos = frozenset(session.tokenizer.eos_token_ids)
        self.blocks: list[Block] = []
        self.latent_steps = 0
        self.explicit_tokens = 0
        self.math_steps = 0
        self.thinking_budget = 1
        explicit_math = options.rule == "swireasoning" and options.explicit_math
        self.math_ids = math_token_ids(session.tokenizer) if explicit_math else frozenset()
        mixing = options.rule == "swireasoning"
        self.close_mix = options.close_mix if mixing else 0.0
        self.open_mix = options.open_mix if mixing else 0.0
        self.close_embedding = self._delimiter_embedding(session.profile.think_close)
        self.open_embedding = self._delimiter_embedding(session.profile.think_open)
        self._open_block(self.rule.mode)

    @property
    def delimiter_mix(self) -> bool:
        """Whether switches mix a delimiter embedding in (see the module docstring)."""
        return (self.close_mix > 0 and self.close_embedding is not None) or (
            self.open_mix > 0 and self.open_embedding is not None
        )

    def _delimiter_embedding(self, delimiter: str) -> np.ndarray | None:
        """The input embedding of a thinking delimiter that is one token; None for a longer one."""
        ids = self.session.encode(delimiter)
        return np.asarray(self.embeddings[ids[0]], dtype=np.float64) if len(ids) == 1 else None

    @property
    def block(self) -> Block:
        return self.blocks[-1]

    @property
    def steps(self) -> int:
        return self.latent_steps + self.math_steps + self.explicit_tokens

    async def run(self, thinking_budget: int) -> ThinkingEnd:
        """Think until the model closes thinking, stops, hits the switch cap or spends `thinking_budget`."""
        self.thinking_budget = max(thinking_budget, 1)
        while True:
            room = thinking_budget - self.session.ledger.generated_by_phase["thinking"]
            if room < 1:
                end: ThinkingEnd | None = "budget"
            elif self.rule.mode == "latent":
                end = await self._latent_step()
            else:
                end = await self._explicit_block(room)
            if end is not None:
                self._close_block(end)
                return end

    def thinking_text(self) -> str:
        """The thinking as text: sampled tokens, and each latent step's most likely token."""
        return "".join(self.session.tokenizer.decode(block.token_ids) for block in self.blocks)

    async def _latent_step(self) -> ThinkingEnd | None:
        generation = await self.session.generate(
            self.prefix.view(),
            max_tokens=1,
            phase="thinking",
            kind="step",
            parent=self.block.node,
            edge="expand",
            temperature=self.options.temperature,
            logprobs=self.options.top_k,
        )
        return self._step(generation.token_ids[0], generation.logprobs[0] if generation.logprobs else {})

    async def _explicit_block(self, room: int) -> ThinkingEnd | None:
        request = await self.session.start(
            self.prefix.view(),
            max_tokens=room,
            phase="thinking",
            kind="step",
            parent=self.block.node,
            edge="expand",
            temperature=self.options.temperature,
            logprobs=self.options.top_k,
            stop_token_ids=tuple(self.eos),
        )
        index = 0
        while True:
            generation = await request.wait_for_tokens(index + 1)
            if len(generation.token_ids) <= index:
                return "budget" if generation.finish_reason == "length" else "eos"
            logprobs = generation.logprobs[index] if generation.logprobs else {}
            end = self._step(generation.token_ids[index], logprobs)
            if end is not None or self.rule.mode != "explicit":
                await request.abort()
                return end
            index += 1

    def _step(self, token: int, logprobs: dict[int, float]) -> ThinkingEnd | None:
        """Feed one observed step back into the prompt; say why thinking ends, if it does."""
        if token in self.eos:
            return "eos"
        distribution = top_k_distribution(logprobs or {token: 0.0}, self.options.top_k)
        mode = self.rule.observe(distribution.entropy, distribution.max_prob)
        if mode != self.block.mode:
            self._close_block(None)
            self._open_block(mode)
        self._feed(mode, token, distribution)
        closing = self.session.tokenizer.decode(self.block.token_ids[-_CLOSE_WINDOW:])
        if self.session.profile.think_close in closing:
            return "think_close"
        return "switch_cap" if self.rule.capped else None

    def _feed(self, mode: Mode, token: int, distribution: StepDistribution) -> None:
        """Append this step's input embedding: the soft token or the sampled token's row, mixed at a switch."""
        if mode == "latent" and token in self.math_ids:
            row = self.embeddings[token]
            self.block.token_ids.append(token)
            self.math_steps += 1
        elif mode == "latent":
            row = soft_embedding(self.embeddings, distribution, self.options.top_p)
            self.block.token_ids.append(distribution.token_ids[0])
            self.latent_steps += 1
        else:
            row = self.embeddings[token]
            self.block.token_ids.append(token)
            self.explicit_tokens += 1
        delimiter = self.open_embedding if mode == "latent" else self.close_embedding
        if self.rule.switched and delimiter is not None:
            mix = self.open_mix if mode == "latent" else self.close_mix
            row = mix_in(row, delimiter, mix * max(0.0, 1.0 - self.steps / self.thinking_budget))
        self.prefix.append(row)
        self.block.entropies.append(round(distribution.entropy, 4))

    def _open_block(self, mode: Mode) -> None:
        parent = self.blocks[-1].node if self.blocks else None
        node = self.session.trace.add(
            _BLOCK_KIND[mode], parent=parent, phase="thinking", mode=mode, start=self.steps, switch=len(self.blocks)
        )
        self.blocks.append(Block(mode=mode, node=node, start=self.steps))

    def _close_block(self, end: ThinkingEnd | None) -> None:
        block = self.block
        self.session.trace.update(
            block.node,
            tokens=len(block.token_ids),
            text=self.session.tokenizer.decode(block.token_ids),
            entropies=block.entropies,
            end=block.start + len(block.token_ids),
            ended_by=end or "switch",
        )


@register_strategy
class LatentSwitch(Strategy):
    """Latent/explicit switched thinking, then an answer with its own budget."""

    name = "latent_switch"
    Options = LatentSwitchOptions
    options: LatentSwitchOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        embeddings = await self._check_backend(session)
        profile, tokenizer = session.profile, session.tokenizer
        text_prompt = profile.build_prompt(tokenizer, prompt, thinking=True, answer_format=session.answer_format)
        prompt_ids = session.encode(text_prompt)
        thinking_budget, answer_budget = split_budget(
            session.budget, self.options.answer_tokens, profile.min_answer_tokens
        )
        suffix_room = len(session.encode(profile.forced_answer_suffix(""))) + 1
        context_room = session.backend.capabilities.max_model_len - len(prompt_ids) - suffix_room - answer_budget
        thinking_budget = max(0, min(thinking_budget, context_room))
        prefix = PrefixEmbeds(embeddings.shape[1], len(prompt_ids) + thinking_budget + suffix_room)
        prefix.append(embeddings[prompt_ids])

        thinking = LatentThinking(session, self.options, embeddings, prefix)
        end = await thinking.run(thinking_budget)
        thinking_text = thinking.thinking_text()
        suffix = profile.answer_lead_in if end == "think_close" else profile.forced_answer_suffix(thinking_text)
        prefix.append(embeddings[session.encode(suffix)])
        answer = await session.generate(
            prefix.view(),
            max_tokens=min(answer_budget, session.remaining),
            phase="answer",
            kind="answer",
            parent=thinking.block.node,
            temperature=self.options.temperature,
            stop_token_ids=tuple(thinking.eos),
        )
        text = (profile.answer_lead_in + answer.text).strip()
        thinking_tokens = session.ledger.generated_by_phase["thinking"]
        return Outcome(
            text=text,
            answer=session.extract_answer(text),
            metrics={
                "rule": self.options.rule,
                "switches": thinking.rule.switches,
                "latent_to_explicit": thinking.rule.commits,
                "delimiter_mix": thinking.delimiter_mix,
                "math_steps": thinking.math_steps,
                "latent_steps": thinking.latent_steps,
                "explicit_tokens": thinking.explicit_tokens,
                "discarded_tokens": thinking_tokens - thinking.steps,
                "blocks": len(thinking.blocks),
                "thinking_end": end,
                "thinking_tokens": thinking_tokens,
                "answer_tokens": len(answer.token_ids),
            },
        )

    async def _check_backend(self, session: Session) -> np.ndarray:
        capabilities = session.backend.capabilities
        if not capabilities.prompt_embeds:
            raise CapabilityError(
                f"latent_switch needs the 'prompt_embeds' capability, which backend {capabilities.name!r} lacks; "
                "use a vLLM backend started with enable_prompt_embeds=True"
            )
        if not capabilities.logprobs:
            raise CapabilityError(
                f"latent_switch needs the 'logprobs' capability, which backend {capabilities.name!r} lacks"
            )
        if capabilities.max_logprobs < self.options.top_k:
            raise StrategyError(
                f"option top_k={self.options.top_k} asks for more logprobs than backend {capabilities.name!r} "
                f"returns ({capabilities.max_logprobs}); lower top_k"
            )
        if not capabilities.input_embeddings:
            raise CapabilityError(
                f"latent_switch needs the input-embedding matrix ('input_embeddings'), which backend "
                f"{capabilities.name!r} does not expose; serve a model whose weights are also on this machine"
            )
        return await session.backend.input_embeddings()
