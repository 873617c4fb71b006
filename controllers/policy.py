"""Policies: difficulty bin -> (strategy, options, budget), and accuracy-vs-budget curves per bin.

A policy holds two difficulty thresholds that cut [0, 1] into the bins `easy`, `normal` and
`hard`, one `Choice` per bin (what `auto` runs for a prompt of that bin) and, per bin, a curve
of (budget, accuracy, strategy, options) points that batch allocation climbs. A learned
curve holds only configurations as measured (strategy, options and budget together), each
more accurate than the cheaper ones before it; `Policy.point_at` runs a point at its own
budget, so a configuration never runs at a budget it was not measured at.

`learn_policy` fits one from eval records as in compute-optimal scaling (Snell et al., 2024):
every problem gets a difficulty on the scale `auto` will bin on, the configured estimator's
score (`reasoner calibrate` runs the estimator on every problem and passes `difficulties`;
the oracle difficulty 1 - accuracy is used only when `oracle=True`, e.g. for analysis); the
thresholds are the tertiles of those difficulties; per bin the choice is the most accurate
(strategy, budget) measured, within noise (the cheapest configuration within one standard
error of the best accuracy: bins hold few problems), or with `min_accuracy` the one with the
fewest tokens that reaches it. At solve time a bin's choice that does not fit the budget
left gives way to the most accurate curve point that does (`Policy.choose`). The policy
stores the estimator it was learned with (`EstimatorSpec`: name, trained probe, entropy
weight), so `auto` bins on the same scale.

`reasoner calibrate` then caps the policy at saturation (`Policy.cap_at_saturation`): a
configuration measured past the budget where it stops paying (`evals.saturation`, fitted over
all the records of that strategy and options) leaves the curves, and a bin's choice past it
gives way to the best point within it, so `auto` never allocates past a saturation point.

A learned policy also stores every calibration problem's score (`difficulties`), so its bins
can be checked against the records it came from.

`default_policy` is used when the user gives none, and it is measured, not written by hand: the
policy `reasoner calibrate --estimator probe` learned for the embedded model
(SmolLM2-135M-Instruct) from the eval records shipped beside it (`DEFAULT_RECORDS_FILE`: 20
`arith` difficulty-1 problems (a+b, a-b) and 20 GSM8K problems, seed 7, each run with `direct`,
`elastic` and `self_consistency` (n=4) at 64, 256 and 1024 tokens). So it follows the rule
above: in no bin does a configuration within one standard error of the bin's best accuracy
spend fewer tokens on those records than the one the default runs (a test checks this on the
shipped records). The README ("auto's built-in policy") gives the commands that made it; for
another model or task, calibrate your own and pass `policy_file`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from controllers.estimators import EstimatorSpec
from controllers.probe import probe_from_json
from reasoner.errors import StrategyError, SuiteError

BINS = ("easy", "normal", "hard")
DEFAULT_POLICY_FILE = "data/default_policy.json"
DEFAULT_RECORDS_FILE = "data/default_calibration.jsonl"
POLICY_VERSION = 1
RECORD_FIELDS = ("problem_id", "strategy", "budget", "correct", "usage", "model")


class PolicyError(StrategyError):
    """A policy file is missing, empty or malformed (the message names the field)."""


@dataclass(frozen=True)
class Choice:
    """One configuration: a strategy, its options and its token budget (with its measured figures)."""

    strategy: str
    budget: int
    options: dict[str, Any] = field(default_factory=dict)
    accuracy: float | None = None
    mean_tokens: float | None = None
    problems: int | None = None


@dataclass
class Policy:
    """Bins, a choice per bin, and an accuracy-vs-budget curve per bin (budgets ascending)."""

    thresholds: tuple[float, float]
    choices: dict[str, Choice]
    curves: dict[str, list[Choice]]
    model: str | None = None
    source: str = "default"
    estimator: EstimatorSpec | None = None
    difficulties: dict[str, float] = field(default_factory=dict)
    """The score of every calibration problem (`suite|problem_id`), so the bins can be checked against the records."""

    def bin_of(self, difficulty: float) -> str:
        """The bin a difficulty in [0, 1] falls in."""
        low, high = self.thresholds
        if difficulty < low:
            return "easy"
        return "normal" if difficulty < high else "hard"

    def choose(self, bin_name: str, available: int) -> Choice:
        """The bin's choice when its budget fits `available`, else the best curve point that fits.

        When not even the cheapest point fits, the cheapest configuration runs with `available`.
        """
        choice = self.choices[bin_name]
        if choice.budget <= available:
            return choice
        return self.point_at(bin_name, available)

    def point_at(self, bin_name: str, budget: int) -> Choice:
        """The most accurate curve point of the bin whose budget is at most `budget`.

        When no point fits, `direct` with all of `budget`: the cheapest configuration there is.
        """
        curve = self.curves[bin_name]
        fitting = [point for point in curve if point.budget <= budget]
        if not fitting:
            return Choice("direct", budget)
        return max(fitting, key=lambda point: (point.accuracy or 0.0, -point.budget))

    def cap_at_saturation(self, caps: Mapping[str, int]) -> None:
        """Drop every configuration measured past its saturation budget (`caps`, keyed by `config_label`).

        Curves keep only points within their configuration's cap, so batch allocation never
        climbs past one; a bin's choice past its cap gives way to the best point left within it.
        A curve's first point is at the smallest budget measured, never past a cap, so no curve empties.
        """

        def within(point: Choice) -> bool:
            cap = caps.get(config_label(point.strategy, point.options))
            return cap is None or point.budget <= cap

        for name, curve in self.curves.items():
            self.curves[name] = [point for point in curve if within(point)] or curve[:1]
        for name, choice in self.choices.items():
            if not within(choice):
                self.choices[name] = self.point_at(name, caps[config_label(choice.strategy, choice.options)])

    def to_json(self) -> dict[str, Any]:
        estimator = None
        if self.estimator is not None:
            spec = self.estimator
            estimator = {
                "name": spec.name,
                "probe": spec.probe.to_json() if spec.probe is not None else None,
                "entropy_weight": spec.entropy_weight,
                "representation": spec.representation,
            }
        return {
            "version": POLICY_VERSION,
            "model": self.model,
            "source": self.source,
            "estimator": estimator,
            "thresholds": list(self.thresholds),
            "bins": {name: asdict(choice) for name, choice in self.choices.items()},
            "curves": {name: [asdict(point) for point in curve] for name, curve in self.curves.items()},
            "difficulties": self.difficulties,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


def config_label(strategy: str, options: Mapping[str, Any]) -> str:
    """One configuration's name independent of budget: the strategy and its options, as JSON."""
    return json.dumps([strategy, dict(options)], sort_keys=True)


