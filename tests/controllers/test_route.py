"""`route` on two named scripted models, and routing policies learned in cost from records of both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records_support import record

from cli.calibrate_command import saturation_caps
from controllers.policy import Choice, Policy, config_label, default_policy, load_policy
from controllers.policy_learning import learn_policy
from reasoner import Budget, BudgetError, ModelError, Reasoner, StrategyError, SuiteError
from reasoner.cost import CostModel
from reasoner.model_set import ModelSpec
from reasoner.testing import ScriptedBackend
from tests.reasoner.test_cost import LLAMA31_8B, QWEN25_05B

SMALL_COST = CostModel.from_config(QWEN25_05B, "H200")
LARGE_COST = CostModel.from_config(LLAMA31_8B, "H200")
NAMES = {"org/small-0.5b": "small", "org/large-8b": "large"}
ANSWER = " ".join(["step"] * 60) + "\n\nFinal answer: 5"
PROBLEMS = 10


def priced_record(problem: str, model: str, correct: bool, tokens: int, cost: float) -> dict[str, Any]:
    return record(
        problem, "direct", 256, correct, tokens, model=model, usage={"generated_tokens": tokens, "cost": cost}
    )


def two_model_records(small_right: int, large_right: int) -> list[dict[str, Any]]:
    """Ten problems on each model: the small one writes more tokens, the large one costs 10x more."""
    return [
        *(priced_record(f"p{i}", "org/small-0.5b", i < small_right, 200, 1e11) for i in range(PROBLEMS)),
        *(priced_record(f"p{i}", "org/large-8b", i < large_right, 50, 1e12) for i in range(PROBLEMS)),
    ]


def one_bin(records: list[dict[str, Any]], **options: Any) -> Policy:
    """Every problem at difficulty 0.5: all bins see every record."""
    return learn_policy(records, difficulties={f"arith|p{i}": 0.5 for i in range(PROBLEMS)}, names=NAMES, **options)


def test_learning_picks_the_cheaper_model_in_cost_within_one_standard_error() -> None:
    # small 6/10 vs large 7/10: within one SE (0.145) of the best. Fewer tokens would pick large;
    # fewer eFLOPs picks small.
    policy = one_bin(two_model_records(small_right=6, large_right=7))
    choice = policy.choices["normal"]
    assert (choice.model, choice.mean_cost, choice.accuracy) == ("small", 1e11, 0.6)
    assert policy.model == "small"


def test_a_bin_where_the_large_model_is_clearly_more_accurate_picks_it() -> None:
    policy = one_bin(two_model_records(small_right=2, large_right=9))
    choice = policy.choices["normal"]
    assert (choice.model, choice.accuracy) == ("large", 0.9)
    assert [(point.model, point.mean_cost) for point in policy.curves["normal"]] == [("small", 1e11), ("large", 1e12)]


def test_min_accuracy_takes_the_cheapest_model_in_cost_that_reaches_it() -> None:
    policy = one_bin(two_model_records(small_right=6, large_right=9), min_accuracy=0.5)
    assert policy.choices["normal"].model == "small"


def test_a_routing_policy_round_trips_through_its_file(tmp_path: Path) -> None:
    policy = one_bin(two_model_records(small_right=2, large_right=9))
    policy.save(tmp_path / "route.json")
    loaded = load_policy(tmp_path / "route.json")
    assert loaded.to_json() | {"source": None} == policy.to_json() | {"source": None}
    assert loaded.routed_models() == ["large", "small"]


def test_a_policy_without_model_names_runs_on_the_solves_own_model() -> None:
    # The built-in policy was written before choices named models: it still loads, naming none.
    policy = default_policy()
    assert policy.routed_models() == []
    assert all(choice.model is None and choice.mean_cost is None for choice in policy.choices.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda records: records[0]["usage"].pop("cost"), "carries no usage.cost"),
        (lambda records: records[0].update(model="org/other"), "org/other, which no --model NAME=MODEL names"),
        (lambda records: [item.update(model="org/small-0.5b") for item in records], "no records of model(s) large"),
    ],
)
def test_routing_calibration_refuses_records_it_cannot_route_on(change: Any, message: str) -> None:
    records = two_model_records(small_right=6, large_right=7)
    change(records)
    with pytest.raises(SuiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        one_bin(records)


def test_a_policy_file_with_a_bad_model_name_is_a_policy_error(tmp_path: Path) -> None:
    policy = routing_policy()
    data = policy.to_json()
    data["bins"]["hard"]["model"] = "no/slash"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StrategyError, match=r"bins.hard.model"):
        load_policy(path)


def routing_policy(hard_model: str = "large") -> Policy:
    """Easy and normal prompts to `direct` on small, hard ones to `direct` on `hard_model` (mean costs measured)."""
    easy = Choice("direct", 256, accuracy=0.9, mean_tokens=60, problems=10, model="small", mean_cost=2e11)
    hard = Choice("direct", 256, accuracy=0.8, mean_tokens=60, problems=10, model=hard_model, mean_cost=4e12)
    choices = {"easy": easy, "normal": easy, "hard": hard}
    return Policy((1 / 3, 2 / 3), choices, {name: [choice] for name, choice in choices.items()}, source="hand")


def two_models() -> tuple[Reasoner, ScriptedBackend, ScriptedBackend]:
    small, large = ScriptedBackend(ANSWER), ScriptedBackend(ANSWER)
    models = {
        "small": ModelSpec(backend=small, profile="smollm2", cost_model=SMALL_COST),
        "large": ModelSpec(backend=large, profile="smollm2", cost_model=LARGE_COST),
    }
    return Reasoner(models=models), small, large


def policy_file(tmp_path: Path, policy: Policy, thresholds: tuple[float, float]) -> str:
    policy.thresholds = thresholds
    path = tmp_path / "route.json"
    policy.save(path)
    return str(path)


@pytest.mark.parametrize(
    ("thresholds", "bin_name", "runs_on"),
    [((0.9, 0.95), "easy", "small"), ((0.0, 0.0), "hard", "large")],
)
def test_route_runs_the_bins_choice_on_its_model(
    tmp_path: Path, thresholds: tuple[float, float], bin_name: str, runs_on: str
) -> None:
    reasoner, small, large = two_models()
    path = policy_file(tmp_path, routing_policy(), thresholds)
    solution = reasoner.solve("What is 2+3?", 600, "route", estimator="none", policy_file=path)
    assert solution.answer == "5"
    assert (solution.metrics["difficulty_bin"], solution.metrics["chosen_model"]) == (bin_name, runs_on)
    assert list(solution.usage.by_model) == [runs_on]
    ran = {"small": len(small.requests), "large": len(large.requests)}
    assert ran[runs_on] == 1 and sum(ran.values()) == 1


def test_the_estimate_runs_on_the_default_model_and_the_answer_on_the_chosen_one(tmp_path: Path) -> None:
    reasoner, small, large = two_models()
    path = policy_file(tmp_path, routing_policy(), (0.0, 0.0))
    solution = reasoner.solve("What is 2+3?", 600, "route", estimator="probe", policy_file=path)
    by_model = solution.usage.by_model
    assert by_model["small"].generated_tokens == solution.metrics["estimator_tokens"] > 0
    assert by_model["large"].generated_tokens == solution.usage.generated_by_phase["answer"] > 0
    assert solution.usage.cost == by_model["small"].cost + by_model["large"].cost  # type: ignore[operator]
    assert small.requests and len(large.requests) == 1


def test_a_policy_naming_an_unknown_model_is_refused_before_any_token(tmp_path: Path) -> None:
    reasoner, small, large = two_models()
    path = policy_file(tmp_path, routing_policy(hard_model="huge"), (1 / 3, 2 / 3))
    with pytest.raises(ModelError, match=r"routes to model\(s\) huge.*small, large"):
        reasoner.validate("What is 2+3?", 600, "route", policy_file=path)
    with pytest.raises(ModelError, match="huge"):
        reasoner.solve("What is 2+3?", 600, "route", policy_file=path)
    with pytest.raises(ModelError, match="huge"):
        reasoner.solve_many(["1+1?", "2+2?"], 1200, "route", policy_file=path)
    assert small.requests == [] and large.requests == []


def test_route_needs_a_policy_file() -> None:
    reasoner, _, _ = two_models()
    with pytest.raises(StrategyError, match="route needs policy_file"):
        reasoner.solve("What is 2+3?", 600, "route")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cost=st.floats(min_value=1e9, max_value=2e13), hard=st.booleans())
def test_route_never_spends_past_a_cost_budget(tmp_path: Path, cost: float, hard: bool) -> None:
    reasoner, small, large = two_models()
    path = policy_file(tmp_path, routing_policy(), (0.0, 0.0) if hard else (0.9, 0.95))
    try:
        solution = reasoner.solve("What is 2+3?", Budget(tokens=600, cost=cost), "route", policy_file=path)
    except BudgetError:
        assert small.requests == [] and large.requests == []  # refused before spending
        return
    assert solution.usage.cost is not None and solution.usage.cost <= cost
    chosen = solution.metrics["chosen_model"]
    assert chosen == "large" or not large.requests
    if chosen == "large":
        assert cost >= 4e12  # the large model runs only when its measured mean cost fits


def test_a_choice_whose_mean_cost_does_not_fit_gives_way_to_the_cheaper_model(tmp_path: Path) -> None:
    policy = routing_policy()
    cheap = Choice("direct", 256, accuracy=0.5, problems=10, model="small", mean_cost=2e11)
    policy.curves["hard"] = [cheap, policy.choices["hard"]]
    reasoner, _, large = two_models()
    path = policy_file(tmp_path, policy, (0.0, 0.0))
    solution = reasoner.solve(
        "What is 2+3?", Budget(tokens=600, cost=1e12), "route", estimator="none", policy_file=path
    )
    assert solution.metrics["chosen_model"] == "small"
    assert large.requests == []
    assert solution.usage.cost is not None and solution.usage.cost <= 1e12


def test_saturation_caps_are_fitted_and_applied_per_model() -> None:
    # small is flat from 256 to 1024 tokens (saturated at 256); large rises. Only small's 1024 goes.
    records = [
        *(priced_record(f"p{i}", "org/small-0.5b", i < 6, 200, 1e11) for i in range(PROBLEMS)),
        *(priced_record(f"p{i}", "org/large-8b", i < 2, 50, 1e12) for i in range(PROBLEMS)),
    ]
    records += [
        item | {"budget": 1024, "correct": item["correct"] or item["model"] == "org/large-8b"} for item in records
    ]
    caps = saturation_caps(records, 0.01, NAMES)
    assert caps[config_label("direct", {}, "small")] == 256
    assert config_label("direct", {}, "large") not in caps and config_label("direct", {}) not in caps
    policy = one_bin(records)
    policy.curves["normal"].append(Choice("direct", 1024, accuracy=0.7, model="small", mean_cost=1e11))
    policy.choices["normal"] = policy.curves["normal"][-1]
    policy.cap_at_saturation(caps)
    assert all(point.budget <= 256 for point in policy.curves["normal"] if point.model == "small")
    assert (policy.choices["normal"].model, policy.choices["normal"].budget) != ("small", 1024)
