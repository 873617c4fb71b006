from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from records_support import hand_policy, hand_policy_file

from controllers.estimators import EstimatorSpec
from controllers.policy import Choice, PolicyError, default_policy
from controllers.probe import Probe
from reasoner import Budget, BudgetError, Reasoner, StrategyError
from reasoner.testing import ScriptedBackend
from tests.forced_runs import forced

LONG = " ".join(["step"] * 600) + "\n\nFinal answer: 5"


def reasoner_with(script: str | list[str]) -> Reasoner:
    return Reasoner(backend=ScriptedBackend(script), profile="smollm2")


@pytest.mark.parametrize(
    ("script", "difficulty", "bin_name"),
    [
        # three pilots that agree, each token with one logprob (entropy 0): 0.6 * 0 + 0.4 * 0
        (["The sum is 5.\n\nFinal answer: 5"], 0.0, "easy"),
        # three pilots that all disagree: 0.6 * 1 + 0.4 * 0; elastic's 1024 does not fit, direct 256 does
        (["Final answer: 1", "Final answer: 2", "Final answer: 3", "Final answer: 5"], 0.6, "normal"),
    ],
)
def test_auto_reports_difficulty_bin_and_choice(
    script: list[str], difficulty: float, bin_name: str, tmp_path: Path
) -> None:
    solution = reasoner_with(script).solve("What is 2+3?", 600, "auto", policy_file=hand_policy_file(tmp_path))
    metrics = solution.metrics
    assert solution.answer == "5"
    assert metrics["difficulty"] == pytest.approx(difficulty)
    assert metrics["difficulty_bin"] == bin_name
    assert metrics["chosen_strategy"] == "direct"
    assert metrics["chosen_budget"] == 256


def test_auto_charges_estimation_to_the_solve(scripted_reasoner: Reasoner) -> None:
    solution = scripted_reasoner.solve("What is 2+3?", 600, "auto")
    assert solution.usage.generated_by_phase["estimation"] == solution.metrics["estimator_tokens"]
    assert solution.usage.generated_tokens == sum(solution.usage.generated_by_phase.values())


def test_chosen_strategy_stays_within_the_chosen_budget(tmp_path: Path) -> None:
    reasoner = reasoner_with(LONG)
    solution = reasoner.solve("What is 2+3?", 2000, "auto", estimator="probe", policy_file=hand_policy_file(tmp_path))
    assert solution.metrics["chosen_budget"] == 256
    assert solution.usage.generated_by_phase["answer"] == 256
    assert solution.usage.generated_tokens <= 2000


def test_hard_prompts_get_the_hard_bins_strategy(tmp_path: Path) -> None:
    policy = hand_policy()
    policy.thresholds = (0.0, 0.0)
    reasoner = reasoner_with("Final answer: 5")
    solution = reasoner.solve("What is 2+3?", 5000, "auto", policy_file=hand_policy_file(tmp_path, policy))
    assert solution.metrics["difficulty_bin"] == "hard"
    assert solution.metrics["chosen_strategy"] == "self_consistency"
    assert solution.usage.generated_tokens <= 5000


def test_trace_shows_estimation_then_the_chosen_subtree(scripted_reasoner: Reasoner) -> None:
    graph = scripted_reasoner.solve("What is 2+3?", 600, "auto").trace
    roots = [node for node in graph.nodes if graph.in_degree(node) == 0]
    assert [graph.nodes[node]["kind"] for node in roots] == ["estimate"]
    kinds = {graph.nodes[node]["kind"] for node in graph.successors(roots[0])}
    assert kinds == {"estimate", "answer"}


def test_batch_split_never_exceeds_the_total_estimation_included() -> None:
    reasoner = reasoner_with(LONG)
    solutions = reasoner.solve_many(["1+1?", "2+2?", "3+3?"], 1200, "auto")
    assert sum(solution.budget.tokens for solution in solutions) <= 1200
    assert sum(solution.usage.generated_tokens for solution in solutions) <= 1200
    assert all(solution.usage.generated_by_phase["estimation"] > 0 for solution in solutions)


