"""`self_eval`: sampling steered by the model's own one-token self-evaluation.

Adaptive Inference-Time Compute (Manvi et al., 2024): the model predicts, even mid-generation,
whether starting over would do better; P("No") is the score (`strategies.scoring`). Policies:
`adaptive` samples one at a time, as the paper does (the first sample alone, another only while
no score has passed `threshold`), annealed as in the paper (sample k at temperature *
(1 - 0.5**k), so the first is greedy); `batch_size` > 1 is an option that starts samples in
concurrent batches, for latency at the cost of tokens (a batch runs to the end even when its first
sample already passes); `prune` starts n samples, scores the partials at each checkpoint and aborts the lowest
`prune_fraction` in the engine; `best_of` runs n samples to the end and keeps the best scored.

Choosing the answer: samples with an extractable answer go first. When the best-scored answer
beats the best score of every other answer by at least `min_margin`, it wins; otherwise the
scores do not separate the samples (a scorer without signal) and the majority answer wins
(ties to the more confident samples), as self-consistency would choose.

Metrics:
- `policy`: the policy that ran.
- `samples_used`: samples started (n capped by `Budget.samples` and by what the tokens pay).
- `sample_tokens`: the most tokens each sample could generate.
- `score_requests`: self-evaluation requests (one token each, ledger phase `evaluation`).
- `score_fallbacks`: scores that fell back to 0.5 because no Yes/No token was in the top 20.
- `unscored`: samples the budget left no token to score (ranked last).
- `best_score`: the chosen sample's final score.
- `selection`: `score` (the scores separated the answers), `majority` (they did not: the
  majority answer) or `agreement` (every answered sample gave the same answer).
- `no_signal`: True when the scores did not separate the answers and the majority decided.
- `threshold_reached` (adaptive): True when a sample scored at least `threshold`.
- `pruned` (prune): samples aborted in the engine; `checkpoints_reached`: checkpoints where
  at least one sample was still running; `tokens_saved`: tokens the aborted samples were
  granted but never generated (what running all n to completion could have spent more).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Annotated, Literal

from pydantic import Field, field_validator

from reasoner import (
    BudgetExhausted,
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
from strategies.scoring import (
    SELF_EVAL_QUESTION,
    Scorer,
    SelfEvalScorer,
    evaluation_counts,
    get_scorer,
    score_generation,
    scorer_names,
)
from strategies.self_consistency import (
    SamplePlan,
    SelfConsistencyOptions,
    mean_logprob,
    plan_samples,
    results,
    sample_prompt,
    start_sample,
    start_samples,
    vote,
)

Scored = tuple[Generation, float | None]
_ADAPTIVE = AppliesWhen("policy", ("adaptive",))
_PRUNE = AppliesWhen("policy", ("prune",))


class SelfEvalOptions(SelfConsistencyOptions):
    """Policy and the self-evaluation's knobs, on top of the sampling options of `self_consistency`."""

    policy: Literal["adaptive", "prune", "best_of"] = Field(
        default="adaptive", description="adaptive sampling, early pruning, or best-of-n by self-score."
    )
    threshold: Annotated[float, _ADAPTIVE] = Field(
        default=0.75, ge=0.0, le=1.0, description="adaptive: stop once a score reaches it."
    )
    anneal: Annotated[bool, _ADAPTIVE] = Field(
        default=True, description="adaptive: sample k uses temperature * (1 - 0.5**k), so the first is greedy."
    )
    batch_size: Annotated[int, _ADAPTIVE] = Field(
        default=1,
        ge=1,
        description="adaptive: samples started together before scores are read. 1 (the paper): the first sample "
        "alone, more only when its score asks; larger batches trade tokens for latency.",
    )
    min_margin: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="How far the best answer's score must beat every other answer's; else the majority wins.",
    )
    checkpoints: Annotated[tuple[int, ...], _PRUNE] = Field(
        default=(64, 128), description="prune: generated-token counts at which partial samples are scored."
    )
    prune_fraction: Annotated[float, _PRUNE] = Field(
        default=0.5, ge=0.0, lt=1.0, description="prune: share of the running samples aborted at each checkpoint."
    )
    scorer: str = Field(default="self_eval", description="Registered scorer name (strategies.scoring).")
    question_text: str = Field(
        default=SELF_EVAL_QUESTION, min_length=1, description="The self-evaluation question (self_eval scorer)."
    )

    @field_validator("checkpoints")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or value[0] < 1 or any(later <= earlier for earlier, later in itertools.pairwise(value)):
            raise ValueError("checkpoints must be positive token counts in increasing order, e.g. (64, 128)")
        return value

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, value: str) -> str:
        if value not in scorer_names():
            raise ValueError(f"unknown scorer; known: {', '.join(scorer_names())}")
        return value


@register_strategy
class SelfEval(Strategy):
    """Adaptive sampling, early pruning or best-of-n, all ranked by self-evaluation."""

    name = "self_eval"
    Options = SelfEvalOptions
    options: SelfEvalOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        options = self.options
        scorer = SelfEvalScorer(options.question_text) if options.scorer == "self_eval" else get_scorer(options.scorer)
        scores_per_sample = len(options.checkpoints) + 1 if options.policy == "prune" else 1
        plan = plan_samples(session, options.n, options.sample_tokens, overhead=scores_per_sample)
        if options.policy == "prune" and options.checkpoints[-1] >= plan.sample_tokens:
            raise StrategyError(
                f"checkpoint {options.checkpoints[-1]} is not below each sample's {plan.sample_tokens}-token share "
                f"({plan.count} samples in {session.remaining} tokens); lower checkpoints or n, or raise the budget"
            )
        run = _Run(session, prompt, options, scorer, plan)
        if options.policy == "adaptive":
            scored = await run.adaptive()
        elif options.policy == "prune":
            scored = await run.prune()
        else:
            scored = await run.best_of()
        best, best_score, selection = choose(session, scored, options.min_margin)
        session.trace.update(best.node, chosen=True)
        requests, fallbacks = evaluation_counts(session)
        run.metrics |= {
            "policy": options.policy,
            "samples_used": len(scored) + run.pruned,
            "sample_tokens": plan.sample_tokens,
            "score_requests": requests,
            "score_fallbacks": fallbacks,
            "unscored": sum(score is None for _, score in scored),
            "best_score": best_score,
            "selection": selection,
            "no_signal": selection == "majority",
        }
        return Outcome(text=best.text, answer=session.extract_answer(best.text), metrics=run.metrics)


