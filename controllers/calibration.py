"""Calibrating `auto` on the scale it bins on: the configured estimator's own scores.

`acalibrate` runs the estimator on every problem of the eval records (each in its own small
session, as `auto` would), then learns the policy's thresholds and per-bin choices on those
scores (`controllers.policy_learning.learn_policy`):

- `pilot`: DiffAdapt reports token entropy U-shaped in difficulty, so before the entropy term
  is used its shape is checked here: problems are cut into entropy tertiles and the oracle
  difficulty (1 - accuracy over the records) of each is compared. Only when it rises from the
  lowest tertile to the highest without dipping in the middle is the default weight kept;
  otherwise the pilot scores on answer disagreement alone (`entropy_weight=0`).
- `probe` and `hidden`: a probe is trained on the estimator's features (label: the problem is
  answered wrongly more often than not) and stored in the policy. The scores the thresholds
  are cut on are held out (stratified k-fold, `FOLDS`): each problem's P(wrong) comes from a
  probe trained on the other folds, as `auto` will meet new prompts; the probe's own
  predictions on its training problems would be more confident than at solve time and bin
  too few prompts `normal`. The accuracy reported is on those held-out scores too.
- `self_eval`: its score as it is.

Every problem is estimated in its own suite's answer format (`answer_formats`: a code
problem's prompt asks for code and the pilot's attempts are compared as code), as `auto`
runs on a solve in that format.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controllers.estimate import Estimate
from controllers.estimators import DISAGREEMENT_WEIGHT, EstimatorSpec, make_estimator
from controllers.policy import Policy
from controllers.policy_learning import check_records, learn_policy
from controllers.probe import train_probe
from reasoner import Budget, Reasoner, Session, SuiteError

TRAINED_ESTIMATORS = ("probe", "hidden")
CALIBRATION_ESTIMATORS = ("pilot", "self_eval", "probe", "hidden")
PROBE_L2 = 0.01
HIDDEN_PROBE_L2 = 1.0
FOLDS = 5


@dataclass
class EntropyShape:
    """Oracle difficulty per entropy tertile (low, middle, high) and what it means for the pilot."""

    tertiles: list[tuple[float, float]]
    shape: str
    entropy_weight: float


@dataclass
class Calibration:
    """The learned policy and what was found on the way (`probe_accuracy`: on held-out scores)."""

    policy: Policy
    problems: int
    entropy: EntropyShape | None = None
    probe_accuracy: float | None = None
    estimator_tokens: int = 0
    difficulties: dict[str, float] = field(default_factory=dict)


def problem_key(record: dict[str, Any]) -> str:
    return f"{record.get('suite', '')}|{record['problem_id']}"


def oracle_difficulties(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """1 - accuracy per problem over every record of it."""
    outcomes: dict[str, list[float]] = defaultdict(list)
    for record in records:
        outcomes[problem_key(record)].append(1.0 if record["correct"] else 0.0)
    return {key: 1.0 - float(np.mean(values)) for key, values in outcomes.items()}


def entropy_shape(entropies: Sequence[float], oracle: Sequence[float]) -> EntropyShape:
    """Cut problems into entropy tertiles; keep the entropy term only when difficulty rises through them."""
    order = np.argsort(np.asarray(entropies, dtype=float), kind="stable")
    tertiles = []
    for part in np.array_split(order, 3):
        if len(part):
            tertiles.append((float(np.mean([entropies[i] for i in part])), float(np.mean([oracle[i] for i in part]))))
    levels = [difficulty for _, difficulty in tertiles]
    if len(levels) < 3:
        return EntropyShape(tertiles, "too few problems", 0.0)
    low, middle, high = levels
    if low <= middle <= high and high > low:
        return EntropyShape(tertiles, "rising", 1 - DISAGREEMENT_WEIGHT)
    if middle < low and middle < high:
        return EntropyShape(tertiles, "U-shaped", 0.0)
    return EntropyShape(tertiles, "not rising", 0.0)


def held_out_scores(rows: Sequence[dict[str, float]], wrong: Sequence[bool], l2: float) -> list[float]:
    """Each row's P(wrong) from a probe trained without it: stratified k-fold over `FOLDS` folds.

    Rows are dealt to the folds in turn, wrong ones first, so every fold holds both labels
    when the data does. Needs 3 rows (a probe trains on at least 2).
    """
    if len(rows) < 3:
        raise SuiteError(
            f"a trained estimator needs at least 3 calibration problems for held-out scores, got {len(rows)}"
        )
    folds = min(FOLDS, len(rows))
    order = sorted(range(len(rows)), key=lambda index: (not wrong[index], index))
    fold_of = {index: position % folds for position, index in enumerate(order)}
    scores = [0.0] * len(rows)
    for fold in range(folds):
        training = [index for index in range(len(rows)) if fold_of[index] != fold]
        probe = train_probe([rows[index] for index in training], [wrong[index] for index in training], l2=l2)
        for index in range(len(rows)):
            if fold_of[index] == fold:
                scores[index] = probe.predict(rows[index])
    return scores


async def estimate_all(
    reasoner: Reasoner, prompts: Sequence[str], spec: EstimatorSpec, answer_formats: str | Sequence[str] = "math"
) -> list[Estimate]:
    """Run the estimator on every prompt, each in its own session capped at the estimator's cost.

    `answer_formats` is one format for every prompt or one per prompt.
    """
    formats = [answer_formats] * len(prompts) if isinstance(answer_formats, str) else list(answer_formats)
    if len(formats) != len(prompts):
        raise SuiteError(f"got {len(formats)} answer formats for {len(prompts)} prompts; pass one per prompt")
    estimator = make_estimator(spec)
    await reasoner.astart()
    tokenizer = reasoner.backend.tokenizer()
    budget = Budget(tokens=max(estimator.cost_cap, 1))

    async def one(prompt: str, answer_format: str) -> Estimate:
        session = Session(reasoner.backend, tokenizer, reasoner.profile, budget, answer_format)
        return await estimator.estimate(session, prompt)

    async def every() -> list[Estimate]:
        return list(await asyncio.gather(*(one(prompt, form) for prompt, form in zip(prompts, formats, strict=True))))

    return await reasoner.arun_on_engine_loop(every())


async def acalibrate(
    reasoner: Reasoner,
    records: Sequence[dict[str, Any]],
    prompts: dict[str, str],
    estimator: str = "pilot",
    *,
    representation: str = "engine",
    model: str | None = None,
    force: bool = False,
    min_accuracy: float | None = None,
    answer_formats: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> Calibration:
    """Estimate every problem of `records` (prompts keyed `suite|problem_id`) and learn the policy on it.

    `answer_formats` maps a problem's key to its suite's answer format; a problem not in it is math.
    `names` (record model -> model name) learns a routing policy (`policy_learning.learn_policy`);
    the estimator runs on `reasoner`'s default model, as `route` estimates at solve time.
    """
    if estimator not in CALIBRATION_ESTIMATORS:
        raise SuiteError(f"cannot calibrate on estimator {estimator!r}; use one of {', '.join(CALIBRATION_ESTIMATORS)}")
    check_records(records, model, force=force, names=names)
    oracle = oracle_difficulties(records)
    keys = sorted(oracle)
    missing = [key for key in keys if key not in prompts]
    if missing:
        raise SuiteError(f"no prompt for problem {missing[0]!r}; give the suite the records came from")
    spec = EstimatorSpec(estimator, representation=representation)
    formats = [(answer_formats or {}).get(key, "math") for key in keys]
    estimates = await estimate_all(reasoner, [prompts[key] for key in keys], spec, formats)
    result = Calibration(policy=Policy((0.0, 1.0), {}, {}), problems=len(keys))
    result.estimator_tokens = sum(estimate.tokens for estimate in estimates)
    scores = [estimate.difficulty for estimate in estimates]
    if estimator == "pilot":
        result.entropy = entropy_shape([e.features["entropy"] for e in estimates], [oracle[k] for k in keys])
        weight = result.entropy.entropy_weight
        spec = EstimatorSpec(estimator, entropy_weight=weight)
        scores = [(1 - weight) * e.features["disagreement"] + weight * e.features["entropy"] for e in estimates]
    elif estimator in TRAINED_ESTIMATORS:
        rows = [estimate.features for estimate in estimates]
        wrong = [oracle[key] > 0.5 for key in keys]
        l2 = HIDDEN_PROBE_L2 if estimator == "hidden" else PROBE_L2
        scores = held_out_scores(rows, wrong, l2)
        hits = [(score >= 0.5) == label for score, label in zip(scores, wrong, strict=True)]
        result.probe_accuracy = float(np.mean(hits))
        spec = EstimatorSpec(estimator, train_probe(rows, wrong, l2=l2), representation=representation)
    result.difficulties = dict(zip(keys, scores, strict=True))
    result.policy = learn_policy(
        records,
        model=model,
        force=force,
        min_accuracy=min_accuracy,
        difficulties=result.difficulties,
        estimator=spec,
        names=names,
    )
    return result