def test_batch_budget_below_the_least_answer_per_prompt_is_refused_before_spending() -> None:
    backend = ScriptedBackend("Final answer: 5")
    reasoner = Reasoner(backend=backend, profile="smollm2")
    with pytest.raises(BudgetError, match="least answer"):
        reasoner.solve_many(["1+1?", "2+2?", "3+3?"], 10, "auto")
    assert backend.requests == []


def test_tight_batch_degrades_and_every_estimated_prompt_is_answered() -> None:
    disagreeing = ["Final answer: 1", "Final answer: 2", "Final answer: 3", LONG]
    reasoner = reasoner_with(disagreeing * 20)
    prompts = [f"What is {index} + {index}?" for index in range(8)]
    solutions = reasoner.solve_many(prompts, Budget(tokens=1600), "auto")
    assert sum(solution.usage.generated_tokens for solution in solutions) <= 1600
    for solution in solutions:
        answered = solution.usage.generated_tokens - solution.usage.generated_by_phase.get("estimation", 0)
        assert answered > 0
        assert solution.metrics["chosen_budget"] <= 1600 // 8


def test_batch_too_tight_to_pay_estimates_skips_them_and_still_answers_all(tmp_path: Path) -> None:
    # The pilot's 72 tokens would leave 28 of each prompt's 100, less than the cheapest configuration (64).
    backend = ScriptedBackend(LONG)
    reasoner = Reasoner(backend=backend, profile="smollm2")
    prompts = [f"{index}+1?" for index in range(8)]
    solutions = reasoner.solve_many(prompts, Budget(tokens=8 * 100), "auto", policy_file=hand_policy_file(tmp_path))
    assert all(solution.metrics["estimator"] == "none" for solution in solutions)
    assert all(solution.metrics["estimate_skipped"] for solution in solutions)
    assert all(solution.usage.generated_by_phase.get("estimation", 0) == 0 for solution in solutions)
    assert sum(solution.usage.generated_tokens for solution in solutions) <= 800


def test_a_configuration_that_refuses_its_budget_unspent_becomes_direct(tmp_path: Path) -> None:
    policy = hand_policy()
    policy.choices["normal"] = Choice("self_eval", 600, {"policy": "prune", "checkpoints": [500]})
    policy.curves["normal"] = [policy.choices["normal"]]
    path = tmp_path / "policy.json"
    policy.save(path)
    solution = reasoner_with(LONG).solve("What is 2+3?", 600, "auto", estimator="none", policy_file=str(path))
    assert solution.metrics["configuration_degraded"] is True
    assert solution.metrics["chosen_strategy"] == "direct"
    assert solution.usage.generated_tokens <= 600


