from __future__ import annotations

from typing import Any

import pytest
from records_support import record

from controllers.calibration import acalibrate, entropy_shape
from reasoner import Reasoner, SuiteError
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
