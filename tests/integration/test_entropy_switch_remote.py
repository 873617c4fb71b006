"""`entropy_switch` on two names of the shared `vllm serve` (one server, no new start), lengths forced.

The same model answers under both names, so the two share a tokenizer and a prefix cache. A wrapper
records the logprobs the server sent for every request; from them the test recomputes each kept
token's entropy and checks that every switch sits exactly at the first token of its segment (after
`min_segment`) whose rolling entropy crosses the threshold, and that no earlier token crossed. The
threshold is below any entropy the engine can report, so the run hands over exactly once, at
`min_segment`, whatever the model writes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reasoner import Reasoner, Solution
from reasoner.engines.base import Backend, Chunk, Prompt, SamplingSpec
from reasoner.engines.forced_lengths import ForcedLengths
from reasoner.engines.remote import RemoteBackend
from reasoner.engines.vllm_server import VLLMServer
from strategies.soft_tokens import top_k_distribution

pytestmark = pytest.mark.engine

GENERATED = "vllm:generation_tokens_total"
COUNTERS = (GENERATED, "vllm:prefix_cache_hits_total", "vllm:prompt_tokens_total")
QUESTION = "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many in all?"
BUDGET = 96
OPTIONS: dict[str, Any] = {"window": 4, "min_segment": 6, "top_k": 5}
BLOCK = 32  # the fixture server's --block-size


class Recorded(ForcedLengths):
    """Forced lengths, and every request's logprobs as the server sent them, by request id."""

    def __init__(self, inner: Backend):
        super().__init__(inner)
        self.logprobs: dict[str, list[dict[int, float]]] = {}
        self.tokens: dict[str, int] = {}

    def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        return self._recorded(request_id, super().generate(request_id, prompt, sampling))

    async def _recorded(self, request_id: str, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        logprobs = self.logprobs.setdefault(request_id, [])
        self.tokens[request_id] = 0
        try:
            async for chunk in chunks:
                logprobs.extend(chunk.logprobs or ())
                self.tokens[request_id] += len(chunk.token_ids)
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()


def segments(solution: Solution) -> list[dict[str, Any]]:
    return [data for _, data in sorted(solution.trace.nodes(data=True))]


def check_switches(solution: Solution, recorders: dict[str, Recorded], threshold: float) -> None:
    """Every segment ends at its first crossing after min_segment tokens, and only there."""
    window: deque[float] = deque(maxlen=OPTIONS["window"])
    nodes = segments(solution)
    for index, node in enumerate(nodes):
        sent = recorders[node["model"]].logprobs[node["request_id"]]
        entropies = [top_k_distribution(position, OPTIONS["top_k"]).entropy for position in sent]
        kept = node["kept_tokens"]
        assert node["entropies"] == pytest.approx(entropies[:kept], abs=1e-4)
        on_small = node["model"] == "small"
        for position, entropy in enumerate(entropies[:kept], start=1):
            window.append(entropy)
            full = len(window) == window.maxlen
            rolling = sum(window) / len(window)
            crossed = full and (rolling > threshold if on_small else rolling < threshold)
            if position < kept:
                assert not (crossed and position >= OPTIONS["min_segment"]), (index, position, rolling)
            elif index < len(nodes) - 1:
                assert crossed and position >= OPTIONS["min_segment"], (index, position, rolling)
                assert node["switch_entropy"] == pytest.approx(rolling)


async def test_entropy_switch_hands_over_where_the_rolling_entropy_crosses(vllm_server: VLLMServer) -> None:
    reasoner = Reasoner(models={"small": {"endpoint": vllm_server.url}, "large": {"endpoint": vllm_server.url}})
    remotes = {name: target.backend for name, target in reasoner.models.items()}
    recorders = {name: Recorded(backend) for name, backend in remotes.items()}
    for name, target in reasoner.models.items():
        target.backend = recorders[name]
    counter = remotes["small"]
    assert isinstance(counter, RemoteBackend)
    try:
        await reasoner.astart()
        pilot = await reasoner.asolve(QUESTION, budget=BUDGET, strategy="entropy_switch", threshold=50.0, **OPTIONS)
        # A threshold below any entropy a real step has: the small model hands over at the first full window
        # past min_segment, and the large one never hands back, whatever the model writes (greedy text is not
        # reproducible on the CPU engine with other requests in flight). Handing back is tested on scripts.
        # A step's top-k entropy is positive, but tiny when the model is sure: a top token at logprob 0.0
        # and the rest near -25 give about 1e-9 nats, so 1e-6 saw whole confident runs without a switch.
        threshold = 1e-300
        before = (await counter.server_metrics())[vllm_server.root_url]
        solution = await reasoner.asolve(
            QUESTION, budget=BUDGET, strategy="entropy_switch", threshold=threshold, **OPTIONS
        )
        after = (await counter.server_metrics())[vllm_server.root_url]
    finally:
        await reasoner.aclose()
        for remote in remotes.values():
            await remote.close()
    assert pilot.metrics["switches"] == 0 and pilot.metrics["small_tokens"] == BUDGET
    usage = solution.usage
    counters = {name: after[name] - before[name] for name in COUNTERS}
    # A remote abort closes the stream; the tokens the server makes before it sees the close never reach
    # us, so the server's counter may run past what the ledger counted (up to 17 of 96 seen). A known
    # gap of remote aborts (issue 25's note), not of the switch rule this test checks.
    assert usage.generated_tokens <= BUDGET and usage.generated_tokens <= counters[GENERATED]
    for name, recorder in recorders.items():
        counted = usage.by_model[name].generated_tokens if name in usage.by_model else 0
        ran = [node["request_id"] for node in segments(solution) if node["model"] == name]
        assert counted == sum(recorder.tokens[request] for request in ran)
    assert solution.metrics["switches"] == 1 and len(segments(solution)) == 2
    assert solution.metrics["switch_points"] == str(OPTIONS["min_segment"])
    check_switches(solution, recorders, threshold)
    # Every segment's prompt (the question, then all the response so far) is served from the server's
    # prefix cache up to its last whole block: the question from the pilot, the response from the
    # requests that wrote it, on either name. (The remote backend learns a request's cache hits from
    # the stream's last event, which an aborted segment never reads, so the server's counter is the check.)
    question = pilot.usage.prompt_tokens
    served = sum((question + node["start"] - 1) // BLOCK * BLOCK for node in segments(solution))
    assert counters["vllm:prefix_cache_hits_total"] == served
    assert counters["vllm:prompt_tokens_total"] == usage.prompt_tokens
    assert solution.metrics["cost"] == usage.cost