def test_unknown_estimator_is_a_strategy_error(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(StrategyError, match="unknown estimator 'oracle'"):
        scripted_reasoner.solve("What is 2+3?", 600, "auto", estimator="oracle")


def test_missing_policy_file_is_a_policy_error(scripted_reasoner: Reasoner, tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no policy file"):
        scripted_reasoner.solve("What is 2+3?", 600, "auto", policy_file=str(tmp_path / "none.json"))


def test_budget_too_small_for_estimation_skips_it_and_answers(scripted: ScriptedBackend, tmp_path: Path) -> None:
    reasoner = Reasoner(backend=scripted, profile="smollm2")
    solution = reasoner.solve("What is 2+3?", 40, "auto", policy_file=hand_policy_file(tmp_path))
    assert solution.metrics["estimate_skipped"] is True
    assert solution.usage.generated_by_phase.get("estimation", 0) == 0
    assert solution.answer == "5"


def test_a_policy_learned_on_one_estimator_refuses_another(tmp_path: Path) -> None:
    policy = hand_policy()
    policy.estimator = EstimatorSpec("pilot", entropy_weight=0.0)
    path = tmp_path / "policy.json"
    policy.save(path)
    reasoner = reasoner_with("Final answer: 5")
    with pytest.raises(StrategyError, match="learned on the 'pilot' estimator"):
        reasoner.solve("What is 2+3?", 600, "auto", estimator="probe", policy_file=str(path))
    assert reasoner.solve("What is 2+3?", 600, "auto", policy_file=str(path)).metrics["estimator"] == "pilot"


def test_hidden_estimator_without_a_probe_is_refused(scripted_reasoner: Reasoner, tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="needs a trained probe"):
        scripted_reasoner.solve("What is 2+3?", 600, "auto", estimator="hidden", policy_file=hand_policy_file(tmp_path))


@pytest.mark.engine
def test_auto_solves_on_the_real_engine_within_its_budget(engine_reasoner: Reasoner) -> None:
    solution = engine_reasoner.solve("What is 3 + 4?", 160, "auto", estimator="probe")
    metrics = solution.metrics
    assert solution.usage.generated_tokens <= 160
    assert solution.usage.generated_by_phase["estimation"] == metrics["estimator_tokens"]
    # The built-in policy's bin for that difficulty, and its choice in what the estimate left.
    policy = default_policy()
    expected_bin = policy.bin_of(float(metrics["difficulty"]))  # type: ignore[arg-type]
    expected = policy.choose(expected_bin, 160 - int(metrics["estimator_tokens"]))  # type: ignore[arg-type]
    assert metrics["difficulty_bin"] == expected_bin
    assert (metrics["chosen_strategy"], metrics["chosen_budget"]) == (expected.strategy, expected.budget)


@pytest.mark.engine
def test_eight_prompts_in_1600_tokens_are_all_answered_on_the_real_engine(engine_reasoner: Reasoner) -> None:
    prompts = [f"What is {index} + {index + 3}?" for index in range(8)]
    solutions = engine_reasoner.solve_many(prompts, Budget(tokens=1600), "auto")
    assert sum(solution.usage.generated_tokens for solution in solutions) <= 1600
    for solution in solutions:
        estimation = solution.usage.generated_by_phase.get("estimation", 0)
        assert estimation == solution.metrics["estimator_tokens"]
        assert solution.usage.generated_tokens > estimation


@pytest.mark.engine
def test_auto_on_the_engine_runs_each_bins_configuration(engine_reasoner: Reasoner, tmp_path: Path) -> None:
    # A probe on the prompt's digit count alone: sigmoid(2 * digits - 2) is 0.12, 0.5 and 0.88 for
    # 0, 1 and 2 digits, one prompt per bin. Each bin runs something else; forced lengths make every
    # request spend its whole share, so the answer tokens and requests show what ran.
    probe = Probe(("prompt_digits",), np.array([2.0]), -2.0, np.array([0.0]), np.array([1.0]))
    policy = hand_policy()
    policy.estimator = EstimatorSpec("probe", probe)
    policy.choices = {
        "easy": Choice("direct", 16),
        "normal": Choice("self_consistency", 32, {"n": 2}),
        "hard": Choice("self_consistency", 48, {"n": 3}),
    }
    policy.curves = {name: [choice] for name, choice in policy.choices.items()}
    path = tmp_path / "policy.json"
    policy.save(path)
    prompts = ["Name a colour.", "Name 1 colour.", "Name 12 colours."]
    solutions = forced(engine_reasoner).solve_many(prompts, 64, "auto", budget_per_prompt=True, policy_file=str(path))
    ran = [
        (
            solution.metrics["difficulty_bin"],
            solution.metrics["chosen_strategy"],
            solution.metrics["chosen_budget"],
            solution.usage.generated_by_phase["answer"],
            sum(attrs["kind"] == "answer" for _, attrs in solution.trace.nodes(data=True)),
        )
        for solution in solutions
    ]
    assert ran == [
        ("easy", "direct", 16, 16, 1),
        ("normal", "self_consistency", 32, 32, 2),
        ("hard", "self_consistency", 48, 48, 3),
    ]
    assert [solution.metrics["difficulty"] for solution in solutions] == [0.1192, 0.5, 0.8808]
