"""The pooling engines (step embedder, prompt encoder, PRM) share one request and one error mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from engine_support import FakeEngine
from vllm.v1.engine.exceptions import EngineDeadError

from controllers.hidden_state import PooledPromptEncoder
from reasoner import EngineError
from reasoner.engines.pooling import PoolingEngineOwner
from reasoner.models import provision_embedded_model
from strategies.scoring_prm import PRMFormat, PRMScorer
from strategies.step_embedders import PoolingEmbedder

Use = Callable[[Any], Awaitable[Any]]


def embedder() -> tuple[PoolingEngineOwner, Use]:
    return PoolingEmbedder(model="minilm-stand-in"), lambda owner: owner.embed_texts(["a step"])


def encoder() -> tuple[PoolingEngineOwner, Use]:
    return PooledPromptEncoder("encoder-stand-in"), lambda owner: owner.represent([1, 2, 3])


def prm() -> tuple[PoolingEngineOwner, Use]:
    plain = PRMFormat("plain", step_tag="\n", chat=False)
    scorer = PRMScorer(str(provision_embedded_model()), prm_format=plain)
    return scorer, lambda owner: owner.step_rewards("What is 2 + 2?", ["2 + 2 = 4"])


OWNERS = pytest.mark.parametrize("make", [embedder, encoder, prm], ids=["embedder", "encoder", "prm"])


def serve(owner: PoolingEngineOwner, monkeypatch: pytest.MonkeyPatch, *engines: FakeEngine) -> None:
    queue = list(engines)
    monkeypatch.setattr(owner, "_build_engine", lambda: queue.pop(0))


@OWNERS
async def test_a_pooling_engine_that_dies_mid_request_is_dropped_and_the_next_call_starts_afresh(
    make: Callable[[], tuple[PoolingEngineOwner, Use]], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, use = make()
    dead, fresh = FakeEngine(fail=EngineDeadError()), FakeEngine()
    serve(owner, monkeypatch, dead, fresh)
    with pytest.raises(EngineError, match=f"{owner.engine_label()} died"):
        await use(owner)
    assert (owner.running, dead.shutdowns, owner.restarts) == (False, 1, 1)
    await use(owner)
    assert fresh.requests >= 1 and owner.starts == 2
    owner.close()
    assert fresh.shutdowns == 1


@OWNERS
async def test_a_refused_pooling_request_is_an_engine_error_and_the_engine_stays(
    make: Callable[[], tuple[PoolingEngineOwner, Use]], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, use = make()
    engine = FakeEngine(fail=ValueError("task not supported"))
    serve(owner, monkeypatch, engine)
    with pytest.raises(EngineError, match="refused .*task not supported") as caught:
        await use(owner)
    assert type(caught.value) is EngineError
    assert owner.running and engine.shutdowns == 0
    owner.close()


async def test_a_pooling_request_answered_with_nothing_is_an_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    owner, use = encoder()
    engine = FakeEngine()

    async def no_output(prompt: dict[str, Any], params: Any, request_id: str) -> Any:
        for output in ():
            yield output

    monkeypatch.setattr(engine, "encode", no_output)
    serve(owner, monkeypatch, engine)
    with pytest.raises(EngineError, match="returned no output"):
        await use(owner)
    owner.close()
