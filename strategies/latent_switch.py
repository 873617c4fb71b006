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
At a SwiReasoning switch the fed embedding is mixed with the thinking delimiters' embeddings
(`close_mix`, `open_mix`, `multi_token_mix`; metrics `delimiter_mix`, `delimiter_tokens`), and a
latent step whose token spells math is fed as that token (`explicit_math`; metric `math_steps`):
`strategies.latent_feed` says how. The loop itself is `strategies.latent_thinking`; the options
are `strategies.latent_options`.

Deviations kept as options, each for a reason:
- The mixture and the entropy come from the top-k logprobs the engine returns, not the whole
  vocabulary (`top_k`, default: all the backend returns, 64 on the local engine): a step reads at
  most `max_logprobs` entries. The entropy counts the unread tail as one outcome, a lower bound;
  `unread_mass` (mean probability outside the top-k) says how loose. Cold Stop on a lower bound
  can fire early by at most that looseness.
- A delimiter of several tokens is not mixed unless `multi_token_mix`: on the embedded model
  (prompted `</think>`, 3 tokens) mixing it cost 15 points (arith d1, 20 problems, 128 tokens:
  SwiReasoning 25% with it, 40% without).

Streaming: a watched solve (`on_event`) reports what it keeps as it decides it (`Session.keep`): the
explicit thinking token by token as the rule keeps it, never what the engine made past a switch; each
latent stretch as a start and an end with no text; then the answer's text as it comes, except an
answer the cap forced (the reply holds more than that request), which is known only at the end.

Metrics: `switches` (all), `latent_to_explicit` (the switches SwiReasoning's cap counts),
`close_injections` (delimiters injected by the cap), `forced_answer` (the cap's second stage, or
the answer budget, forced the answer), `delimiter_mix`, `delimiter_tokens`, `math_steps`,
`latent_steps`, `explicit_tokens` (both counting steps after an injected close too),
`discarded_tokens` (tokens the engine made past a switch), `blocks`, `thinking_end`
(think_close, eos, switch_cap, cold_stop or budget), `thinking_tokens`, `answer_tokens` (the
final answer request's), `unread_mass`.
"""

from __future__ import annotations

import numpy as np

from reasoner import (
    Budget,
    CapabilityError,
    Generation,
    Outcome,
    RunningRequest,
    Session,
    Strategy,
    StrategyError,
    register_strategy,
)
from strategies.latent_options import LatentSwitchOptions
from strategies.latent_thinking import LatentThinking, ThinkingEnd
from strategies.soft_tokens import PrefixEmbeds


async def keep_as_it_comes(session: Session, request: RunningRequest) -> None:
    """Report each new piece of `request`'s text as kept (`Session.keep`) until the request finishes."""
    reported = 0
    while True:
        generation = await request.wait_for_tokens(len(request.generation.token_ids) + 1)
        if len(generation.text) > reported:
            session.keep(request.phase, request.kind, generation.text[reported:])
            reported = len(generation.text)
        if request.done:
            return


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
                "delimiter_mix": thinking.feed.delimiter_mix,
                "delimiter_tokens": len(thinking.feed.close_rows),
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
        answer = await self._generate_answer(session, thinking, suffix, answer_budget, keep=True)
        return (lead_in + (answer.text if answer else "")).strip(), answer, False

    async def _generate_answer(
        self, session: Session, thinking: LatentThinking, suffix: str, room: int, keep: bool = False
    ) -> Generation | None:
        """Append `suffix` and generate the answer in at most `room` tokens; None when no token is left.

        With `keep`, the answer's text is reported as kept as it comes (`Session.keep`): the whole reply is
        the profile's lead-in and that text. An answer the cap forced is not: the reply holds more than it.
        """
        thinking.feed.append_text(suffix)
        max_tokens = min(room, session.remaining)
        if max_tokens < 1:
            return None
        request = await session.start(
            thinking.feed.prefix.view(),
            max_tokens=max_tokens,
            phase="answer",
            kind="answer",
            parent=thinking.block.node,
            temperature=self.options.temperature,
            stop_token_ids=tuple(thinking.eos),
        )
        if keep:
            await keep_as_it_comes(session, request)
        return await request.result()

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