def default_policy() -> Policy:
    """The built-in policy: learned by `reasoner calibrate` from the records shipped beside it (module docstring)."""
    text = resources.files("controllers").joinpath(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
    policy = policy_from_json(json.loads(text), f"the built-in policy ({DEFAULT_POLICY_FILE})")
    policy.source = "default"
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read a policy written by `Policy.save` (or `reasoner calibrate`); errors name the field."""
    source = Path(path)
    if not source.is_file():
        raise PolicyError(f"no policy file at {source}; write one with `reasoner calibrate RECORDS --out {source}`")
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PolicyError(
            f"policy file {source} is not UTF-8 text (a binary file?); pass a file from `reasoner calibrate`"
        ) from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {source}: {exc.strerror or exc}") from None
    if not text.strip():
        raise PolicyError(f"policy file {source} is empty; rerun `reasoner calibrate` to write it")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy file {source} is not JSON ({exc.msg} at line {exc.lineno})") from None
    return policy_from_json(data, str(source))


def policy_from_json(data: Any, where: str = "policy") -> Policy:
    """Build a policy from its JSON form; a missing or mistyped field is a `PolicyError` naming it."""
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: the policy must be a JSON object")
    thresholds = _field(data, "thresholds", list, where)
    if len(thresholds) != 2 or not all(isinstance(item, (int, float)) for item in thresholds):
        raise PolicyError(f"{where}: field 'thresholds' must be two numbers, got {thresholds!r}")
    low, high = float(thresholds[0]), float(thresholds[1])
    if not 0.0 <= low <= high <= 1.0:
        raise PolicyError(f"{where}: field 'thresholds' must satisfy 0 <= low <= high <= 1, got {thresholds!r}")
    bins = _field(data, "bins", dict, where)
    curves = _field(data, "curves", dict, where)
    choices = {name: _choice(_field(bins, name, dict, where, "bins."), f"{where}: bins.{name}") for name in BINS}
    curve_points: dict[str, list[Choice]] = {}
    for name in BINS:
        points = _field(curves, name, list, where, "curves.")
        if not points:
            raise PolicyError(f"{where}: field 'curves.{name}' is empty; it needs at least one point")
        parsed = [_choice(point, f"{where}: curves.{name}[{index}]") for index, point in enumerate(points)]
        curve_points[name] = sorted(parsed, key=lambda point: point.budget)
    model = data.get("model")
    estimator = _estimator_spec(data.get("estimator"), where)
    difficulties = data.get("difficulties", {})
    if not isinstance(difficulties, dict) or not all(
        isinstance(value, (int, float)) and not isinstance(value, bool) for value in difficulties.values()
    ):
        raise PolicyError(f"{where}: field 'difficulties' must map problem keys to numbers")
    return Policy(
        (low, high),
        choices,
        curve_points,
        model if isinstance(model, str) else None,
        where,
        estimator,
        {str(key): float(value) for key, value in difficulties.items()},
    )


def _estimator_spec(data: Any, where: str) -> EstimatorSpec | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise PolicyError(f"{where}: field 'estimator' must be an object with a 'name'")
    probe = probe_from_json(data["probe"], f"{where}: estimator.probe") if data.get("probe") is not None else None
    weight = data.get("entropy_weight", EstimatorSpec.entropy_weight)
    if not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise PolicyError(f"{where}: field 'estimator.entropy_weight' must be a number in [0, 1], got {weight!r}")
    representation = data.get("representation", "engine")
    if not isinstance(representation, str):
        raise PolicyError(f"{where}: field 'estimator.representation' must be a string, got {representation!r}")
    return EstimatorSpec(data["name"], probe, float(weight), representation)


def _field(data: dict[str, Any], name: str, kind: type, where: str, prefix: str = "") -> Any:
    if name not in data:
        raise PolicyError(f"{where}: field '{prefix}{name}' is missing; rerun `reasoner calibrate`")
    value = data[name]
    if not isinstance(value, kind):
        raise PolicyError(f"{where}: field '{prefix}{name}' must be a JSON {kind.__name__}, got {value!r}")
    return value


def _choice(data: Any, where: str) -> Choice:
    if not isinstance(data, dict):
        raise PolicyError(f"{where} must be an object with strategy and budget")
    strategy, budget = data.get("strategy"), data.get("budget")
    if not isinstance(strategy, str) or not strategy:
        raise PolicyError(f"{where}.strategy must be a strategy name, got {strategy!r}")
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise PolicyError(f"{where}.budget must be a positive integer, got {budget!r}")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise PolicyError(f"{where}.options must be an object, got {options!r}")
    accuracy, mean_tokens, problems = data.get("accuracy"), data.get("mean_tokens"), data.get("problems")
    return Choice(
        strategy,
        budget,
        options,
        float(accuracy) if isinstance(accuracy, (int, float)) else None,
        float(mean_tokens) if isinstance(mean_tokens, (int, float)) else None,
        problems if isinstance(problems, int) and not isinstance(problems, bool) else None,
    )


def check_records(records: Sequence[dict[str, Any]], model: str | None = None, *, force: bool = False) -> None:
    """Refuse records calibration cannot use: none, fields missing, or another model than `model`."""
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
    if model is not None and found != [model] and not force:
        raise SuiteError(
            f"records are from model(s) {', '.join(found)}, not {model}; calibrate on records of {model} "
            "or pass --force"
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
) -> Policy:
    """Fit a policy to eval records (see the module docstring).

    `difficulties` maps `suite|problem_id` to the score `estimator` gave it; without them the
    records' own `difficulty` metrics are used, and with `oracle=True` 1 - accuracy.
    """
    check_records(records, model, force=force)
    problem_difficulty = difficulties if difficulties is not None else _record_difficulties(records, oracle)
    keyed = [(f"{record.get('suite', '')}|{record['problem_id']}", record) for record in records]
    missing = [key for key, _ in keyed if key not in problem_difficulty]
    if missing:
        raise SuiteError(f"no difficulty for problem {missing[0]!r}; estimate every problem of the records")
    values = np.array(sorted({key: problem_difficulty[key] for key, _ in keyed}.values()))
    low, high = (float(item) for item in np.quantile(values, [1 / 3, 2 / 3]))
    if high <= low:
        high = np.nextafter(low, 1.0)
    policy = Policy((low, high), {}, {}, model or str(records[0]["model"]), "records", estimator)
    policy.difficulties = {key: float(problem_difficulty[key]) for key, _ in keyed}
    cells: dict[str, dict[str, list[dict[str, Any]]]] = {name: defaultdict(list) for name in BINS}
    for key, record in keyed:
        config = json.dumps([record["strategy"], record["budget"], record.get("options") or {}], sort_keys=True)
        cells[policy.bin_of(problem_difficulty[key])][config].append(record)
    for name in BINS:
        measured = [_measure(config, cell) for config, cell in cells[name].items()] or [_measure_all(keyed)]
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


def _measure(config: str, cell: list[dict[str, Any]]) -> Choice:
    strategy, budget, options = json.loads(config)
    accuracy = float(np.mean([1.0 if record["correct"] else 0.0 for record in cell]))
    tokens = float(np.mean([record["usage"]["generated_tokens"] for record in cell]))
    return Choice(strategy, int(budget), options, accuracy, tokens, len(cell))


def _measure_all(keyed: list[tuple[str, dict[str, Any]]]) -> Choice:
    """For a bin no record fell in: the cheapest configuration measured over all records."""
    budget = min(int(record["budget"]) for _, record in keyed)
    cheapest = [record for _, record in keyed if int(record["budget"]) == budget]
    first = cheapest[0]
    config = json.dumps([first["strategy"], budget, first.get("options") or {}], sort_keys=True)
    return _measure(config, [record for record in cheapest if record["strategy"] == first["strategy"]])


def _best_choice(measured: list[Choice], min_accuracy: float | None) -> Choice:
    """The most accurate configuration within noise; with `min_accuracy`, the cheapest reaching it.

    Within noise: the cheapest configuration whose accuracy is within one standard error of
    the most accurate one's (the one-standard-error rule), so a difference a handful of
    calibration problems cannot tell from chance never buys more tokens.
    """
    if min_accuracy is not None:
        eligible = [choice for choice in measured if (choice.accuracy or 0.0) >= min_accuracy]
        if eligible:
            return min(eligible, key=lambda choice: (choice.mean_tokens or 0.0, -(choice.accuracy or 0.0)))
    return _within_noise_of_best(measured)


def _within_noise_of_best(measured: list[Choice]) -> Choice:
    best = max(measured, key=lambda choice: (choice.accuracy or 0.0, -(choice.mean_tokens or 0.0)))
    accuracy = best.accuracy or 0.0
    error = math.sqrt(accuracy * (1 - accuracy) / best.problems) if best.problems else 0.0
    eligible = [choice for choice in measured if (choice.accuracy or 0.0) >= accuracy - error]
    return min(eligible, key=lambda choice: (choice.mean_tokens or 0.0, choice.budget, -(choice.accuracy or 0.0)))


def _curve(measured: list[Choice]) -> list[Choice]:
    """The bin's accuracy-vs-budget curve: measured configurations only, each at the budget it was measured at.

    Per distinct budget, the configuration `_within_noise_of_best` picks among those measured
    at or below it; a pick joins the curve only when it is more accurate than every point at a
    smaller or equal budget, so budgets and accuracies both rise along it and allocation can
    never run a configuration at a budget nobody measured it at.
    """
    picks = [
        _within_noise_of_best([choice for choice in measured if choice.budget <= budget])
        for budget in sorted({choice.budget for choice in measured})
    ]
    points: list[Choice] = []
    for pick in sorted(picks, key=lambda choice: (choice.budget, -(choice.accuracy or 0.0))):
        if not points or (pick.accuracy or 0.0) > (points[-1].accuracy or 0.0):
            points.append(pick)
    return points
