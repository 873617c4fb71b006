"""`elastic`: budget-truncated thinking with a forced answer (Elastic Reasoning; s1 budget forcing).

Thinking and answer get separate budgets. The model thinks inside the profile's thinking
block until it closes the block or reaches the thinking budget; a cut is closed with the
profile's forced-answer suffix and the answer is generated with its own budget, as token
ids that extend the thinking request's ids, so the answer request reuses its prefix cache.
With `wait_extensions=k`, a thinking block the model ends early is reopened with "Wait"
up to k times while thinking budget remains (s1's budget forcing).

Default split when the budget gives only `tokens`: the answer gets
`max(profile.min_answer_tokens, tokens // 4)` and thinking the rest. `Budget.thinking`
and `Budget.answer` override it; with one of them given, the other gets what is left.

Metrics: `thinking_tokens`, `answer_tokens`, `thinking_cut` (the model did not end its
thinking itself), `extensions` (Wait extensions used), `thinking_budget`, `answer_budget`,
`answer_cached_prompt_tokens` (prefix-cache hits of the answer request), `deadline_reached`
(the budget's `deadline_s` passed while thinking: thinking was cut there and the answer forced).

The answer is read from the lead-in and the reply up to any end-of-thinking delimiter the
model writes again after its block was already closed (what follows such a stray close is
not the answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from reasoner import Budget, BudgetError, Outcome, Session, Strategy, StrategyOptions, register_strategy
from reasoner.deadline import result_by_deadline
from reasoner.engines.base import Tokenizer
from reasoner.profiles import ModelProfile
from reasoner.strategy import AppliesWhen

DEFAULT_ANSWER_SHARE = 0.25


class ElasticOptions(StrategyOptions):
    """Sampling and budget forcing for elastic thinking."""

    wait_extensions: int = Field(
        default=0,
        ge=0,
        description="Times a thinking block the model ends early is reopened with `wait_text` (s1); 0 is off.",
    )
    wait_text: Annotated[str, AppliesWhen("wait_extensions", (0,), negate=True)] = Field(
        default="Wait", min_length=1, description="Text appended to reopen ended thinking (with wait_extensions)."
    )
    temperature: float = Field(default=0.0, ge=0.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")


@dataclass(frozen=True)
class ThinkingPlan:
    """How one elastic run spends its budget; `effort` goes to the profile's effort control."""

    thinking_budget: int
    answer_budget: int
    wait_extensions: int = 0
    wait_text: str = "Wait"
    effort: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0


@dataclass
class _Thinking:
    """The thinking phase so far: the ids the answer will extend, and what it cost."""

    token_ids: list[int]
    text: str = ""
    tokens: int = 0
    cut: bool = True
    extensions: int = 0
    closed_naturally: bool = False
    last_node: int | None = None
    deadline_reached: bool = False


def split_budget(budget: Budget, profile: ModelProfile) -> tuple[int, int]:
    """(thinking, answer) token budgets for a solve; see the module docstring for the default split."""
    if budget.answer is not None:
        answer = budget.answer
        thinking = budget.thinking if budget.thinking is not None else budget.tokens - answer
    elif budget.thinking is not None:
        thinking = budget.thinking
        answer = budget.tokens - thinking
    else:
        answer = min(budget.tokens, max(profile.min_answer_tokens, int(budget.tokens * DEFAULT_ANSWER_SHARE)))
        thinking = budget.tokens - answer
    if answer < profile.min_answer_tokens:
        raise BudgetError(
            f"the answer budget of {answer} tokens is below the {profile.min_answer_tokens} tokens a "
            f"{profile.family} answer after its lead-in needs; lower Budget.thinking or raise Budget.tokens"
        )
    return thinking, answer


