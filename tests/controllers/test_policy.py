from __future__ import annotations

import json
import math
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from records_support import graded_records, hand_policy, record

from controllers.estimators import EstimatorSpec
from controllers.policy import (
    BINS,
    DEFAULT_RECORDS_FILE,
    Choice,
    Policy,
    PolicyError,
    default_policy,
    load_policy,
)
from controllers.policy_learning import learn_policy
from controllers.probe import train_probe
from evals.records import read_records
from reasoner import StrategyError, SuiteError


def test_learned_policy_picks_the_most_accurate_configuration_per_bin_ties_to_fewer_tokens() -> None:
    policy = learn_policy(graded_records(), oracle=True)
    assert (policy.choices["easy"].strategy, policy.choices["easy"].budget) == ("direct", 64)
    assert (policy.choices["normal"].strategy, policy.choices["normal"].budget) == ("elastic", 256)


def test_a_more_accurate_configuration_wins_even_at_more_tokens_per_point() -> None:
    records = [
        *[record(f"p{index}", "direct", 64, index < 5, 20) for index in range(10)],
        *[record(f"p{index}", "self_consistency", 512, index < 7, 400) for index in range(10)],
    ]
    policy = learn_policy(records, difficulties={f"arith|p{index}": 0.5 for index in range(10)})
    assert policy.choices["normal"].strategy == "self_consistency"


def test_min_accuracy_picks_the_cheapest_configuration_that_reaches_it() -> None:
    records = [
        *[record(f"p{index}", "direct", 64, index < 5, 20) for index in range(10)],
        *[record(f"p{index}", "self_consistency", 512, index < 7, 400) for index in range(10)],
    ]
    policy = learn_policy(records, difficulties={f"arith|p{index}": 0.5 for index in range(10)}, min_accuracy=0.5)
    assert policy.choices["normal"].strategy == "direct"


def test_calibration_without_estimator_scores_or_oracle_is_refused() -> None:
    with pytest.raises(SuiteError, match="reasoner calibrate"):
        learn_policy(graded_records())


def test_a_choice_that_does_not_fit_gives_way_to_the_most_accurate_point_that_does() -> None:
    policy = hand_policy()
    assert policy.choose("hard", 1500) == policy.curves["hard"][1]
    assert policy.choose("hard", 100) == Choice("direct", 100)


def test_learned_curves_never_fall_as_the_budget_grows() -> None:
    policy = learn_policy(graded_records(), oracle=True)
    for curve in policy.curves.values():
        accuracies = [point.accuracy or 0.0 for point in curve]
        assert accuracies == sorted(accuracies)
        assert [point.budget for point in curve] == sorted(point.budget for point in curve)


def test_estimated_difficulty_in_records_decides_the_bins() -> None:
    records = [dict(item, metrics={"difficulty": 0.9}) for item in graded_records()]
    for item in records:
        if item["problem_id"] in ("p0", "p1"):
            item["metrics"] = {"difficulty": 0.05}
    policy = learn_policy(records)
    assert policy.bin_of(0.05) == "easy"
    assert policy.bin_of(0.9) == "hard"


def test_policy_round_trips_through_its_file(tmp_path: Path) -> None:
    probe = train_probe([{"x": 0.0}, {"x": 1.0}], [False, True])
    policy = learn_policy(graded_records(), oracle=True, estimator=EstimatorSpec("probe", probe, 0.0))
    path = tmp_path / "policy.json"
    policy.save(path)
    loaded = load_policy(path)
    assert loaded.estimator == policy.estimator
    assert loaded.choices == policy.choices
    assert loaded.curves == policy.curves
    assert loaded.thresholds == pytest.approx(policy.thresholds)


def test_choice_is_clamped_to_the_budget_left() -> None:
    policy = hand_policy()
    assert policy.choose("hard", 300).budget <= 300
    assert policy.choose("easy", 10_000).strategy == "direct"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("{not json", "is not JSON"),
        ('{"bins": {}, "curves": {}}', "field 'thresholds' is missing"),
        ('{"thresholds": [0.2, 0.6], "bins": {}, "curves": {}}', "field 'bins.easy' is missing"),
        ('{"thresholds": [0.9, 0.1], "bins": {}, "curves": {}}', "0 <= low <= high <= 1"),
    ],
)
def test_malformed_policy_file_names_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "policy.json"
    path.write_text(content)
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_policy_choice_with_a_bad_budget_names_the_field(tmp_path: Path) -> None:
    data: dict[str, Any] = hand_policy().to_json()
    data["bins"]["hard"]["budget"] = "lots"
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PolicyError, match=r"bins.hard.budget must be a positive integer"):
        load_policy(path)


