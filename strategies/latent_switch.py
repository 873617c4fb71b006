"""`latent_switch`: thinking in blocks of latent soft tokens and explicit tokens (SwiReasoning, ThinkRouter).

A latent step feeds back, instead of a sampled token, the probability-weighted mixture of
the input embeddings of the top-k next tokens; an explicit block samples real tokens. A
switch rule (`strategies.switch_rules`) picks the mode step by step from the model's
confidence. Then the answer follows with its own budget.

SwiReasoning's switch cap has the reference's two stages: at the C_max-th latent->explicit
switch the close-thinking delimiter (and the profile's answer lead-in) is injected and the model
goes on, into its answer, still switching by the same rule within the answer budget; each further
switch up to 2*C_max injects the delimiter again, and the one past 2*C_max (or the answer budget
running out) forces the answer: the forced-answer suffix, then at most `forced_answer_tokens`
(the reference's 32). ThinkRouter (and latent-only Soft Thinking) end thinking by Cold Stop, as
Soft Thinking does: once the entropy stayed below `cold_stop_entropy` for `cold_stop_steps`
consecutive steps, the delimiter is injected and the answer follows.

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
A delimiter of several tokens (the prompted `</think>` of a model not trained to think) has no
embedding of its own: with `multi_token_mix` it is mixed token by token into the first rows after
the switch (`delimiter_tokens` says how many; `delimiter_mix` whether anything was mixed).
SwiReasoning also feeds a latent step whose token spells math (a digit, a single letter, an
operator, a LaTeX command; `soft_tokens.math_token_ids`) as that token, as the reference does,
so a soft mixture never blurs a number (`explicit_math`; metric `math_steps`).

Deviations kept as options, each for a reason:
- The mixture and the entropy come from the top-k logprobs the engine returns, not the whole
  vocabulary (`top_k`, default: all the backend returns, 64 on the local engine): a step reads at
  most `max_logprobs` entries. The entropy counts the unread tail as one outcome, a lower bound;
  `unread_mass` (mean probability outside the top-k) says how loose. Cold Stop on a lower bound
  can fire early by at most that looseness.
- A delimiter of several tokens is not mixed unless `multi_token_mix`: on the embedded model
  (prompted `</think>`, 3 tokens) mixing it cost 15 points (arith d1, 20 problems, 128 tokens:
  SwiReasoning 25% with it, 40% without).

Metrics: `switches` (all), `latent_to_explicit` (the switches SwiReasoning's cap counts),
`close_injections` (delimiters injected by the cap), `forced_answer` (the cap's second stage, or
the answer budget, forced the answer), `delimiter_mix`, `delimiter_tokens`, `math_steps`,
`latent_steps`, `explicit_tokens` (both counting steps after an injected close too),
`discarded_tokens` (tokens the engine made past a switch), `blocks`, `thinking_end`
(think_close, eos, switch_cap, cold_stop or budget), `thinking_tokens`, `answer_tokens` (the
final answer request's), `unread_mass`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from reasoner import (
    Budget,
    CapabilityError,
    Generation,
    Outcome,
    Session,
    Strategy,
    StrategyError,
    StrategyOptions,
    register_strategy,
)
from reasoner.strategy import AppliesWhen
from strategies.soft_tokens import (
    PrefixEmbeds,
    StepDistribution,
    math_token_ids,
    soft_embedding,
    top_k_distribution,
)
from strategies.switch_rules import ColdStop, FixedMode, Mode, SwiReasoning, SwitchRule, ThinkRouter

ThinkingEnd = Literal["think_close", "eos", "switch_cap", "cold_stop", "budget"]
Phase = Literal["thinking", "answer"]
_BLOCK_KIND: dict[tuple[Phase, Mode], str] = {
    ("thinking", "latent"): "latent",
    ("thinking", "explicit"): "think",
    ("answer", "latent"): "latent",
    ("answer", "explicit"): "answer",
}
_CLOSE_WINDOW = 8
_SOFT_RULES = AppliesWhen("rule", ("swireasoning", "thinkrouter", "latent"))
_SWIREASONING = AppliesWhen("rule", ("swireasoning",))
_COLD_STOP_RULES = AppliesWhen("rule", ("thinkrouter", "latent"))


class LatentSwitchOptions(StrategyOptions):
    """How thinking switches between latent soft tokens and explicit tokens."""

    rule: Literal["swireasoning", "thinkrouter", "latent", "explicit"] = Field(
        default="swireasoning",
        description="Switch rule: swireasoning (entropy trend per block), thinkrouter (per-step confidence), "
        "or a fixed mode (latent-only soft thinking, explicit-only thinking) for comparison.",
    )
    top_k: Annotated[int | None, _SOFT_RULES] = Field(
        default=None,
        ge=1,
        description="Tokens mixed into a soft token (and logprobs read per step); None: all the backend returns "
        "(its max_logprobs). The reference mixes the whole distribution; an engine step returns at most that many.",
    )
    top_p: Annotated[float, _SOFT_RULES] = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Probability mass of the top-k kept in the mix; 1.0 keeps all of it, as the reference's "
        "whole-distribution mix does (Soft Thinking's scripts use 0.95 with top_k=10).",
    )
    threshold: Annotated[float, AppliesWhen("rule", ("thinkrouter",))] = Field(
        default=0.6, gt=0.0, lt=1.0, description="ThinkRouter: max probability at or above which a step goes latent."
    )
    max_switches: Annotated[int | None, _SWIREASONING] = Field(
        default=8,
        ge=1,
        description="SwiReasoning: C_max, the latent->explicit switches before the cap acts; from the C_max-th to "
        "the 2*C_max-th each injects the close delimiter and the model goes on, the one past 2*C_max forces the "
        "answer (None: no cap).",
    )
    forced_answer_tokens: Annotated[int, _SWIREASONING] = Field(
        default=32,
        ge=1,
        description="SwiReasoning: most tokens of the answer the cap forces (the reference's 32); also held back "
        "from the answer budget while the model goes on after an injected close.",
    )
    window: Annotated[int, _SWIREASONING] = Field(
        default=32,
        ge=1,
        description="SwiReasoning: steps an explicit block lasts before rising entropy may send it back to latent "
        "(the dwell window; the reference uses 512 at 32k-token budgets). Latent->explicit needs no wait.",
    )
    close_mix: Annotated[float, _SWIREASONING] = Field(
        default=0.3,
        ge=0.0,
        lt=1.0,
        description="SwiReasoning: weight of the close-thinking embedding in the first explicit token after a "
        "latent block, decaying to 0 over the thinking budget (the reference's 1 - beta_0).",
    )
    explicit_math: Annotated[bool, _SWIREASONING] = Field(
        default=True,
        description="SwiReasoning: in a latent block, feed a step whose token spells math (digits, single letters, "
        "operators, LaTeX commands) as that token instead of the soft mixture, as the reference does.",
    )
    multi_token_mix: Annotated[bool, _SWIREASONING] = Field(
        default=False,
        description="SwiReasoning: also mix a delimiter of several tokens (a prompted </think>), token by token into "
        "the rows after a switch; a one-token delimiter is always mixed.",
    )
    open_mix: Annotated[float, _SWIREASONING] = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="SwiReasoning: weight of the open-thinking embedding in the first soft token after an "
        "explicit block, decaying likewise (the reference's 1 - alpha_0).",
    )
    cold_stop_entropy: Annotated[float, _COLD_STOP_RULES] = Field(
        default=0.01,
        gt=0.0,
        description="ThinkRouter/latent: Cold Stop's entropy threshold in nats (Soft Thinking's 0.01).",
    )
    cold_stop_steps: Annotated[int | None, _COLD_STOP_RULES] = Field(
        default=256,
        ge=1,
        description="ThinkRouter/latent: consecutive steps below cold_stop_entropy that end thinking (Soft "
        "Thinking's 256); None: no Cold Stop.",
    )
    start_mode: Annotated[Literal["latent", "explicit"], AppliesWhen("rule", ("swireasoning", "thinkrouter"))] = Field(
        default="latent", description="Mode of the first block."
    )
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
    phase: Phase
    node: int
    start: int
    token_ids: list[int] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)


class LatentThinking:
    """One solve's switched loop: runs steps on the engine and feeds each back as the rule says.

    It thinks first (`run`); after SwiReasoning's cap injected the close delimiter it goes on into
    the answer (`answer`), still switching (see the module docstring).
    """

    def __init__(
        self, session: Session, options: LatentSwitchOptions, embeddings: np.ndarray, prefix: PrefixEmbeds, top_k: int
    ):
        self.session = session
        self.options = options
        self.embeddings = embeddings
        self.prefix = prefix
        self.top_k = top_k
        self.rule = make_rule(options)
        self.phase: Phase = "thinking"
        self.eos = frozenset(session.tokenizer.eos_token_ids)
        self.blocks: list[Block] = []
        self.latent_steps = 0
        self.explicit_tokens = 0
        self.math_steps = 0
        self.close_injections = 0
        self.unread_mass = 0.0
        self.thinking_budget = 1
        explicit_math = options.rule == "swireasoning" and options.explicit_math
        self.math_ids = math_token_ids(session.tokenizer) if explicit_math else frozenset()
        mixing = options.rule == "swireasoning"
        self.close_mix = options.close_mix if mixing else 0.0
        self.open_mix = options.open_mix if mixing else 0.0
        self.close_rows = self._delimiter_rows(session.profile.think_close)
        self.open_rows = self._delimiter_rows(session.profile.think_open)
        if not options.multi_token_mix:
            self.close_mix = self.close_mix if len(self.close_rows) == 1 else 0.0
            self.open_mix = self.open_mix if len(self.open_rows) == 1 else 0.0
        self._pending_rows: list[np.ndarray] = []
        self._pending_mix = 0.0
        cold = options.rule in ("thinkrouter", "latent") and options.cold_stop_steps is not None
        self.cold_stop = ColdStop(options.cold_stop_entropy, options.cold_stop_steps or 1) if cold else None
        self._open_block(self.rule.mode)

    @property
    def delimiter_mix(self) -> bool:
        """Whether switches mix a delimiter embedding in (see the module docstring)."""
        return (self.close_mix > 0 and len(self.close_rows) > 0) or (self.open_mix > 0 and len(self.open_rows) > 0)

    def _delimiter_rows(self, delimiter: str) -> np.ndarray:
        """The input embeddings of a thinking delimiter's tokens, `[tokens, hidden]` float64."""
        return np.asarray(self.embeddings[self.session.encode(delimiter)], dtype=np.float64)

    @property
    def block(self) -> Block:
        return self.blocks[-1]

    @property
    def steps(self) -> int:
        return self.latent_steps + self.math_steps + self.explicit_tokens

    async def run(self, thinking_budget: int) -> ThinkingEnd:
        """Think until the model closes thinking, stops, Cold Stop or the cap acts, or `thinking_budget` is spent."""
        self.thinking_budget = max(thinking_budget, 1)
        return await self._loop(thinking_budget)

    async def answer(self, answer_room: int) -> ThinkingEnd:
        """Go on after an injected close: `eos` (the answer is written), `switch_cap` (the cap forces the
        answer) or `budget` (`answer_room` spent)."""
        self.phase = "answer"
        self._open_block(self.rule.mode)
        return await self._loop(answer_room)

    def inject(self, text: str) -> None:
        """Append `text`'s token embeddings to the prompt: the close delimiter the cap injects."""
        self.prefix.append(self.embeddings[self.session.encode(text)])
        self.close_injections += 1

    async def _loop(self, budget: int) -> ThinkingEnd:
        while True:
            room = budget - self.session.ledger.generated_by_phase[self.phase]
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
        return self._text("thinking")

    def answer_text(self) -> str:
        """What the loop wrote after an injected close, likewise."""
        return self._text("answer")

    def _text(self, phase: Phase) -> str:
        return "".join(self.session.tokenizer.decode(block.token_ids) for block in self.blocks if block.phase == phase)

    async def _latent_step(self) -> ThinkingEnd | None:
        generation = await self.session.generate(
            self.prefix.view(),
            max_tokens=1,
            phase=self.phase,
            kind="step",
            parent=self.block.node,
            edge="expand",
            temperature=self.options.temperature,
            logprobs=self.top_k,
        )
        return self._step(generation.token_ids[0], generation.logprobs[0] if generation.logprobs else {})

    async def _explicit_block(self, room: int) -> ThinkingEnd | None:
        request = await self.session.start(
            self.prefix.view(),
            max_tokens=room,
            phase=self.phase,
            kind="step",
            parent=self.block.node,
            edge="expand",
            temperature=self.options.temperature,
            logprobs=self.top_k,
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
        """Feed one observed step back into the prompt; say why the loop ends, if it does."""
        if token in self.eos:
            return "eos"
        distribution = top_k_distribution(logprobs or {token: 0.0}, self.top_k)
        self.unread_mass += distribution.tail_mass
        mode = self.rule.observe(distribution.entropy, distribution.max_prob)
        if mode != self.block.mode:
            self._close_block(None)
            self._open_block(mode)
        self._feed(mode, token, distribution)
        if self.rule.forced:
            return "switch_cap"
        if self.rule.cap_action == "close":
            if self.phase == "thinking":
                return "switch_cap"
            self.inject(self.session.profile.think_close)
        if self.phase == "answer":
            return None
        closing = self.session.tokenizer.decode(self.block.token_ids[-_CLOSE_WINDOW:])
        if self.session.profile.think_close in closing:
            return "think_close"
        if self.cold_stop is not None and self.cold_stop.observe(distribution.entropy):
            return "cold_stop"
        return None

    def _feed(self, mode: Mode, token: int, distribution: StepDistribution) -> None:
        """Append this step's input embedding: the soft token or the sampled token's row, mixed after a switch."""
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
        if self.rule.switched:
            mix = self.open_mix if mode == "latent" else self.close_mix
            rows = self.open_rows if mode == "latent" else self.close_rows
            self._pending_rows = list(rows) if mix > 0 else []
            self._pending_mix = mix
        if self._pending_rows:
            weight = self._pending_mix * max(0.0, 1.0 - self.steps / self.thinking_budget)
            row = mix_in(row, self._pending_rows.pop(0), weight)
        self.prefix.append(row)
        self.block.entropies.append(round(distribution.entropy, 4))

    def _open_block(self, mode: Mode) -> None:
        parent = self.blocks[-1].node if self.blocks else None
        node = self.session.trace.add(
            _BLOCK_KIND[self.phase, mode],
            parent=parent,
            phase=self.phase,
            mode=mode,
            start=self.steps,
            switch=len(self.blocks),
        )
        self.blocks.append(Block(mode=mode, phase=self.phase, node=node, start=self.steps))

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
        embeddings, top_k = await self._check_backend(session)
        options = self.options
        profile, tokenizer = session.profile, session.tokenizer
        text_prompt = profile.build_prompt(tokenizer, prompt, thinking=True, answer_format=session.answer_format)
        prompt_ids = session.encode(text_prompt)
        thinking_budget, answer_budget = split_budget(session.budget, options.answer_tokens, profile.min_answer_tokens)
        suffix_room = len(session.encode(profile.forced_answer_suffix(""))) + 1
        context_room = session.backend.capabilities.max_model_len - len(prompt_ids) - suffix_room - answer_budget
        thinking_budget = max(0, min(thinking_budget, context_room))
        prefix = PrefixEmbeds(embeddings.shape[1], len(prompt_ids) + thinking_budget + suffix_room)
        prefix.append(embeddings[prompt_ids])

        thinking = LatentThinking(session, options, embeddings, prefix, top_k)
        end = await thinking.run(thinking_budget)
        thinking_tokens = session.ledger.generated_by_phase["thinking"]
        text, answer, forced = await self._answer(session, thinking, end, answer_budget)
        loop_tokens = session.ledger.generated_by_phase["thinking"] + session.ledger.generated_by_phase["answer"]
        answer_tokens = len(answer.token_ids) if answer is not None else 0
        steps = max(thinking.steps, 1)
        return Outcome(
            text=text,
            answer=session.extract_answer(text),
            metrics={
                "rule": options.rule,
                "switches": thinking.rule.switches,
                "latent_to_explicit": thinking.rule.commits,
                "close_injections": thinking.close_injections,
                "forced_answer": forced,
                "delimiter_mix": thinking.delimiter_mix,
                "delimiter_tokens": len(thinking.close_rows),
                "math_steps": thinking.math_steps,
                "latent_steps": thinking.latent_steps,
                "explicit_tokens": thinking.explicit_tokens,
                "discarded_tokens": loop_tokens - answer_tokens - thinking.steps,
                "blocks": len(thinking.blocks),
                "thinking_end": end,
                "thinking_tokens": thinking_tokens,
                "answer_tokens": answer_tokens,
                "unread_mass": round(thinking.unread_mass / steps, 6),
            },
        )

    async def _answer(
        self, session: Session, thinking: LatentThinking, end: ThinkingEnd, answer_budget: int
    ) -> tuple[str, Generation | None, bool]:
        """(text, the final answer request or None, whether the answer was forced) after thinking ended by `end`."""
        profile = session.profile
        lead_in = profile.answer_lead_in
        if end == "switch_cap":
            thinking.inject(profile.think_close + lead_in)
            held_back = min(self.options.forced_answer_tokens, answer_budget // 2)
            answer_end = await thinking.answer(answer_budget - held_back)
            written = lead_in + thinking.answer_text()
            if answer_end == "eos":
                return written.strip(), None, False
            room = min(self.options.forced_answer_tokens, answer_budget - session.ledger.generated_by_phase["answer"])
            forced = await self._generate_answer(session, thinking, profile.forced_answer_suffix(written), room)
            return (written + lead_in + (forced.text if forced else "")).strip(), forced, True
        if end == "think_close":
            suffix = lead_in
        elif end == "cold_stop":
            suffix = profile.think_close + lead_in
        else:
            suffix = profile.forced_answer_suffix(thinking.thinking_text())
        answer = await self._generate_answer(session, thinking, suffix, answer_budget)
        return (lead_in + (answer.text if answer else "")).strip(), answer, False

    async def _generate_answer(
        self, session: Session, thinking: LatentThinking, suffix: str, room: int
    ) -> Generation | None:
        """Append `suffix` and generate the answer in at most `room` tokens; None when no token is left."""
        thinking.prefix.append(thinking.embeddings[session.encode(suffix)])
        max_tokens = min(room, session.remaining)
        if max_tokens < 1:
            return None
        return await session.generate(
            thinking.prefix.view(),
            max_tokens=max_tokens,
            phase="answer",
            kind="answer",
            parent=thinking.block.node,
            temperature=self.options.temperature,
            stop_token_ids=tuple(thinking.eos),
        )

    async def _check_backend(self, session: Session) -> tuple[np.ndarray, int]:
        """The input-embedding matrix and the top-k to read per step, or the capability the backend lacks."""
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
        top_k = self.options.top_k if self.options.top_k is not None else capabilities.max_logprobs
        if capabilities.max_logprobs < top_k:
            raise StrategyError(
                f"option top_k={top_k} asks for more logprobs than backend {capabilities.name!r} "
                f"returns ({capabilities.max_logprobs}); lower top_k"
            )
        if not capabilities.input_embeddings:
            raise CapabilityError(
                f"latent_switch needs the input-embedding matrix ('input_embeddings'), which backend "
                f"{capabilities.name!r} does not expose; serve a model whose weights are also on this machine"
            )
        return await session.backend.input_embeddings(), top_k