async def run_elastic(session: Session, prompt: str, plan: ThinkingPlan) -> Outcome:
    """Think within `plan.thinking_budget`, then answer within `plan.answer_budget`."""
    profile = session.profile
    text_prompt = profile.build_prompt(
        session.tokenizer, prompt, thinking=True, effort=plan.effort, answer_format=session.answer_format
    )
    thinking = _Thinking(token_ids=session.encode(text_prompt))
    if plan.thinking_budget > 0:
        await _think(session, plan, thinking)
    lead_in = profile.answer_lead_in if thinking.closed_naturally else profile.forced_answer_suffix(thinking.text)
    answer_ids = thinking.token_ids + session.encode(lead_in) if lead_in else thinking.token_ids
    answer = await session.generate(
        answer_ids,
        max_tokens=plan.answer_budget,
        phase="answer",
        kind="answer",
        parent=thinking.last_node,
        lead_in=lead_in,
        temperature=plan.temperature,
        top_p=plan.top_p,
        final=True,
    )
    reply = lead_in.rsplit(profile.think_close, 1)[-1] + answer.text.split(profile.think_close, 1)[0]
    return Outcome(
        text=reply.strip(),
        answer=session.extract_answer(reply),
        metrics={
            "thinking_tokens": thinking.tokens,
            "answer_tokens": len(answer.token_ids),
            "thinking_cut": thinking.cut,
            "extensions": thinking.extensions,
            "thinking_budget": plan.thinking_budget,
            "answer_budget": plan.answer_budget,
            "answer_cached_prompt_tokens": answer.cached_prompt_tokens,
            "deadline_reached": thinking.deadline_reached,
        },
    )


async def _think(session: Session, plan: ThinkingPlan, thinking: _Thinking) -> None:
    """Generate thinking segments until the budget cuts them or the model ends without extensions left."""
    close = session.profile.think_close
    while True:
        left = plan.thinking_budget - thinking.tokens
        if session.ledger.deadline_passed():
            thinking.deadline_reached = True
            return
        running = await session.start(
            thinking.token_ids,
            max_tokens=left,
            phase="thinking",
            kind="think",
            parent=thinking.last_node,
            extension=thinking.extensions,
            stop=(close,),
            temperature=plan.temperature,
            top_p=plan.top_p,
        )
        generation, thinking.deadline_reached = await result_by_deadline(session, running)
        thinking.tokens += len(generation.token_ids)
        thinking.text += generation.text
        thinking.last_node = generation.node
        if generation.cut_by_limit or thinking.deadline_reached:
            thinking.token_ids += generation.token_ids
            return
        kept, tail = open_thinking_prefix(session.tokenizer, generation.token_ids, generation.text)
        can_extend = thinking.extensions < plan.wait_extensions and thinking.tokens < plan.thinking_budget
        if can_extend:
            reopen = ("" if (thinking.text or "\n").endswith("\n") else "\n") + plan.wait_text
            thinking.token_ids += kept + session.encode(tail + reopen)
            thinking.text += reopen
            thinking.extensions += 1
            session.trace.update(generation.node, forced_next=plan.wait_text)
            continue
        thinking.cut = False
        if close in session.tokenizer.decode(generation.token_ids):
            thinking.token_ids += generation.token_ids
            thinking.closed_naturally = True
        else:
            thinking.token_ids += kept + (session.encode(tail) if tail else [])
        return


def open_thinking_prefix(tokenizer: Tokenizer, token_ids: Sequence[int], text: str) -> tuple[list[int], str]:
    """The longest prefix of `token_ids` that decodes to a prefix of `text`, and the rest of `text`.

    A request stopped at the end-of-thinking string (or at end of sequence) has token ids
    that run past its visible text; these ids without that overrun still hit the prefix cache.
    """
    kept = list(token_ids)
    while kept:
        decoded = tokenizer.decode(kept)
        if text.startswith(decoded):
            return kept, text[len(decoded) :]
        kept.pop()
    return [], text


@register_strategy
class Elastic(Strategy):
    """Think within a thinking budget, then always answer within an answer budget."""

    name = "elastic"
    Options = ElasticOptions
    options: ElasticOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        thinking_budget, answer_budget = split_budget(session.budget, session.profile)
        plan = ThinkingPlan(
            thinking_budget=thinking_budget,
            answer_budget=answer_budget,
            wait_extensions=self.options.wait_extensions,
            wait_text=self.options.wait_text,
            temperature=self.options.temperature,
            top_p=self.options.top_p,
        )
        return await run_elastic(session, prompt, plan)
