"""Learning a policy from eval records: thresholds, a choice per bin and the curves (`learn_policy`).

As in compute-optimal scaling (Snell et al., 2024): every problem gets a difficulty on the
scale `auto` will bin on, the configured estimator's score (`reasoner calibrate` runs the
estimator on every problem and passes `difficulties`; the oracle difficulty 1 - accuracy is
used only when `oracle=True`, e.g. for analysis); the thresholds are the tertiles of those
difficulties; per bin the choice is the most accurate configuration measured, within noise
(the cheapest configuration within one standard error of the best accuracy: bins hold few
problems), or with `min_accuracy` the cheapest that reaches it.

Cheapest is in cost when every record carries one (`usage.cost`, eFLOPs from `reasoner.cost`),
else in generated tokens; a cost-measured policy's curves climb in cost too (`_curve`). A
routing policy (`names`: each record's `model` field -> the model name a `Reasoner` knows it
by) measures every configuration on every model apart, so a bin's choice is a model as well as a
strategy and budget; it needs cost on every record, since tokens of models of different sizes
are not one price.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from controllers.estimators import EstimatorSpec
from controllers.policy import BINS, Choice, Policy, curve_level
from reasoner.errors import SuiteError

RECORD_FIELDS = ("problem_id", "strategy", "budget", "correct", "usage", "model")


def record_cost(record: Mapping[str, Any]) -> float | None:
    """The record's cost in eFLOPs, or None when its model was unpriced."""
    value = (record.get("usage") or {}).get("cost")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def check_records(
    records: Sequence[dict[str, Any]],
    model: str | None = None,
    *,
    force: bool = False,
    names: Mapping[str, str] | None = None,
) -> None:
    """Refuse records calibration cannot use: none, fields missing, or another model than `model`.

    With `names` (a routing policy): every record's model must be one of its keys, every named
    model must have records, and every record must carry its cost.
    """
    if not records:
        raise SuiteError("no records to calibrate on; run `reasoner eval --out RECORDS.jsonl` first")
    for record in records:
        for name in RECORD_FIELDS:
            if name not in record:
                raise SuiteError(
                    f"record {record.get('key', '?')!r} lacks the field {name!r} calibration needs; "
                    "use records written by `reasoner eval`"
                )
        if not isinstance(record["usage"], dict) or "generated_tokens" not in record["usage"]:
            raise SuiteError(f"record {record['key']!r} lacks usage.generated_tokens; use records from `reasoner eval`")
    found = sorted({str(record["model"]) for record in records})
    if names is not None:
        _check_routing_records(records, found, names)
    elif model is not None and found != [model] and not force:
        raise SuiteError(
            f"records are from model(s) {', '.join(found)}, not {model}; calibrate on records of {model} "
            "or pass --force"
        )


def _check_routing_records(records: Sequence[dict[str, Any]], found: list[str], names: Mapping[str, str]) -> None:
    unknown = [model for model in found if model not in names]
    if unknown:
        raise SuiteError(
            f"records are from model(s) {', '.join(unknown)}, which no --model NAME=MODEL names; "
            f"name each model the records come from (named: {', '.join(sorted(names))})"
        )
    missing = sorted(set(names.values()) - {names[model] for model in found})
    if missing:
        raise SuiteError(f"no records of model(s) {', '.join(missing)}; run `reasoner eval` on each model to route to")
    unpriced = [record for record in records if record_cost(record) is None]
    if unpriced:
        raise SuiteError(
            f"record {unpriced[0].get('key', '?')!r} (model {unpriced[0]['model']}) carries no usage.cost; routing "
            "compares models in cost, so evaluate on models whose config.json the cost model reads"
        )


def learn_policy(
    records: Sequence[dict[str, Any]],
    *,
    model: str | None = None,
    force: bool = False,
    min_accuracy: float | None = None,
    difficulties: dict[str, float] | None = None,
    estimator: EstimatorSpec | None = None,
    oracle: bool = False,
    names: Mapping[str, str] | None = None,
) -> Policy:
    """Fit a policy to eval records (see the module docstring).

    `difficulties` maps `suite|problem_id` to the score `estimator` gave it; without them the
    records' own `difficulty` metrics are used, and with `oracle=True` 1 - accuracy. `names`
    makes it a routing policy: record model -> model name, the first name the default model.
    """
    check_records(records, model, force=force, names=names)
    problem_difficulty = difficulties if difficulties is not None else _record_difficulties(records, oracle)
    keyed = [(f"{record.get('suite', '')}|{record['problem_id']}", record) for record in records]
    missing = [key for key, _ in keyed if key not in problem_difficulty]
    if missing:
        raise SuiteError(f"no difficulty for problem {missing[0]!r}; estimate every problem of the records")
    values = np.array(sorted({key: problem_difficulty[key] for key, _ in keyed}.values()))
    low, high = (float(item) for item in np.quantile(values, [1 / 3, 2 / 3]))
    if high <= low:
        high = np.nextafter(low, 1.0)
    owner = (next(iter(names.values())) if names else None) or model or str(records[0]["model"])
    policy = Policy((low, high), {}, {}, owner, "records", estimator)
    policy.difficulties = {key: float(problem_difficulty[key]) for key, _ in keyed}
    in_cost = all(record_cost(record) is not None for record in records)

    def config_of(record: dict[str, Any]) -> str:
        routed = names[str(record["model"])] if names is not None else None
        return json.dumps([record["strategy"], record["budget"], record.get("options") or {}, routed], sort_keys=True)

    cells: dict[str, dict[str, list[dict[str, Any]]]] = {name: defaultdict(list) for name in BINS}
    for key, record in keyed:
        cells[policy.bin_of(problem_difficulty[key])][config_of(record)].append(record)
    for name in BINS:
        measured = [_measure(config, cell, in_cost) for config, cell in cells[name].items()]
        measured = measured or [_cheapest_overall(keyed, config_of, in_cost)]
        policy.choices[name] = _best_choice(measured, min_accuracy)
        policy.curves[name] = _curve(measured)
    return policy


