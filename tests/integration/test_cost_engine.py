"""`Usage.cost` and `Budget(cost=...)` on the real engine: the cost model over the engine's own counts."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest

from reasoner import Budget, Reasoner
from reasoner.cost import CostModel, ModelShape
from reasoner.engines.base import Backend, Chunk, Prompt, SamplingSpec
from reasoner.engines.forced_lengths import ForcedLengths
from reasoner.models import embedded_model_dir
from reasoner.testing import sharing_engine

pytestmark = pytest.mark.engine

PROMPT = "What is 17 * 23? Work it out step by step."


class EngineCounts(ForcedLengths):
    """Forced lengths that keep, per request, what the engine itself reported:
    [prompt tokens, cached prompt tokens, generated tokens]."""

    def __init__(self, inner: Backend):
        super().__init__(inner)
        self.counts: dict[str, list[int]] = {}

    def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        return self._counted(request_id, super().generate(request_id, prompt, sampling))

    async def _counted(self, request_id: str, stream: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        counts = self.counts.setdefault(request_id, [0, 0, 0])
        try:
            async for chunk in stream:
                counts[0] = max(counts[0], chunk.prompt_tokens)
                counts[1] = max(counts[1], chunk.cached_prompt_tokens)
                counts[2] += len(chunk.token_ids)
                yield chunk
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def cost_of_all(self, model: CostModel) -> int:
        return sum(model.eflops(*counts) for counts in self.counts.values())


@pytest.fixture
def counted(engine_reasoner: Reasoner) -> tuple[Reasoner, EngineCounts]:
    backend = EngineCounts(engine_reasoner.backend)
    return sharing_engine(engine_reasoner, backend), backend


def test_the_embedded_model_is_priced_from_its_config(engine_reasoner: Reasoner) -> None:
    assert engine_reasoner.cost_model is not None
    assert engine_reasoner.cost_model.shape == ModelShape.from_folder(embedded_model_dir())
    assert engine_reasoner.cost_model.shape.parameters == pytest.approx(134.5e6, rel=0.01)  # SmolLM2-135M


def test_usage_cost_is_the_cost_model_over_the_engines_own_counts(counted: tuple[Reasoner, EngineCounts]) -> None:
    reasoner, backend = counted
    model = reasoner.cost_model
    assert model is not None
    for strategy, tokens, options in (("self_consistency", 96, {"n": 3, "sample_tokens": 24}), ("direct", 32, {})):
        backend.counts.clear()
        solution = reasoner.solve(PROMPT, Budget(tokens=tokens), strategy, **options)
        assert solution.usage.generated_tokens == sum(counts[2] for counts in backend.counts.values())
        assert solution.usage.cost == backend.cost_of_all(model) > 0
    assert any(counts[1] for counts in backend.counts.values()), "the repeated prompt should hit the prefix cache"


def test_a_cost_budget_cuts_the_request_and_holds(counted: tuple[Reasoner, EngineCounts]) -> None:
    reasoner, backend = counted
    model = reasoner.cost_model
    assert model is not None
    reasoner.solve(PROMPT, Budget(tokens=4), "direct")
    prompt_tokens = next(iter(backend.counts.values()))[0]
    cap = float(model.eflops(prompt_tokens, 0, 30)) + 0.5
    backend.counts.clear()
    solution = reasoner.solve(PROMPT, Budget(tokens=400, cost=cap), "direct")
    assert solution.usage.generated_tokens == model.max_generated(prompt_tokens, math.floor(cap), 400) == 30
    assert solution.usage.cost is not None and solution.usage.cost <= cap
    for shared_cap in (cap * 2.5, cap * 4.0):
        backend.counts.clear()
        solution = reasoner.solve(PROMPT, Budget(tokens=400, cost=shared_cap), "self_consistency", n=4)
        assert solution.usage.cost == backend.cost_of_all(model) <= shared_cap
