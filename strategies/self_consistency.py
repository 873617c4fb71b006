"""`self_consistency`: n independent samples, majority vote over their answers.

Self-Consistency (Wang et al., 2023): sample several reasoning paths and answer with the most
common final answer. Samples run concurrently, one request each; answers vote together when
`reasoner.answers.same_answer` says they are equivalent (math: `1/2` and `0.5`), and a tie
goes to the answer whose samples have the higher mean token log-probability.

Metrics:
- `samples_used`: samples that ran (n capped by `Budget.samples` and by what the tokens pay).
- `sample_tokens`: the most tokens each sample could generate.
- `distinct_answers`: how many different answers got votes.
- `winning_votes`: votes for the chosen answer; `vote_share`: that over `samples_used`.
- `none_answers`: samples with no extractable answer.
- `tie_broken`: True when the vote was tied and the log-probability decided.
- `cut_samples`: samples stopped by their token cap.

`top_p` with `temperature=0` (greedy samples, which it would not change) is refused with a
`StrategyError` naming it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from reasoner import (
    BudgetError,
    BudgetExhausted,
    Generation,
    Outcome,
    RunningRequest,
    Session,
    Strategy,
    StrategyOptions,
    register_strategy,
)
from reasoner.answers import same_answer
from reasoner.solution import MetricValue
from reasoner.strategy import AppliesWhen


@dataclass(frozen=True)
class SamplePlan:
    """How many samples a budget pays for, and each one's token cap."""

    count: int
    sample_tokens: int


