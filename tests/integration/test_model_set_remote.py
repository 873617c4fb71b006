"""Two models in one Reasoner, each an endpoint of the shared `vllm serve` (two names, one server, no new start).

Lengths are forced (`ignore_eos`), so what each model writes is known before the model runs: the
accounting per model, the budget shared by both and the server's own generation counter must agree,
for single-model solves, a request on each model, and the `cascade` strategy over both.
"""

from __future__ import annotations

import asyncio

import pytest

from reasoner import Outcome, Reasoner, Session, Strategy, register_strategy
from reasoner.engines.base import Backend
from reasoner.engines.forced_lengths import ForcedLengths
from reasoner.engines.remote import RemoteBackend
from reasoner.engines.vllm_server import VLLMServer

pytestmark = pytest.mark.engine

GENERATED = "vllm:generation_tokens_total"
QUESTION = "What is 12 + 30?"
ASKED = 30
BUDGET = 40
CASCADE_BUDGET = 80


@register_strategy
class ForcedPair(Strategy):
    """One request of `ASKED` tokens on "small", then one on "large", both in flight together."""

    name = "test_forced_pair"

    async def run(self, session: Session, prompt: str) -> Outcome:
        first = await session.start(prompt, max_tokens=ASKED, phase="answer", kind="answer", model="small")
        second = await session.start(prompt, max_tokens=ASKED, phase="answer", kind="answer", model="large")
        generations = await asyncio.gather(first.result(), second.result())
        return Outcome(generations[1].text, None)


async def generated_on(backend: Backend, server: VLLMServer) -> float:
    assert isinstance(backend, RemoteBackend)
    return (await backend.server_metrics())[server.root_url][GENERATED]


async def test_two_endpoint_models_count_their_own_tokens_and_share_one_budget(vllm_server: VLLMServer) -> None:
    reasoner = Reasoner(models={"small": {"endpoint": vllm_server.url}, "large": {"endpoint": vllm_server.url}})
    remotes = {name: target.backend for name, target in reasoner.models.items()}
    for target in reasoner.models.values():
        target.backend = ForcedLengths(target.backend)
    try:
        await reasoner.astart()
        counter = remotes["small"]
        deltas, solutions = [], []
        runs = [("small", "direct", BUDGET), ("large", "direct", BUDGET), ("small", "test_forced_pair", BUDGET)]
        for model, strategy, budget in [*runs, ("small", "cascade", CASCADE_BUDGET)]:
            before = await generated_on(counter, vllm_server)
            solutions.append(await reasoner.asolve(QUESTION, budget=budget, strategy=strategy, model=model))
            deltas.append(await generated_on(counter, vllm_server) - before)
    finally:
        await reasoner.aclose()
        for remote in remotes.values():
            await remote.close()
    on_small, on_large, pair, cascade = solutions
    assert list(on_small.usage.by_model) == ["small"] and on_small.usage.generated_tokens == deltas[0]
    assert list(on_large.usage.by_model) == ["large"] and on_large.usage.generated_tokens == deltas[1]
    # The pair asks 30 + 30 of a 40-token budget: the second request gets the 10 the first left.
    by_model = {name: each.generated_tokens for name, each in pair.usage.by_model.items()}
    assert by_model == {"small": ASKED, "large": BUDGET - ASKED} and deltas[2] == BUDGET
    assert {data["model"] for _, data in pair.trace.nodes(data=True)} == {"small", "large"}
    assert sum(each.requests for each in pair.usage.by_model.values()) == pair.usage.requests == 2
    # Whether the small model's samples agree is the model's choice; the accounting is not.
    cascade_by_model = {name: each.generated_tokens for name, each in cascade.usage.by_model.items()}
    assert cascade.usage.generated_tokens == deltas[3] <= CASCADE_BUDGET
    assert cascade_by_model["small"] <= CASCADE_BUDGET // 2 and sum(cascade_by_model.values()) == deltas[3]
    assert ("large" in cascade_by_model) == (cascade.metrics["escalations"] == 1)
