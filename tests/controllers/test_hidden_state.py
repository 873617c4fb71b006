from __future__ import annotations

import asyncio

import numpy as np
import pytest

from controllers.hidden_state import HiddenStateEstimator, prompt_encoder
from controllers.probe import train_probe
from reasoner import Budget, CapabilityError, Reasoner, StrategyError
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend


async def scripted_session() -> Session:
    backend = ScriptedBackend("Final answer: 4")
    await backend.start()
    return Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=1))


async def test_input_embedding_fallback_generates_nothing_and_says_it_ran() -> None:
    session = await scripted_session()
    estimate = await HiddenStateEstimator(representation="input_embeddings").estimate(session, "What is 2+2?")
    assert estimate.tokens == 0
    assert session.ledger.requests == 0
    assert estimate.representation == "input_embeddings"
    assert len(estimate.features) == (await session.backend.input_embeddings()).shape[1]


async def test_a_trained_probe_turns_the_representation_into_the_difficulty() -> None:
    session = await scripted_session()
    estimator = HiddenStateEstimator(representation="input_embeddings")
    rows = [(await estimator.estimate(session, f"What is {n} + {n}?")).features for n in range(6)]
    probe = train_probe(rows, [n % 2 == 0 for n in range(6)])
    estimate = await HiddenStateEstimator(probe, "input_embeddings").estimate(session, "What is 3 + 3?")
    assert estimate.difficulty == pytest.approx(probe.predict(estimate.features))


async def test_the_engine_representation_needs_a_local_vllm_model() -> None:
    with pytest.raises(CapabilityError, match="representation='input_embeddings'"):
        await HiddenStateEstimator().estimate(await scripted_session(), "What is 2+2?")


def test_an_unknown_representation_is_a_strategy_error() -> None:
    with pytest.raises(StrategyError, match="unknown representation 'cls'"):
        HiddenStateEstimator(representation="cls")


@pytest.mark.engine
def test_the_pooling_engine_gives_a_hidden_state_that_tells_prompts_apart() -> None:
    # The estimator runs its own pooling engine: the Reasoner's generation engine is never started, so this
    # test needs no shared engine (and runs beside the engine tests, not after them).
    reasoner = Reasoner()
    backend = reasoner.backend

    async def estimate(prompts: tuple[str, ...]) -> list[tuple[np.ndarray, str | None]]:
        found = []
        for prompt in prompts:
            session = Session(backend, backend.tokenizer(), reasoner.profile, Budget(tokens=1))
            result = await HiddenStateEstimator().estimate(session, prompt)
            assert (result.tokens, session.ledger.requests) == (0, 0)
            found.append((np.array(list(result.features.values())), result.representation))
        encoder = prompt_encoder(backend.model.source)  # type: ignore[attr-defined]
        assert encoder.running and encoder.starts == 1
        encoder.close()
        return found

    (easy, representation), (hard, _) = asyncio.run(
        estimate(("What is 2 + 2?", "Compute 48213 * 9177 - 3361 * 28 + 901."))
    )
    assert representation == "engine"
    assert easy.shape == hard.shape == (576,)
    assert np.isfinite(easy).all() and not np.allclose(easy, hard)
    assert not backend.running  # type: ignore[attr-defined]