def plan_samples(
    session: Session, n: int, sample_tokens: int | None, overhead: int = 0, prompt_tokens: int = 0
) -> SamplePlan:
    """Fit `n` samples, each costing `overhead` extra tokens (e.g. scoring), into what remains.

    `n` is capped by `Budget.samples` and by how many samples of at least the profile's least
    answer length the remaining tokens pay for; each sample gets an even share, at most
    `sample_tokens`. Under a cost cap each sample also gets an even share of the cost left, for a
    prompt of `prompt_tokens` (uncached: an upper bound), and `n` shrinks until a share pays the
    least answer; otherwise the first sample would be granted all the cost. Raises `BudgetError`
    when not even one sample fits the tokens.
    """
    least = session.profile.min_answer_tokens
    remaining = session.remaining
    if remaining < least + overhead:
        raise BudgetError(
            f"{remaining} budget tokens cannot pay for one sample of {least} tokens plus "
            f"{overhead} scoring tokens; raise the budget"
        )
    count = min(n, session.budget.samples or n, remaining // (least + overhead))
    cost_left, cost_model = session.ledger.cost_left, session.cost_model
    while True:
        share = (remaining - count * overhead) // count
        tokens = min(share, sample_tokens or share)
        if cost_left is None or cost_model is None:
            return SamplePlan(count=count, sample_tokens=tokens)
        paid = cost_model.max_generated(prompt_tokens, max(cost_left, 0) // count, tokens)
        if paid >= least or count == 1:
            # Not even one least answer: the plan stands and the ledger refuses the request it cannot pay.
            return SamplePlan(count=count, sample_tokens=paid if paid >= 1 else tokens)
        count -= 1


def sample_prompt(session: Session, question: str, thinking: bool) -> list[int]:
    """Token ids of the prompt every sample shares (so the engine caches it once)."""
    text = session.profile.build_prompt(
        session.tokenizer, question, thinking=thinking, answer_format=session.answer_format
    )
    return session.encode(text)


def mean_logprob(generation: Generation) -> float:
    """Mean log-probability of the sampled tokens; -inf when none were reported."""
    values = [
        position[token]
        for token, position in zip(generation.token_ids, generation.logprobs or [], strict=False)
        if token in position
    ]
    return sum(values) / len(values) if values else -math.inf


async def results(requests: Sequence[RunningRequest]) -> list[Generation]:
    """Wait for every request; if waiting fails or is cancelled, abort the ones still running."""
    try:
        return list(await asyncio.gather(*(request.result() for request in requests)))
    except BaseException:
        await asyncio.gather(*(request.abort() for request in requests), return_exceptions=True)
        raise


@dataclass
class AnswerGroup:
    """Samples whose answers are equivalent."""

    answer: str
    members: list[int] = field(default_factory=list)
    confidence: float = -math.inf


def vote(answers: Sequence[str | None], confidences: Sequence[float], answer_format: str) -> list[AnswerGroup]:
    """Group equivalent answers; most votes first, then higher mean confidence, then first seen."""
    groups: list[AnswerGroup] = []
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        group = next((g for g in groups if same_answer(g.answer, answer, answer_format)), None)
        if group is None:
            group = AnswerGroup(answer)
            groups.append(group)
        group.members.append(index)
    for group in groups:
        finite = [confidences[i] for i in group.members if math.isfinite(confidences[i])]
        group.confidence = sum(finite) / len(finite) if finite else -math.inf
    return sorted(groups, key=lambda g: (-len(g.members), -g.confidence, g.members[0]))


class SelfConsistencyOptions(StrategyOptions):
    """Sample count and sampling for the vote."""

    n: int = Field(default=8, ge=1, description="Samples to draw (capped by Budget.samples and the tokens).")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature of every sample.")
    top_p: Annotated[float, AppliesWhen("temperature", (0.0,), negate=True)] = Field(
        default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass (not with temperature=0: greedy)."
    )
    sample_tokens: int | None = Field(
        default=None, ge=1, description="Most tokens per sample; default: an even share of the budget."
    )
    thinking: bool = Field(default=False, description="Prompt each sample to think in a <think> block first.")


async def start_sample(
    session: Session,
    prompt_ids: list[int],
    plan: SamplePlan,
    options: SelfConsistencyOptions,
    index: int,
    temperature: float,
) -> RunningRequest:
    """Start sample `index` on the shared prompt, with logprobs of its sampled tokens."""
    return await session.start(
        prompt_ids,
        max_tokens=plan.sample_tokens,
        phase="thinking" if options.thinking else "answer",
        kind="answer",
        temperature=temperature,
        top_p=options.top_p,
        logprobs=0,
        sample=index,
    )


async def start_samples(
    session: Session, prompt_ids: list[int], plan: SamplePlan, options: SelfConsistencyOptions
) -> list[RunningRequest]:
    """Start the plan's samples concurrently; stop starting when the budget refuses (at least one)."""
    requests: list[RunningRequest] = []
    for index in range(plan.count):
        try:
            requests.append(await start_sample(session, prompt_ids, plan, options, index, options.temperature))
        except BudgetExhausted:
            if not requests:
                raise
            break
    return requests


@register_strategy
class SelfConsistency(Strategy):
    """Majority vote over concurrent samples; ties go to the more confident answer."""

    name = "self_consistency"
    Options = SelfConsistencyOptions
    options: SelfConsistencyOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        prompt_ids = sample_prompt(session, prompt, self.options.thinking)
        plan = plan_samples(session, self.options.n, self.options.sample_tokens, prompt_tokens=len(prompt_ids))
        requests = await start_samples(session, prompt_ids, plan, self.options)
        generations = await results(requests)
        answers = [session.extract_answer(generation.text) for generation in generations]
        confidences = [mean_logprob(generation) for generation in generations]
        groups = vote(answers, confidences, session.answer_format)
        metrics: dict[str, MetricValue] = {
            "samples_used": len(generations),
            "sample_tokens": plan.sample_tokens,
            "distinct_answers": len(groups),
            "none_answers": answers.count(None),
            "cut_samples": sum(generation.cut_by_limit for generation in generations),
            "tie_broken": len(groups) > 1 and len(groups[0].members) == len(groups[1].members),
            "winning_votes": len(groups[0].members) if groups else 0,
            "vote_share": len(groups[0].members) / len(generations) if groups else 0.0,
        }
        members = groups[0].members if groups else list(range(len(generations)))
        chosen = max(members, key=lambda index: (confidences[index], -index))
        session.trace.update(generations[chosen].node, chosen=True)
        return Outcome(text=generations[chosen].text, answer=answers[chosen], metrics=metrics)