def _record_difficulties(records: Sequence[dict[str, Any]], oracle: bool) -> dict[str, float]:
    estimated: dict[str, list[float]] = defaultdict(list)
    outcomes: dict[str, list[float]] = defaultdict(list)
    for record in records:
        key = f"{record.get('suite', '')}|{record['problem_id']}"
        outcomes[key].append(1.0 if record["correct"] else 0.0)
        value = (record.get("metrics") or {}).get("difficulty")
        if isinstance(value, (int, float)):
            estimated[key].append(float(value))
    if oracle:
        return {key: 1.0 - float(np.mean(values)) for key, values in outcomes.items()}
    if estimated.keys() != outcomes.keys():
        raise SuiteError(
            "the records carry no estimator difficulty for every problem; run `reasoner calibrate` "
            "(it estimates each problem with the configured estimator) or pass oracle=True"
        )
    return {key: float(np.mean(values)) for key, values in estimated.items()}


def _measure(config: str, cell: list[dict[str, Any]], in_cost: bool) -> Choice:
    strategy, budget, options, model = json.loads(config)
    accuracy = float(np.mean([1.0 if record["correct"] else 0.0 for record in cell]))
    tokens = float(np.mean([record["usage"]["generated_tokens"] for record in cell]))
    cost = float(np.mean([record_cost(record) or 0.0 for record in cell])) if in_cost else None
    return Choice(strategy, int(budget), options, accuracy, tokens, len(cell), model, cost)


def _cheapest_overall(
    keyed: list[tuple[str, dict[str, Any]]], config_of: Callable[[dict[str, Any]], str], in_cost: bool
) -> Choice:
    """For a bin no record fell in: the cheapest configuration measured over all records."""
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, record in keyed:
        cells[config_of(record)].append(record)
    measured = [_measure(config, cell, in_cost) for config, cell in cells.items()]
    return min(measured, key=curve_level)


def price(choice: Choice) -> float:
    """What a measured configuration spends on average: eFLOPs when measured in cost, else tokens."""
    return choice.mean_cost if choice.mean_cost is not None else (choice.mean_tokens or 0.0)


def _best_choice(measured: list[Choice], min_accuracy: float | None) -> Choice:
    """The most accurate configuration within noise; with `min_accuracy`, the cheapest reaching it.

    Within noise: the cheapest configuration whose accuracy is within one standard error of
    the most accurate one's (the one-standard-error rule), so a difference a handful of
    calibration problems cannot tell from chance never buys more compute.
    """
    if min_accuracy is not None:
        eligible = [choice for choice in measured if (choice.accuracy or 0.0) >= min_accuracy]
        if eligible:
            return min(eligible, key=lambda choice: (price(choice), -(choice.accuracy or 0.0)))
    return _within_noise_of_best(measured)


def _within_noise_of_best(measured: list[Choice]) -> Choice:
    best = max(measured, key=lambda choice: (choice.accuracy or 0.0, -price(choice)))
    accuracy = best.accuracy or 0.0
    error = math.sqrt(accuracy * (1 - accuracy) / best.problems) if best.problems else 0.0
    eligible = [choice for choice in measured if (choice.accuracy or 0.0) >= accuracy - error]
    return min(eligible, key=lambda choice: (price(choice), choice.budget, -(choice.accuracy or 0.0)))


def _curve(measured: list[Choice]) -> list[Choice]:
    """The bin's accuracy-vs-compute curve: measured configurations only, each at the budget it was measured at.

    Per distinct level (the token budget, or the mean cost when measured in cost), the
    configuration `_within_noise_of_best` picks among those at or below it; a pick joins the
    curve only when it is more accurate than every point at a lower or equal level, so levels
    and accuracies both rise along it and allocation can never run a configuration at a budget
    nobody measured it at.
    """
    picks = [
        _within_noise_of_best([choice for choice in measured if curve_level(choice) <= level])
        for level in sorted({curve_level(choice) for choice in measured})
    ]
    points: list[Choice] = []
    for pick in sorted(picks, key=lambda choice: (curve_level(choice), -(choice.accuracy or 0.0))):
        if not points or (pick.accuracy or 0.0) > (points[-1].accuracy or 0.0):
            points.append(pick)
    return points
