"""`particle_filter`: particle-based Monte Carlo inference over reasoning steps (Puri et al., 2025).

"A Probabilistic Inference Approach to Inference-Time Scaling of LLMs using Particle-Based
Monte Carlo Methods": N particles each advance one reasoning step per round (a step stops at
the profile's delimiter or after `step_tokens`); a scorer (self-evaluation, a PRM or a
function; `strategies.scoring`) scores every particle's partial path; the weights are
`softmax(logit(score) / temperature)` over all N particles, finished ones keeping their last
score (the authors' `resample_inactive`: a finished particle can be drawn again, and stays
finished); then N particles are drawn with replacement in proportion to the weights
(multinomial resampling). Rounds go on until every particle has finished, after `max_steps`
rounds, or when the budget refuses a request. The answer is the weighted vote of the finished
particles (equivalent answers together; `answer_by="best"`: the heaviest particle).

With a process reward model (`strategies.scoring_prm.PRMScorer`), a path's score is its last
step's reward by default (`aggregate="last"`): the paper's "model aggregation", which it
reports works best; `min`, `mean` and `prod` are options. A PRM scorer built with its own
`aggregate` keeps it; `aggregate` with a scorer that is not a PRM is refused, as is `top_p`
with greedy steps (`sampling_temperature=0`).

Particles that share a history share their KV: a particle's next step is a request whose
prompt is the prompt ids plus its path's generated ids, so copies of one particle, and
particles with a common ancestor, are served from the engine's prefix cache. Differences
from the paper: the weight transform (logit, then softmax) is the authors' code, the paper
writes softmax over rewards; scores are clipped to [1e-6, 1 - 1e-6] before the logit; a
failing scorer gives the path score 0; resampling is seeded (`seed`) so a run is repeatable.

Metrics:
- `particles`; `rounds`: steps taken; `resamples`; `nodes`: step requests generated.
- `ess_per_step`: the effective sample size `1 / sum(w^2)` after each round, as text;
  `ess_min`: the least of them (N means even weights, 1 means one particle holds all).
- `distinct_prefixes`: distinct paths among the particles after the last round.
- `finished_particles`: particles (copies counted) that finished; `answer_weight`: the
  winning answer's share of the weight of the finished particles.
- `scorer_errors`: scores that raised or were not a number in [0, 1].
- `kv_peak_distinct_tokens` / `kv_peak_unshared_tokens`: the most, over rounds, of the
  running particles' KV with shared prefixes counted once / once per particle, prompt included.
- `prefix_cache_hit_rate`: cached prompt tokens / prompt tokens over the run's requests.
- `stopped_by`: `finished`, `steps` (max_steps) or `budget`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import Field, field_serializer, field_validator, model_validator

from reasoner import BudgetExhausted, Outcome, RunningRequest, Session, Strategy, StrategyOptions, register_strategy
from reasoner.solution import MetricValue
from reasoner.strategy import AppliesWhen
from strategies.scoring import Scorer, get_scorer
from strategies.scoring_prm import Aggregate, PRMScorer
from strategies.self_consistency import vote
from strategies.step_paths import ends_path, score_path
from strategies.tree_selection import StepTree, softmax

SCORE_CLIP = 1e-6


class ParticleFilterOptions(StrategyOptions):
    """Particle count, the step shape, the resampling temperature and the scorer."""

    # Capped so a request cannot make the filter build a list of a billion particles on the event loop.
    particles: int = Field(default=8, ge=1, le=4096, description="Particles (N) kept every round (at most 4096).")
    max_steps: int = Field(default=8, ge=1, description="Most steps on a particle's path (rounds).")
    step_tokens: int = Field(default=64, ge=1, description="Most tokens in one step.")
    temperature: float = Field(default=1.0, gt=0.0, description="Softmax temperature of the resampling weights.")
    sampling_temperature: float = Field(default=0.8, ge=0.0, le=2.0, description="Sampling temperature of steps.")
    top_p: Annotated[float, AppliesWhen("sampling_temperature", (0.0,), negate=True)] = Field(
        default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass of steps."
    )
    thinking: bool = Field(default=False, description="Reason inside a <think> block instead of the direct reply.")
    answer_by: Literal["vote", "best"] = Field(
        default="vote", description="vote: weighted vote of finished particles; best: the heaviest one."
    )
    seed: int = Field(default=0, description="Seed of the resampling draws.")
    scorer: Any = Field(
        default="self_eval", description="A registered scorer name (strategies.scoring) or a Scorer object."
    )
    aggregate: Aggregate = Field(
        default="last",
        description="PRM scorers only: how a path's step rewards become its score: last (the paper's best), "
        "min, mean or prod. A PRMScorer built with its own aggregate keeps it.",
    )

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, value: Any) -> Any:
        get_scorer(value)
        return value

    @model_validator(mode="after")
    def _aggregate_applies(self) -> Self:
        if "aggregate" not in self.model_fields_set:
            return self
        scorer = get_scorer(self.scorer)
        if not isinstance(scorer, PRMScorer):
            raise ValueError(f"option 'aggregate' does not apply to the scorer {scorer.name!r} (not a PRM); drop it")
        if scorer.aggregate not in (None, self.aggregate):
            raise ValueError(
                f"option 'aggregate' is {self.aggregate!r} but the PRM scorer {scorer.name!r} aggregates by "
                f"{scorer.aggregate!r}; drop one"
            )
        return self

    @field_serializer("scorer")
    def _scorer_name(self, value: Any) -> str:
        return value if isinstance(value, str) else str(getattr(value, "name", type(value).__name__))


@dataclass(frozen=True)
class Particle:
    """A particle: the last step node of its path (None before its first step), its score, whether it ended."""

    leaf: int | None = None
    score: float = 0.5
    finished: bool = False


def resampling_weights(scores: list[float], temperature: float) -> np.ndarray:
    """softmax(logit(score) / temperature), scores clipped into (0, 1) first."""
    clipped = np.clip(np.asarray(scores, dtype=float), SCORE_CLIP, 1 - SCORE_CLIP)
    return softmax(list(np.log(clipped) - np.log1p(-clipped)), temperature)


def effective_sample_size(weights: np.ndarray) -> float:
    """1 / sum(w^2) of normalised weights: N for even weights, 1 when one particle holds all."""
    return float(1.0 / np.sum(np.square(weights)))


def resample(particles: list[Particle], weights: np.ndarray, rng: np.random.Generator) -> list[Particle]:
    """Draw len(particles) particles with replacement, each with probability its weight (multinomial)."""
    drawn = rng.choice(len(particles), size=len(particles), replace=True, p=weights)
    return [particles[index] for index in drawn]


@register_strategy
class ParticleFilter(Strategy):
    """Step-wise particles weighted by a scorer and resampled every round."""

    name = "particle_filter"
    Options = ParticleFilterOptions
    options: ParticleFilterOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        return await _Filter(session, prompt, self.options).run()


class _Filter:
    """One run: the particles, the step tree they share, and the figures."""

    def __init__(self, session: Session, question: str, options: ParticleFilterOptions):
        self.session = session
        self.question = question
        self.options = options
        self.scorer: Scorer = _aggregated(get_scorer(options.scorer), options.aggregate)
        self.rng = np.random.default_rng(options.seed)
        text_prompt = session.profile.build_prompt(
            session.tokenizer, question, thinking=options.thinking, answer_format=session.answer_format
        )
        self.root_ids = session.encode(text_prompt)
        self.root = session.trace.add("prompt", prompt_tokens=len(self.root_ids))
        session.trace.update(self.root, text=question)
        self.tree = StepTree()
        self.step_ids: dict[int, list[int]] = {}
        self.step_text: dict[int, str] = {}
        self.particles = [Particle() for _ in range(options.particles)]
        self.rounds = self.resamples = self.scorer_errors = 0
        self.ess: list[float] = []
        self.kv_peak_distinct = self.kv_peak_unshared = 0
        self.stopped_by = "finished"

    async def run(self) -> Outcome:
        while True:
            await self._advance()
            self.rounds += 1
            weights = resampling_weights([particle.score for particle in self.particles], self.options.temperature)
            self.ess.append(effective_sample_size(weights))
            if self.stopped_by == "budget" or all(particle.finished for particle in self.particles):
                break
            if self.rounds >= self.options.max_steps:
                self.stopped_by = "steps"
                break
            self.particles = resample(self.particles, weights, self.rng)
            self.resamples += 1
            self._record_kv()
        return self._outcome()

    async def _advance(self) -> None:
        """Every running particle takes one step, all at once; then each new path is scored."""
        running: list[tuple[int, RunningRequest]] = []
        try:
            for index, particle in enumerate(self.particles):
                if not particle.finished:
                    running.append((index, await self._start_step(particle)))
        except BudgetExhausted:
            self.stopped_by = "budget"
        generations = await asyncio.gather(*(request.result() for _, request in running))
        for (index, _), generation in zip(running, generations, strict=True):
            node, parent = generation.node, self.particles[index].leaf
            self.tree.add(node, parent, len(generation.token_ids))
            self.step_ids[node], self.step_text[node] = list(generation.token_ids), generation.text
            self.particles[index] = Particle(node, self.particles[index].score, ends_path(self.session, generation))
            self.session.trace.update(node, finished=self.particles[index].finished)
        scores = await asyncio.gather(*(self._score(self.particles[index]) for index, _ in running))
        for (index, _), score in zip(running, scores, strict=True):
            self.particles[index] = dataclasses.replace(self.particles[index], score=score)

    async def _start_step(self, particle: Particle) -> RunningRequest:
        options = self.options
        return await self.session.start(
            self.root_ids + self._path_ids(particle.leaf),
            max_tokens=options.step_tokens,
            phase="thinking" if options.thinking else "answer",
            kind="step",
            parent=self.root if particle.leaf is None else particle.leaf,
            edge="expand",
            temperature=options.sampling_temperature,
            top_p=options.top_p,
            stop=(self.session.profile.step_delimiter,),
            include_stop=True,
            depth=self.rounds + 1,
        )

    async def _score(self, particle: Particle) -> float:
        """The particle's new score; a failing scorer gives 0, a refused budget keeps the old score."""
        assert particle.leaf is not None
        try:
            value = await score_path(
                self.scorer,
                self.session,
                self.question,
                self.root_ids,
                self._path_ids(particle.leaf),
                self._path_text(particle.leaf),
                particle.leaf,
            )
        except BudgetExhausted:
            self.stopped_by = "budget"
            return particle.score
        if value is None:
            self.scorer_errors += 1
            value = 0.0
        self.session.trace.update(particle.leaf, score=value)
        return value

    def _record_kv(self) -> None:
        leaves = [particle.leaf for particle in self.particles if not particle.finished and particle.leaf is not None]
        for leaf in set(leaves):
            self.session.trace.update(leaf, copies=leaves.count(leaf))
        prompt = len(self.root_ids)
        self.kv_peak_distinct = max(self.kv_peak_distinct, prompt + self.tree.distinct_tokens(leaves))
        self.kv_peak_unshared = max(self.kv_peak_unshared, prompt * len(leaves) + self.tree.unshared_tokens(leaves))

    def _path_ids(self, leaf: int | None) -> list[int]:
        if leaf is None:
            return []
        return [token for node in self.tree.path(leaf) for token in self.step_ids[node]]

    def _path_text(self, leaf: int | None) -> str:
        return "" if leaf is None else "".join(self.step_text[node] for node in self.tree.path(leaf))

    def _outcome(self) -> Outcome:
        weights = resampling_weights([particle.score for particle in self.particles], self.options.temperature)
        finished = [index for index, particle in enumerate(self.particles) if particle.finished]
        answers = [self.session.extract_answer(self._path_text(self.particles[index].leaf)) for index in finished]
        chosen, answer_weight = self._choose(finished, answers, weights)
        leaf = self.particles[chosen].leaf
        text = self._path_text(leaf)
        if leaf is not None:
            self.session.trace.update(leaf, chosen=True)
        ledger = self.session.ledger
        prompt = len(self.root_ids)
        metrics: dict[str, MetricValue] = {
            "particles": len(self.particles),
            "rounds": self.rounds,
            "resamples": self.resamples,
            "nodes": len(self.step_ids),
            "ess_per_step": " ".join(f"{value:.2f}" for value in self.ess),
            "ess_min": min(self.ess) if self.ess else float(len(self.particles)),
            "distinct_prefixes": len({particle.leaf for particle in self.particles}),
            "finished_particles": len(finished),
            "answer_weight": answer_weight,
            "scorer_errors": self.scorer_errors,
            "kv_peak_distinct_tokens": self.kv_peak_distinct or prompt,
            "kv_peak_unshared_tokens": self.kv_peak_unshared or prompt,
            "prefix_cache_hit_rate": ledger.cached_prompt_tokens / ledger.prompt_tokens
            if ledger.prompt_tokens
            else 0.0,
            "stopped_by": self.stopped_by,
        }
        return Outcome(text=text, answer=self.session.extract_answer(text) if text else None, metrics=metrics)

    def _choose(self, finished: list[int], answers: list[str | None], weights: np.ndarray) -> tuple[int, float]:
        """The particle that answers, and its answer's share of the finished particles' weight."""
        heaviest = max(
            range(len(self.particles)),
            key=lambda index: (self.particles[index].leaf is not None, weights[index], -index),
        )
        answered = [(index, answer) for index, answer in zip(finished, answers, strict=True) if answer is not None]
        if not answered:
            return heaviest, 0.0
        total = sum(weights[index] for index, _ in answered)
        if self.options.answer_by == "best":
            best = max(answered, key=lambda item: (weights[item[0]], -item[0]))[0]
            return best, _share(weights[best], total)
        groups = vote([answer for _, answer in answered], [0.0] * len(answered), self.session.answer_format)
        members = max(groups, key=lambda group: sum(weights[answered[i][0]] for i in group.members)).members
        group_weight = sum(weights[answered[i][0]] for i in members)
        best = max((answered[i][0] for i in members), key=lambda index: (weights[index], -index))
        return best, _share(group_weight, total)


def _aggregated(scorer: Scorer, aggregate: Aggregate) -> Scorer:
    """A PRM scorer without an aggregate of its own reads the filter's; any other scorer is unchanged."""
    if isinstance(scorer, PRMScorer) and scorer.aggregate is None:
        return scorer.aggregated_by(aggregate)
    return scorer


def _share(part: float, total: float) -> float:
    return float(part / total) if total > 0 and math.isfinite(total) else 0.0
