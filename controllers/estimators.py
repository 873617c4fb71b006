"""Difficulty estimators: a number in [0, 1] per prompt, paid for from the solve's own budget.

- `pilot`: a few short sampled attempts; difficulty mixes the disagreement of their answers
  (compared in the solve's answer format, as voting compares them: `same_answer`) with their
  mean token entropy (over the top log-probabilities, normalised to [0, 1]) by
  `entropy_weight`. DiffAdapt finds entropy U-shaped in difficulty, so `reasoner calibrate`
  checks the shape on the calibration problems and drops the entropy term (weight 0) when
  entropy does not rise with difficulty there.
- `self_eval`: one short greedy attempt scored by the self-evaluation scorer (P("No") to
  "would you do better if you started over?"); difficulty = 1 - score.
- `probe`: the first few greedy tokens give cheap features (prompt length, their entropy and
  top probability); a trained `Probe` maps them to P(wrong).
- `hidden` (`controllers.hidden_state`): zero generated tokens; a trained probe over a pooled
  representation of the prompt from a vLLM pooling engine (DiffAdapt).
- `none`: no estimate (difficulty 0.5, the middle bin); what `auto` degrades to when the
  budget cannot pay an estimate and no zero-generation estimator is trained.

Every request is a trace segment of kind `estimate` under one `estimate` root and is charged
to the session's ledger under the phase `estimation` (the self-eval score token goes under
`evaluation`, the scorer's phase). `Estimate.tokens` is what the estimation generated. The
`Estimator` base and the `Estimate` it returns are in `controllers.estimate`.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from controllers.estimate import Estimator
from controllers.probe import Probe
from reasoner import Generation, Session, StrategyError
from reasoner.answers import same_answer
from strategies.scoring import SelfEvalScorer

ESTIMATOR_NAMES = ("pilot", "self_eval", "probe", "hidden", "none")
TOP_LOGPROBS = 5
DISAGREEMENT_WEIGHT = 0.6


@dataclass(frozen=True)
class EstimatorSpec:
    """An estimator by name with what calibration learned for it (a probe, the entropy weight)."""

    name: str
    probe: Probe | None = None
    entropy_weight: float = 1 - DISAGREEMENT_WEIGHT
    representation: str = "engine"


class PilotEstimator(Estimator):
    """`samples` sampled attempts of at most `max_tokens` each."""

    name = "pilot"

    def __init__(
        self,
        samples: int = 3,
        max_tokens: int = 24,
        temperature: float = 0.8,
        entropy_weight: float = 1 - DISAGREEMENT_WEIGHT,
    ):
        self.samples, self.max_tokens, self.temperature = samples, max_tokens, temperature
        self.entropy_weight = entropy_weight
        self.cost_cap = samples * max_tokens
        self.requests = samples

    async def _measure(self, session: Session, prompt: str, root: int) -> tuple[float, dict[str, float]]:
        text_prompt = _direct_prompt(session, prompt)
        attempts = await asyncio.gather(
            *(
                session.generate(
                    text_prompt,
                    max_tokens=self.max_tokens,
                    phase="estimation",
                    kind="estimate",
                    parent=root,
                    edge="spawn",
                    temperature=self.temperature,
                    logprobs=TOP_LOGPROBS,
                )
                for _ in range(self.samples)
            )
        )
        features = pilot_features(session, list(attempts))
        weight = self.entropy_weight
        return (1 - weight) * features["disagreement"] + weight * features["entropy"], features


class SelfEvalEstimator(Estimator):
    """One greedy attempt of at most `max_tokens`, then one self-evaluation token."""

    name = "self_eval"

    def __init__(self, max_tokens: int = 32):
        self.max_tokens = max_tokens
        self.cost_cap = max_tokens + 1
        self.requests = 2
        self.scorer = SelfEvalScorer()

    async def _measure(self, session: Session, prompt: str, root: int) -> tuple[float, dict[str, float]]:
        attempt = await _greedy_attempt(session, prompt, root, self.max_tokens)
        score = await self.scorer.score_generation(session, attempt)
        return 1.0 - score, {"self_eval_score": score}


class ProbeEstimator(Estimator):
    """`max_tokens` greedy tokens give the features; `probe` (when trained) maps them to P(wrong)."""

    name = "probe"

    def __init__(self, probe: Probe | None = None, max_tokens: int = 8):
        self.probe, self.max_tokens = probe, max_tokens
        self.cost_cap = max_tokens

    async def _measure(self, session: Session, prompt: str, root: int) -> tuple[float, dict[str, float]]:
        first = await _greedy_attempt(session, prompt, root, self.max_tokens, logprobs=TOP_LOGPROBS)
        entropies = [_entropy(step) for step in first.logprobs or []]
        top = [max(math.exp(value) for value in step.values()) for step in first.logprobs or [] if step]
        features = {
            "prompt_tokens": float(len(first.prompt_token_ids)),
            "prompt_digits": float(sum(character.isdigit() for character in prompt)),
            "first_entropy": float(sum(entropies) / len(entropies)) if entropies else 1.0,
            "first_top_prob": float(sum(top) / len(top)) if top else 0.0,
        }
        difficulty = self.probe.predict(features) if self.probe is not None else features["first_entropy"]
        return difficulty, features


class NoEstimator(Estimator):
    """No estimate: difficulty 0.5 (the middle bin), nothing generated, no request."""

    name = "none"
    requests = 0

    async def _measure(self, session: Session, prompt: str, root: int) -> tuple[float, dict[str, float]]:
        return 0.5, {}


def make_estimator(spec: EstimatorSpec) -> Estimator:
    """The estimator `spec` names; an unknown name is a `StrategyError` listing the known ones."""
    if spec.name == "pilot":
        return PilotEstimator(entropy_weight=spec.entropy_weight)
    if spec.name == "self_eval":
        return SelfEvalEstimator()
    if spec.name == "probe":
        return ProbeEstimator(spec.probe)
    if spec.name == "hidden":
        from controllers.hidden_state import HiddenStateEstimator

        return HiddenStateEstimator(spec.probe, spec.representation)
    if spec.name == "none":
        return NoEstimator()
    raise StrategyError(f"unknown estimator {spec.name!r}; known: {', '.join(ESTIMATOR_NAMES)}")


def pilot_features(session: Session, attempts: list[Generation]) -> dict[str, float]:
    """Disagreement of the attempts' answers (0: all agree, 1: all differ) and their mean entropy."""
    answers = [session.extract_answer(attempt.text) for attempt in attempts]
    groups: list[list[str]] = []
    for answer in answers:
        if answer is None:
            continue
        group = next((group for group in groups if same_answer(group[0], answer, session.answer_format)), None)
        if group is None:
            groups.append([answer])
        else:
            group.append(answer)
    agreeing = max((len(group) for group in groups), default=0)
    spread = len(attempts) - 1
    disagreement = (len(attempts) - max(agreeing, 1)) / spread if spread else 0.0
    entropies = [_entropy(step) for attempt in attempts for step in attempt.logprobs or []]
    return {
        "disagreement": float(disagreement),
        "entropy": float(sum(entropies) / len(entropies)) if entropies else 1.0,
        "answered": float(sum(answer is not None for answer in answers) / len(attempts)),
    }


def _direct_prompt(session: Session, prompt: str) -> str:
    return session.profile.build_prompt(session.tokenizer, prompt, thinking=False, answer_format=session.answer_format)


async def _greedy_attempt(
    session: Session, prompt: str, root: int, max_tokens: int, logprobs: int | None = None
) -> Generation:
    """A short greedy direct answer, charged to the `estimation` phase under the estimate node."""
    return await session.generate(
        _direct_prompt(session, prompt),
        max_tokens=max_tokens,
        phase="estimation",
        kind="estimate",
        parent=root,
        edge="spawn",
        logprobs=logprobs,
    )


def _entropy(top: dict[int, float]) -> float:
    """Entropy of the renormalised top-k distribution, divided by log(k): in [0, 1]."""
    if len(top) < 2:
        return 0.0
    probabilities = [math.exp(value) for value in top.values()]
    total = sum(probabilities)
    entropy = -sum(p / total * math.log(p / total) for p in probabilities if p > 0)
    return entropy / math.log(len(top))
