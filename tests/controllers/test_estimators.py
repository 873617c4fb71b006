from __future__ import annotations

import pytest

from controllers.estimators import (
    EstimatorSpec,
    NoEstimator,
    PilotEstimator,
    ProbeEstimator,
    SelfEvalEstimator,
    make_estimator,
)
from controllers.probe import train_probe
from reasoner import Budget, StrategyError
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend


async def session_on(script: str | list[str], tokens: int = 500) -> Session:
    backend = ScriptedBackend(script)
    await backend.start()
    return Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=tokens))


async def test_pilot_rates_agreeing_attempts_easier_than_disagreeing_ones() -> None:
    agreeing = await PilotEstimator().estimate(await session_on("Final answer: 4"), "2+2?")
    disagreeing = await PilotEstimator().estimate(
        await session_on(["Final answer: 1", "Final answer: 2", "Final answer: 3"]), "2+2?"
    )
    assert agreeing.features["disagreement"] == 0.0
    assert disagreeing.features["disagreement"] == 1.0
    assert disagreeing.difficulty > agreeing.difficulty


@pytest.mark.parametrize("estimator", [PilotEstimator(), SelfEvalEstimator(), ProbeEstimator()])
async def test_estimator_tokens_are_charged_to_the_session(estimator: PilotEstimator) -> None:
    session = await session_on("The answer is four.\n\nFinal answer: 4")
    estimate = await estimator.estimate(session, "2+2?")
    assert estimate.tokens > 0
    assert estimate.tokens == session.ledger.generated_tokens
    assert session.ledger.generated_by_phase["estimation"] >= estimate.tokens - 1
    assert estimate.tokens <= estimator.cost_cap


async def test_estimation_is_one_estimate_subtree_in_the_trace() -> None:
    session = await session_on("Final answer: 4")
    estimate = await PilotEstimator(samples=2).estimate(session, "2+2?")
    graph = session.trace.graph
    assert graph.nodes[estimate.node]["kind"] == "estimate"
    assert [graph.nodes[child]["kind"] for child in graph.successors(estimate.node)] == ["estimate", "estimate"]


async def test_probe_estimator_reports_the_trained_probability() -> None:
    rows = [
        {"prompt_tokens": float(n), "prompt_digits": 2.0, "first_entropy": 0.0, "first_top_prob": 1.0}
        for n in range(10, 30)
    ]
    probe = train_probe(rows, [row["prompt_tokens"] > 20 for row in rows])
    estimate = await ProbeEstimator(probe).estimate(await session_on("Final answer: 4"), "2+2?")
    assert estimate.difficulty == pytest.approx(probe.predict(estimate.features))


def test_unknown_estimator_lists_the_known_ones() -> None:
    with pytest.raises(StrategyError, match="unknown estimator 'oracle'; known: pilot, self_eval, probe, hidden"):
        make_estimator(EstimatorSpec("oracle"))


async def test_pilot_without_entropy_weight_is_its_disagreement_alone() -> None:
    session = await session_on(["Final answer: 1", "Final answer: 2", "Final answer: 1"])
    estimate = await PilotEstimator(entropy_weight=0.0).estimate(session, "2+2?")
    assert estimate.difficulty == pytest.approx(estimate.features["disagreement"])


async def test_no_estimator_spends_nothing_and_lands_in_the_middle() -> None:
    session = await session_on("Final answer: 4")
    estimate = await NoEstimator().estimate(session, "2+2?")
    assert (estimate.difficulty, estimate.tokens, session.ledger.requests) == (0.5, 0, 0)
