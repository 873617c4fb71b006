from __future__ import annotations

from typing import Any

import pytest
from records_support import record

from cli.calibrate_command import calibration_problems
from controllers.calibration import acalibrate, entropy_shape, held_out_scores
from controllers.hidden_state import HiddenStateEstimator
from controllers.probe import train_probe
from reasoner import Budget, Reasoner, SuiteError
from reasoner.profiles import CODE_HINT
from reasoner.session import Session
from reasoner.testing import ScriptedBackend


def test_entropy_that_rises_with_difficulty_keeps_its_weight() -> None:
    shape = entropy_shape([0.1, 0.2, 0.5, 0.6, 0.8, 0.9], [0.0, 0.0, 0.5, 0.5, 1.0, 1.0])
    assert shape.shape == "rising"
    assert shape.entropy_weight > 0


def test_u_shaped_entropy_is_dropped_from_the_pilot_score() -> None:
    shape = entropy_shape([0.1, 0.2, 0.5, 0.6, 0.8, 0.9], [1.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    assert shape.shape == "U-shaped"
    assert shape.entropy_weight == 0.0


def two_problem_records() -> list[dict[str, Any]]:
    return [
        record(problem, strategy, budget, correct, budget // 4)
        for problem, solved in (("p0", True), ("p1", False), ("p2", True), ("p3", False))
        for strategy, budget, correct in (("direct", 64, solved), ("elastic", 256, True))
    ]


PROMPTS = {f"arith|p{index}": f"What is {index} + 1?" for index in range(4)}


async def test_calibration_bins_on_the_estimators_own_scores() -> None:
    backend = ScriptedBackend(["Final answer: 1", "Final answer: 2", "Final answer: 1"] * 8)
    result = await acalibrate(Reasoner(backend=backend, profile="smollm2"), two_problem_records(), PROMPTS, "pilot")
    assert result.policy.estimator is not None and result.policy.estimator.name == "pilot"
    assert result.entropy is not None
    assert result.estimator_tokens > 0
    low, high = result.policy.thresholds
    assert min(result.difficulties.values()) <= low <= high <= max(result.difficulties.values()) + 1e-9


async def test_probe_calibration_stores_a_trained_probe_in_the_policy() -> None:
    backend = ScriptedBackend("Final answer: 4")
    result = await acalibrate(Reasoner(backend=backend, profile="smollm2"), two_problem_records(), PROMPTS, "probe")
    assert result.policy.estimator is not None and result.policy.estimator.probe is not None
    assert result.probe_accuracy is not None


async def test_calibration_without_every_prompt_is_refused() -> None:
    reasoner = Reasoner(backend=ScriptedBackend("Final answer: 4"), profile="smollm2")
    with pytest.raises(SuiteError, match="no prompt for problem 'arith|p3'"):
        await acalibrate(reasoner, two_problem_records(), {key: PROMPTS[key] for key in list(PROMPTS)[:3]})


def test_held_out_scores_come_from_probes_that_never_saw_the_problem() -> None:
    # Features that only name the problem: a probe memorises them (P(wrong) near 0 or 1 on its
    # own training rows) but they say nothing about a problem it did not train on.
    rows = [{f"x{column}": float(row == column) for column in range(8)} for row in range(8)]
    wrong = [row % 2 == 0 for row in range(8)]
    memorised = train_probe(rows, wrong)
    assert all((memorised.predict(row) > 0.9) == label for row, label in zip(rows, wrong, strict=True))
    assert all(abs(score - 0.5) < 0.25 for score in held_out_scores(rows, wrong, 0.01))


async def test_trained_estimators_bin_on_held_out_scores_not_on_the_probes_own_fit() -> None:
    # Labels alternate over prompts whose mean input embeddings only tell them apart: the probe
    # stored in the policy fits its training problems, so thresholds cut on its own predictions
    # would see a separation no new prompt shows.
    records = [record(f"p{index}", "direct", 64, index % 2 == 1, 20) for index in range(8)]
    prompts = {f"arith|p{index}": f"What is {index} + {3 * index + 1}?" for index in range(8)}
    reasoner = Reasoner(backend=ScriptedBackend("Final answer: 4"), profile="smollm2")
    result = await acalibrate(reasoner, records, prompts, "hidden", representation="input_embeddings")
    assert result.policy.estimator is not None
    backend = reasoner.backend
    session = Session(backend, backend.tokenizer(), reasoner.profile, Budget(tokens=1))
    own_fit = HiddenStateEstimator(result.policy.estimator.probe, "input_embeddings")
    fitted = {key: (await own_fit.estimate(session, prompt)).difficulty for key, prompt in prompts.items()}
    wrong_keys = [f"arith|p{index}" for index in range(0, 8, 2)]
    right_keys = [f"arith|p{index}" for index in range(1, 8, 2)]
    assert min(fitted[key] for key in wrong_keys) > max(fitted[key] for key in right_keys)
    assert min(result.difficulties[key] for key in wrong_keys) < max(result.difficulties[key] for key in right_keys)
    assert result.probe_accuracy is not None and result.probe_accuracy < 1.0


async def test_a_trained_estimator_needs_three_problems_for_held_out_scores() -> None:
    records = [record(f"p{index}", "direct", 64, index == 0, 20) for index in range(2)]
    reasoner = Reasoner(backend=ScriptedBackend("Final answer: 4"), profile="smollm2")
    with pytest.raises(SuiteError, match="at least 3 calibration problems"):
        await acalibrate(reasoner, records, {f"arith|p{index}": "1 + 1?" for index in range(2)}, "probe")


async def test_code_problems_are_estimated_in_their_own_answer_format() -> None:
    # Every pilot attempt writes the same function: as code the three answers agree (difficulty 0);
    # read as math there is no answer in them and the pilot would call them all different.
    backend = ScriptedBackend("```python\ndef add(a, b):\n    return a + b\n```")
    records = [record(f"p{index}", "direct", 64, index < 2, 20, suite="mbpp") for index in range(4)]
    prompts = {f"mbpp|p{index}": f"Write add(a, b) #{index}." for index in range(4)}
    reasoner = Reasoner(backend=backend, profile="smollm2")
    result = await acalibrate(reasoner, records, prompts, "pilot", answer_formats=dict.fromkeys(prompts, "code"))
    assert set(result.difficulties.values()) == {0.0}
    assert backend.requests and all(CODE_HINT.strip() in request.prompt_text for request in backend.requests)


def test_the_calibrate_command_gives_each_problem_its_suites_answer_format() -> None:
    records = [{"suite": "mbpp", "problem_id": "mbpp-11"}, {"suite": "arith", "problem_id": "arith-s0-d1-0"}]
    problems = calibration_problems(records)
    assert problems["mbpp|mbpp-11"][1] == "code"
    assert problems["arith|arith-s0-d1-0"] == ("What is 20 + 3?", "math")
