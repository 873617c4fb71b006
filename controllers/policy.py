"""Policies: difficulty bin -> (model, strategy, options, budget), and accuracy-vs-compute curves per bin.

A policy holds two difficulty thresholds that cut [0, 1] into the bins `easy`, `normal` and
`hard`, one `Choice` per bin (what `auto` or `route` runs for a prompt of that bin) and, per
bin, a curve of (budget, accuracy, strategy, options) points that batch allocation climbs. A
learned curve holds only configurations as measured (strategy, options and budget together),
each more accurate than the cheaper ones before it; `Policy.point_at` runs a point at its own
budget, so a configuration never runs at a budget it was not measured at. A choice may name the
model of a Reasoner's set it runs on (`Choice.model`; absent: the solve's own model) and carry
its measured mean cost in eFLOPs (`mean_cost`; absent where the records were unpriced).

`controllers.policy_learning` fits one from eval records. At solve time a bin's choice that
does not fit the tokens left, or whose measured mean cost does not fit a cost cap's cost left,
gives way to the most accurate curve point that fits both (`Policy.choose`). The policy stores
the estimator it was learned with (`EstimatorSpec`: name, trained probe, entropy weight), so
`auto` bins on the same scale.

`reasoner calibrate` then caps the policy at saturation (`Policy.cap_at_saturation`): a
configuration measured past the budget where it stops paying (`evals.saturation`, fitted over
all the records of that strategy and options on that model) leaves the curves, and a bin's
choice past it gives way to the best point within it, so `auto` never allocates past a
saturation point.

A learned policy also stores every calibration problem's score (`difficulties`), so its bins
can be checked against the records it came from.

`default_policy` is used when the user gives none, and it is measured, not written by hand: the
policy `reasoner calibrate --estimator probe` learned for the embedded model
(SmolLM2-135M-Instruct) from the eval records shipped beside it (`DEFAULT_RECORDS_FILE`: 20
`arith` difficulty-1 problems (a+b, a-b) and 20 GSM8K problems, seed 7, each run with `direct`,
`elastic` and `self_consistency` (n=4) at 64, 256 and 1024 tokens). So it follows the rule
of `controllers.policy_learning`: in no bin does a configuration within one standard error of
the bin's best accuracy spend fewer tokens on those records than the one the default runs (a
test checks this on the shipped records). The README ("auto's built-in policy") gives the
commands that made it; for another model or task, calibrate your own and pass `policy_file`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from controllers.estimators import EstimatorSpec
from controllers.probe import probe_from_json
from reasoner.errors import ModelError, StrategyError
from reasoner.model_set import check_model_name

BINS = ("easy", "normal", "hard")
DEFAULT_POLICY_FILE = "data/default_policy.json"
DEFAULT_RECORDS_FILE = "data/default_calibration.jsonl"
POLICY_VERSION = 1


class PolicyError(StrategyError):
    """A policy file is missing, empty or malformed (the message names the field)."""


@dataclass(frozen=True)
class Choice:
    """One configuration: a strategy, its options and its token budget (with its measured figures).

    `model` names the model of the Reasoner's set it runs on (None: the solve's own model);
    `mean_cost` is its measured mean cost in eFLOPs (None where the records were unpriced).
    """

    strategy: str
    budget: int
    options: dict[str, Any] = field(default_factory=dict)
    accuracy: float | None = None
    mean_tokens: float | None = None
    problems: int | None = None
    model: str | None = None
    mean_cost: float | None = None

    def fits(self, tokens: int, cost: int | None = None) -> bool:
        """Whether it runs within `tokens` and, under a cost cap, its measured mean cost within `cost`.

        A configuration measured without cost fits any cost left (the ledger's cap still holds).
        """
        within_cost = cost is None or self.mean_cost is None or self.mean_cost <= cost
        return self.budget <= tokens and within_cost


@dataclass
class Policy:
    """Bins, a choice per bin, and an accuracy-vs-compute curve per bin (cheapest first: `curve_order`)."""

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

    def routed_models(self) -> list[str]:
        """The model names the policy's choices and curve points run on (none for a one-model policy)."""
        points = [*self.choices.values(), *(point for curve in self.curves.values() for point in curve)]
        return sorted({point.model for point in points if point.model is not None})

    def choose(self, bin_name: str, available: int, cost_left: int | None = None) -> Choice:
        """The bin's choice when it fits `available` tokens (and `cost_left`), else the best curve point that does.

        When not even the cheapest point fits, the cheapest configuration runs with `available`.
        """
        choice = self.choices[bin_name]
        if choice.fits(available, cost_left):
            return choice
        return self.point_at(bin_name, available, cost_left)

    def point_at(self, bin_name: str, budget: int, cost_left: int | None = None) -> Choice:
        """The most accurate curve point of the bin whose budget is at most `budget` (and cost within `cost_left`).

        When no point fits, `direct` with all of `budget` on the model of the policy's cheapest
        point (any bin's): the cheapest configuration there is.
        """
        fitting = [point for point in self.curves[bin_name] if point.fits(budget, cost_left)]
        if not fitting:
            cheapest = min((curve[0] for curve in self.curves.values()), key=curve_level)
            return Choice("direct", budget, model=cheapest.model)
        return max(fitting, key=lambda point: (point.accuracy or 0.0, -curve_level(point)))

    def cap_at_saturation(self, caps: Mapping[str, int]) -> None:
        """Drop every configuration measured past its saturation budget (`caps`, keyed by `config_label`).

        Curves keep only points within their configuration's cap, so batch allocation never
        climbs past one; a bin's choice past its cap gives way to the best point left within it.
        A curve's first point is at the smallest budget measured, never past a cap, so no curve empties.
        """

        def within(point: Choice) -> bool:
            cap = caps.get(config_label(point.strategy, point.options, point.model))
            return cap is None or point.budget <= cap

        for name, curve in self.curves.items():
            self.curves[name] = [point for point in curve if within(point)] or curve[:1]
        for name, choice in self.choices.items():
            if not within(choice):
                cap = caps[config_label(choice.strategy, choice.options, choice.model)]
                self.choices[name] = self.point_at(name, cap)

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


def config_label(strategy: str, options: Mapping[str, Any], model: str | None = None) -> str:
    """One configuration's name independent of budget: the strategy and its options (and model), as JSON."""
    return json.dumps([strategy, dict(options)] + ([model] if model is not None else []), sort_keys=True)


def curve_level(point: Choice) -> float:
    """Where a point sits on its curve: its mean cost when measured in cost, else its token budget."""
    return point.mean_cost if point.mean_cost is not None else float(point.budget)


def curve_order(points: list[Choice]) -> list[Choice]:
    """Points cheapest first: by mean cost when every point has one, else by token budget."""
    if all(point.mean_cost is not None for point in points):
        return sorted(points, key=lambda point: (curve_level(point), point.budget))
    return sorted(points, key=lambda point: point.budget)


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
        curve_points[name] = curve_order(parsed)
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
    model, mean_cost = data.get("model"), data.get("mean_cost")
    if model is not None:
        try:
            check_model_name(model)
        except ModelError as exc:
            raise PolicyError(f"{where}.model: {exc}") from None
    if mean_cost is not None and (
        not isinstance(mean_cost, (int, float)) or isinstance(mean_cost, bool) or not 0 <= mean_cost < math.inf
    ):
        raise PolicyError(f"{where}.mean_cost must be a non-negative number of eFLOPs, got {mean_cost!r}")
    return Choice(
        strategy,
        budget,
        options,
        float(accuracy) if isinstance(accuracy, (int, float)) else None,
        float(mean_tokens) if isinstance(mean_tokens, (int, float)) else None,
        problems if isinstance(problems, int) and not isinstance(problems, bool) else None,
        model,
        float(mean_cost) if mean_cost is not None else None,
    )