def _rank(score: float | None) -> float:
    return -math.inf if score is None else score


def choose(session: Session, scored: list[Scored], min_margin: float) -> tuple[Generation, float | None, str]:
    """The chosen sample, its score and how it was chosen (see the module docstring)."""
    answers = [session.extract_answer(generation.text) for generation, _ in scored]
    confidences = [mean_logprob(generation) for generation, _ in scored]
    groups = vote(answers, confidences, session.answer_format)
    if not groups:
        best = max(range(len(scored)), key=lambda index: (_rank(scored[index][1]), confidences[index]))
        return scored[best][0], scored[best][1], "score"

    def best_member(members: list[int]) -> int:
        return max(members, key=lambda index: (_rank(scored[index][1]), confidences[index], -index))

    if len(groups) == 1:
        chosen, selection = best_member(groups[0].members), "agreement"
    else:
        group_scores = sorted(
            (
                (max(_rank(scored[index][1]) for index in group.members), position)
                for position, group in enumerate(groups)
            ),
            reverse=True,
        )
        (top_score, top_group), (runner_up, _) = group_scores[0], group_scores[1]
        if math.isfinite(top_score) and top_score - runner_up >= min_margin:
            chosen, selection = best_member(groups[top_group].members), "score"
        else:
            chosen, selection = best_member(groups[0].members), "majority"
    return scored[chosen][0], scored[chosen][1], selection


class _Run:
    """One solve of `self_eval`: the samples, their scores and the running counts."""

    def __init__(self, session: Session, prompt: str, options: SelfEvalOptions, scorer: Scorer, plan: SamplePlan):
        self.session = session
        self.prompt = prompt
        self.options = options
        self.scorer = scorer
        self.plan = plan
        self.prompt_ids = sample_prompt(session, prompt, options.thinking)
        self.pruned = 0
        self.metrics: dict[str, MetricValue] = {}

    async def start(self, index: int, temperature: float) -> RunningRequest:
        return await start_sample(self.session, self.prompt_ids, self.plan, self.options, index, temperature)

    async def start_all(self) -> list[RunningRequest]:
        return await start_samples(self.session, self.prompt_ids, self.plan, self.options)

    async def score(self, generation: Generation, upto: int | None = None) -> float | None:
        """The sample's score, or None when the budget (deadline) refuses the scoring request."""
        try:
            return await score_generation(self.scorer, self.session, self.prompt, generation, upto)
        except BudgetExhausted:
            return None

    async def adaptive(self) -> list[Scored]:
        """Batches of `batch_size` concurrent samples until a score reaches the threshold or n are used."""
        scored: list[Scored] = []
        reached = exhausted = False
        index = 0
        while index < self.plan.count and not reached and not exhausted:
            batch: list[RunningRequest] = []
            for _ in range(min(self.options.batch_size, self.plan.count - index)):
                try:
                    batch.append(await self.start(index, self.temperature(index)))
                except BudgetExhausted:
                    if not scored and not batch:
                        raise
                    exhausted = True
                    break
                index += 1
            finished = await asyncio.gather(*(self.finish_and_score(request) for request in batch))
            scored.extend(finished)
            reached = any(score is not None and score >= self.options.threshold for _, score in finished)
        self.metrics["threshold_reached"] = reached
        return scored

    def temperature(self, index: int) -> float:
        """Sample `index`'s temperature: annealed from greedy when `anneal` is on."""
        if self.options.anneal:
            return self.options.temperature * (1 - 0.5**index)
        return self.options.temperature

    async def best_of(self) -> list[Scored]:
        requests = await self.start_all()
        return list(await asyncio.gather(*(self.finish_and_score(request) for request in requests)))

    async def finish_and_score(self, request: RunningRequest) -> Scored:
        generation = (await results([request]))[0]
        return generation, await self.score(generation)

    async def prune(self) -> list[Scored]:
        requests = await self.start_all()
        live = list(requests)
        reached = 0
        for checkpoint in self.options.checkpoints:
            await asyncio.gather(*(request.wait_for_tokens(checkpoint) for request in live))
            running = [request for request in live if not request.done]
            if not running:
                break
            reached += 1
            scores = await asyncio.gather(*(self.score(request.generation, checkpoint) for request in running))
            ranked = sorted(range(len(running)), key=lambda index: (_rank(scores[index]), -index))
            doomed = [running[index] for index in ranked[: math.floor(len(running) * self.options.prune_fraction)]]
            for request in doomed:
                generation = await request.abort()
                if generation.finish_reason == "abort":
                    self.pruned += 1
                    self.session.trace.update(generation.node, pruned_at=checkpoint)
                    live.remove(request)
        survivors = await asyncio.gather(*(self.finish_and_score(request) for request in live))
        self.metrics |= {
            "pruned": self.pruned,
            "checkpoints_reached": reached,
            "tokens_saved": self.session.ledger.aborted_tokens_saved,
        }
        return list(survivors)