def test_missing_policy_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="reasoner calibrate"):
        load_policy(tmp_path / "nope.json")


def test_calibration_refuses_no_records() -> None:
    with pytest.raises(SuiteError, match="no records"):
        learn_policy([])


def test_calibration_refuses_records_lacking_a_field() -> None:
    records = graded_records()
    del records[3]["correct"]
    with pytest.raises(SuiteError, match="lacks the field 'correct'"):
        learn_policy(records)


def test_calibration_refuses_records_of_another_model_unless_forced() -> None:
    records = [*graded_records(), dict(record("p9", "direct", 64, True, 9), model="other-model")]
    with pytest.raises(SuiteError, match="--force"):
        learn_policy(records, model="smollm2-135m-instruct", oracle=True)
    assert learn_policy(records, model="smollm2-135m-instruct", force=True, oracle=True).choices


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        ("pilot", "field 'estimator' must be an object"),
        ({"name": "pilot", "entropy_weight": 3}, "entropy_weight' must be a number in \\[0, 1\\]"),
        ({"name": "probe", "probe": {"weights": []}}, "field 'feature_names' is missing"),
    ],
)
def test_malformed_estimator_in_a_policy_file_names_the_field(tmp_path: Path, estimator: Any, message: str) -> None:
    data: dict[str, Any] = hand_policy().to_json()
    data["estimator"] = estimator
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StrategyError, match=message):
        load_policy(path)


def test_an_accuracy_edge_within_one_standard_error_does_not_buy_more_tokens() -> None:
    records = [
        *[record(f"p{index}", "direct", 64, index < 6, 20) for index in range(10)],
        *[record(f"p{index}", "self_consistency", 512, index < 7, 400) for index in range(10)],
    ]
    policy = learn_policy(records, difficulties={f"arith|p{index}": 0.5 for index in range(10)})
    assert policy.choices["normal"].strategy == "direct"
    assert [(point.strategy, point.budget) for point in policy.curves["normal"]] == [("direct", 64)]


def test_every_curve_point_runs_at_the_budget_it_was_measured_at() -> None:
    # Easy problems (p0, p1) are solved by every configuration: the cheapest, direct at 64, is the
    # whole curve; it is never offered at 256 or 512, budgets direct was not measured at.
    records = graded_records()
    measured = {(item["strategy"], item["budget"]) for item in records}
    policy = learn_policy(records, oracle=True)
    for curve in policy.curves.values():
        assert {(point.strategy, point.budget) for point in curve} <= measured
    assert [(point.strategy, point.budget) for point in policy.curves["easy"]] == [("direct", 64)]
    assert (policy.point_at("easy", 10_000).strategy, policy.point_at("easy", 10_000).budget) == ("direct", 64)


def shipped_records() -> list[dict[str, Any]]:
    """The eval records the built-in policy was calibrated on (shipped beside it)."""
    return read_records(Path(str(resources.files("controllers").joinpath(DEFAULT_RECORDS_FILE)))).records


def measured_cells(records: list[dict[str, Any]], policy: Policy, bin_name: str) -> dict[str, tuple[float, float, int]]:
    """Per configuration measured on the bin's problems: (accuracy, mean generated tokens, problems)."""
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in records:
        if policy.bin_of(policy.difficulties[f"{item['suite']}|{item['problem_id']}"]) == bin_name:
            cells[configuration(item["strategy"], item["budget"], item.get("options") or {})].append(item)
    return {
        config: (
            sum(bool(item["correct"]) for item in cell) / len(cell),
            sum(item["usage"]["generated_tokens"] for item in cell) / len(cell),
            len(cell),
        )
        for config, cell in cells.items()
    }


def configuration(strategy: str, budget: int, options: dict[str, Any]) -> str:
    return json.dumps([strategy, budget, options], sort_keys=True)


def test_the_default_policy_spends_no_more_than_the_cheapest_configuration_matching_the_best() -> None:
    # The rule, checked on the shipped records: in each bin the default runs a configuration
    # measured there, and none within one standard error of the bin's best accuracy uses fewer tokens.
    policy = default_policy()
    records = shipped_records()
    assert policy.estimator is not None and policy.source == "default"
    assert set(policy.difficulties) == {f"{item['suite']}|{item['problem_id']}" for item in records}
    for name in BINS:
        cells = measured_cells(records, policy, name)
        assert cells, f"no calibration problem fell in the {name} bin"
        best, _, problems = max(cells.values())
        error = math.sqrt(best * (1 - best) / problems)
        cheapest = min(tokens for accuracy, tokens, _ in cells.values() if accuracy >= best - error)
        choice = policy.choices[name]
        chosen = cells[configuration(choice.strategy, choice.budget, choice.options)]
        assert chosen[1] <= cheapest, name
