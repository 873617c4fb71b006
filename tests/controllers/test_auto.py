from __future__ import annotations

from pathlib import Path

import pytest

from controllers.estimators import EstimatorSpec
from controllers.policy import Choice, PolicyError, default_policy
from reasoner import Budget, BudgetError, Reasoner, StrategyError
from reasoner.testing import ScriptedBackend

LONG = " ".join(["step"] * 600) + "\n\nFinal answer: 5"


def reasoner_with(script: str | list[str]) -> Reasoner:
    return Reasoner(backend=ScriptedBackend(script), profile="smollm2")


def test_auto_reports_difficulty_bin_and_choice(scripted_reasoner: Reasoner) -> None:
    solution = scripted_reasoner.solve("What is 2+3?", 600, "auto")
    metrics = solution.metrics
    assert solution.answer == "5"
    assert metrics["difficulty_bin"] == "easy"
    assert metrics["chosen_strategy"] == "direct"
    assert metrics["chosen_budget"] == 256
    assert 0.0 <= float(metrics["difficulty"] or 0.0) <= 1.0  # type: ignore[arg-type]


def test_auto_charges_estimation_to_the_solve(scripted_reasoner: Reasoner) -> None:
    solution = scripted_reasoner.solve("What is 2+3?", 600, "auto")
    assert solution.usage.generated_by_phase["estimation"] == solution.metrics["estimator_tokens"]
    assert solution.usage.generated_tokens == sum(solution.usage.generated_by_phase.values())


def test_chosen_strategy_stays_within_the_chosen_budget() -> None:
    reasoner = reasoner_with(LONG)
    solution = reasoner.solve("What is 2+3?", 2000, "auto", estimator="probe")
    assert solution.metrics["chosen_budget"] == 256
    assert solution.usage.generated_by_phase["answer"] == 256
    assert solution.usage.generated_tokens <= 2000


def test_hard_prompts_get_the_hard_bins_strategy(tmp_path: Path) -> None:
    policy = default_policy()
    policy.thresholds = (0.0, 0.0)
    path = tmp_path / "policy.json"
    policy.save(path)
    reasoner = reasoner_with("Final answer: 5")
    solution = reasoner.solve("What is 2+3?", 5000, "auto", policy_file=str(path))
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


def test_batch_too_tight_to_pay_estimates_skips_them_and_still_answers_all() -> None:
    backend = ScriptedBackend(LONG)
    reasoner = Reasoner(backend=backend, profile="smollm2")
    solutions = reasoner.solve_many([f"{index}+1?" for index in range(8)], Budget(tokens=8 * 100), "auto")
    assert all(solution.metrics["estimator"] == "none" for solution in solutions)
    assert all(solution.metrics["estimate_skipped"] for solution in solutions)
    assert all(solution.usage.generated_by_phase.get("estimation", 0) == 0 for solution in solutions)
    assert sum(solution.usage.generated_tokens for solution in solutions) <= 800


def test_a_configuration_that_refuses_its_budget_unspent_becomes_direct(tmp_path: Path) -> None:
    policy = default_policy()
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


def test_budget_too_small_for_estimation_skips_it_and_answers(scripted: ScriptedBackend) -> None:
    reasoner = Reasoner(backend=scripted, profile="smollm2")
    solution = reasoner.solve("What is 2+3?", 40, "auto")
    assert solution.metrics["estimate_skipped"] is True
    assert solution.usage.generated_by_phase.get("estimation", 0) == 0
    assert solution.answer == "5"


def test_a_policy_learned_on_one_estimator_refuses_another(tmp_path: Path) -> None:
    policy = default_policy()
    policy.estimator = EstimatorSpec("pilot", entropy_weight=0.0)
    path = tmp_path / "policy.json"
    policy.save(path)
    reasoner = reasoner_with("Final answer: 5")
    with pytest.raises(StrategyError, match="learned on the 'pilot' estimator"):
        reasoner.solve("What is 2+3?", 600, "auto", estimator="probe", policy_file=str(path))
    assert reasoner.solve("What is 2+3?", 600, "auto", policy_file=str(path)).metrics["estimator"] == "pilot"


def test_hidden_estimator_without_a_probe_is_refused(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(StrategyError, match="needs a trained probe"):
        scripted_reasoner.solve("What is 2+3?", 600, "auto", estimator="hidden")


@pytest.mark.engine
def test_auto_solves_on_the_real_engine_within_its_budget(engine_reasoner: Reasoner) -> None:
    solution = engine_reasoner.solve("What is 3 + 4?", 160, "auto", estimator="probe")
    assert solution.usage.generated_tokens <= 160
    assert solution.usage.generated_by_phase["estimation"] == solution.metrics["estimator_tokens"]
    assert solution.metrics["difficulty_bin"] in ("easy", "normal", "hard")


@pytest.mark.engine
def test_eight_prompts_in_1600_tokens_are_all_answered_on_the_real_engine(engine_reasoner: Reasoner) -> None:
    prompts = [f"What is {index} + {index + 3}?" for index in range(8)]
    solutions = engine_reasoner.solve_many(prompts, Budget(tokens=1600), "auto")
    assert sum(solution.usage.generated_tokens for solution in solutions) <= 1600
    for solution in solutions:
        estimation = solution.usage.generated_by_phase.get("estimation", 0)
        assert estimation == solution.metrics["estimator_tokens"]
        assert solution.usage.generated_tokens > estimation
