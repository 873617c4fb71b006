"""`latent_switch`'s control loop: steps on the engine, the rule's mode per step, blocks in the trace.

A latent step is a request with max_tokens=1 and top-k logprobs over the prompt of embedding rows;
an explicit block is one streamed request, aborted when the rule switches (the tokens the engine
made past the switch are discarded). Each step's row goes back through `latent_feed.EmbeddingFeed`.
Every run of steps in one mode is a block, one trace segment (kind latent, think or answer).

While the solve is watched (`on_event`), the loop reports what it keeps as it decides it
(`Session.keep`, see `reasoner.events`): the text of each explicit thinking block, token by token as
the rule keeps them (never the tokens the engine made past a switch), and the start and end of each
latent block, which has no text. The kept `think` texts joined are the `think` segments' texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from reasoner import Session
from strategies.latent_feed import EmbeddingFeed
from strategies.latent_options import LatentSwitchOptions, make_rule
from strategies.soft_tokens import PrefixEmbeds, StepDistribution, top_k_distribution
from strategies.switch_rules import ColdStop, Mode

ThinkingEnd = Literal["think_close", "eos", "switch_cap", "cold_stop", "budget"]
Phase = Literal["thinking", "answer"]
_BLOCK_KIND: dict[tuple[Phase, Mode], str] = {
    ("thinking", "latent"): "latent",
    ("thinking", "explicit"): "think",
    ("answer", "latent"): "latent",
    ("answer", "explicit"): "answer",
}
_CLOSE_WINDOW = 8


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
    the answer (`answer`), still switching (see `strategies.latent_switch`).
    """

    def __init__(
        self, session: Session, options: LatentSwitchOptions, embeddings: np.ndarray, prefix: PrefixEmbeds, top_k: int
    ):
        self.session = session
        self.options = options
        self.feed = EmbeddingFeed(session, options, embeddings, prefix)
        self.top_k = top_k
        self.rule = make_rule(options)
        self.phase: Phase = "thinking"
        self.eos = frozenset(session.tokenizer.eos_token_ids)
        self.blocks: list[Block] = []
        self._kept_text = ""
        self.latent_steps = 0
        self.explicit_tokens = 0
        self.math_steps = 0
        self.close_injections = 0
        self.unread_mass = 0.0
        self.thinking_budget = 1
        cold = options.rule in ("thinkrouter", "latent") and options.cold_stop_steps is not None
        self.cold_stop = ColdStop(options.cold_stop_entropy, options.cold_stop_steps or 1) if cold else None
        self._open_block(self.rule.mode)

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
        self.feed.append_text(text)
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

    def _step_request(self) -> dict[str, Any]:
        """What a latent step and an explicit block ask of the engine alike: their place in the trace, sampling."""
        return {
            "phase": self.phase,
            "kind": "step",
            "parent": self.block.node,
            "edge": "expand",
            "temperature": self.options.temperature,
            "logprobs": self.top_k,
        }

    async def _latent_step(self) -> ThinkingEnd | None:
        generation = await self.session.generate(self.feed.prefix.view(), max_tokens=1, **self._step_request())
        return self._step(generation.token_ids[0], generation.logprobs[0] if generation.logprobs else {})

    async def _explicit_block(self, room: int) -> ThinkingEnd | None:
        request = await self.session.start(
            self.feed.prefix.view(), max_tokens=room, stop_token_ids=tuple(self.eos), **self._step_request()
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
        """Append this step's row to the prompt and its token to the block, counting the step by kind."""
        row, kept, kind = self.feed.step_row(mode, token, distribution)
        self.block.token_ids.append(kept)
        if kind == "math":
            self.math_steps += 1
        elif kind == "latent":
            self.latent_steps += 1
        else:
            self.explicit_tokens += 1
        if self.rule.switched:
            self.feed.switched_to(mode)
        self.feed.append(row, max(0.0, 1.0 - self.steps / self.thinking_budget))
        self.block.entropies.append(round(distribution.entropy, 4))
        if kind == "explicit" and self.phase == "thinking" and self.session.on_event is not None:
            self._keep_text(settled(self.session.tokenizer.decode(self.block.token_ids)))

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
        self._kept_text = ""
        if mode == "latent":
            self.session.keep(self.phase, "latent")

    def _close_block(self, end: ThinkingEnd | None) -> None:
        block = self.block
        text = self.session.tokenizer.decode(block.token_ids)
        self.session.trace.update(
            block.node,
            tokens=len(block.token_ids),
            text=text,
            entropies=block.entropies,
            end=block.start + len(block.token_ids),
            ended_by=end or "switch",
        )
        if block.mode == "latent":
            self.session.keep(block.phase, "latent", finished=True)
        elif block.phase == "thinking":
            self._keep_text(text)

    def _keep_text(self, text: str) -> None:
        """Report what `text`, the explicit thinking block's text so far, adds to what was reported of it."""
        if len(text) > len(self._kept_text) and text.startswith(self._kept_text):
            self.session.keep("thinking", "think", text[len(self._kept_text) :])
            self._kept_text = text


def settled(text: str) -> str:
    """A block's text less the tail a later token may still change: the replacement marks of a character
    whose bytes are not all in yet, and trailing whitespace (a decoder may fold it into what follows)."""
    return text.rstrip("\ufffd").rstrip()
