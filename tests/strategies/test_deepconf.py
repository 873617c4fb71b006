from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import AsyncIterator, Sequence

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, CapabilityError, Reasoner, StrategyError, get_strategy
from reasoner.engines.base import Backend, Capabilities, Chunk, Prompt, SamplingSpec
from reasoner.testing import ForcedLengths, ScriptedBackend, ScriptedToken, sharing_engine

SURE = -0.01, -9.0  # top-2 logprobs of a confident token: confidence 4.505
UNSURE = -0.7, -0.7  # a flat one: confidence 0.7


def token(text: str, logprobs: tuple[float, float]) -> ScriptedToken:
    return ScriptedToken(text, {text: logprobs[0], " zz": logprobs[1]})


def trace(answer: int, words: int = 4, unsure_from: int | None = None, sure: tuple[float, float] = SURE):
    """` w w ... Final answer: <answer>`, confident, or flat from token `unsure_from` (1-based) on."""
    pieces = [" w"] * words + [" Final", " answer:", f" {answer}"]
    return [
        token(piece, UNSURE if unsure_from is not None and position >= unsure_from else sure)
        for position, piece in enumerate(pieces, start=1)
    ]


def reasoner_for(traces: Sequence[list[ScriptedToken]], delay_s: float = 0.0) -> tuple[Reasoner, ScriptedBackend]:
    """Request i gets `traces[i]` (the last one repeated)."""
    counter = itertools.count()

    def respond(prompt: str) -> list[ScriptedToken]:
        return traces[min(next(counter), len(traces) - 1)]

    backend = ScriptedBackend(respond, delay_s=delay_s)
    return Reasoner(backend=backend, profile="smollm2"), backend


def answers_nodes(graph: nx.DiGraph) -> list[dict]:
    return [attrs for _, attrs in sorted(graph.nodes(data=True)) if attrs["kind"] == "answer"]


def test_online_aborts_a_low_confidence_trace_at_the_window_where_it_drops() -> None:
    reasoner, backend = reasoner_for([trace(1), trace(2), trace(3, words=40, unsure_from=7)], delay_s=0.002)
    solution = reasoner.solve(
        "q", budget=Budget(tokens=300), strategy="deepconf", n=3, n_init=2, window=4, top_k=2, tau=1.0
    )
    assert solution.metrics["threshold"] == pytest.approx(4.505)
    assert solution.metrics["aborted"] == 1
    aborted = answers_nodes(solution.trace)[2]
    # token 7 is the first flat one; the window of tokens 4..7 is the first whose mean is below 4.505
    assert aborted["aborted_at"] == 7
    assert aborted["finish_reason"] == "abort" and aborted["voted"] is False
    assert backend.requests[2].aborted and backend.requests[2].generated_tokens <= 8
    assert solution.usage.aborted_tokens_saved == solution.metrics["tokens_saved"] > 0
    assert solution.metrics["stopped_by"] == "n"


def test_a_trace_shorter_than_the_window_is_never_aborted_and_votes_only_when_confident_enough() -> None:
    low = (-0.3, -0.3)
    reasoner, backend = reasoner_for([trace(1), trace(1), trace(2, sure=low)], delay_s=0.001)
    solution = reasoner.solve("q", budget=300, strategy="deepconf", n=3, n_init=2, window=64, top_k=2, tau=1.0)
    assert solution.metrics["aborted"] == 0
    assert not any(record.aborted for record in backend.requests)
    assert solution.metrics["voted"] == 2  # the third finished, but below the warm-up threshold
    assert solution.answer == "1"


def test_online_stops_after_the_warmup_when_the_warmup_already_agrees() -> None:
    reasoner, backend = reasoner_for([trace(5)])
    solution = reasoner.solve("q", budget=600, strategy="deepconf", n=8, n_init=3, window=4, top_k=2)
    assert solution.answer == "5"
    assert len(backend.requests) == solution.metrics["traces"] == solution.metrics["warmup"] == 3
    assert solution.metrics["stopped_by"] == "consensus"
    assert solution.metrics["consensus"] == pytest.approx(1.0)


def test_reaching_the_consensus_cancels_the_traces_still_running() -> None:
    traces = [trace(5), trace(7), trace(5), trace(9, words=150)]
    reasoner, backend = reasoner_for(traces, delay_s=0.002)
    solution = reasoner.solve(
        "q", budget=2000, strategy="deepconf", n=10, n_init=2, window=4, top_k=2, tau=0.6, parallel=2
    )
    assert solution.answer == "5"
    assert solution.metrics["stopped_by"] == "consensus"
    assert solution.metrics["cancelled"] == 1 and solution.metrics["aborted"] == 0
    assert len(backend.requests) == 4 and backend.requests[3].aborted
    assert solution.metrics["consensus"] == pytest.approx(2 / 3, abs=0.01)


def test_offline_keeps_exactly_the_top_eta_percent_and_votes_by_confidence() -> None:
    # seven traces answer 1 with middling confidence, three answer 2 with the highest
    middling = [trace(1, sure=(-0.2 - 0.01 * i, -1.0)) for i in range(7)]
    confident = [trace(2, sure=(-0.01, -9.0 + i)) for i in range(3)]
    reasoner, _ = reasoner_for(middling + confident)
    solution = reasoner.solve("q", budget=600, strategy="deepconf", mode="offline", n=10, eta=30, top_k=2)
    assert solution.metrics["traces"] == 10
    assert solution.metrics["voted"] == 3
    assert solution.answer == "2"
    voted = [node for node in answers_nodes(solution.trace) if node["voted"]]
    others = [node for node in answers_nodes(solution.trace) if not node["voted"]]
    assert min(node["confidence"] for node in voted) > max(node["confidence"] for node in others)


def test_the_vote_is_weighted_by_confidence_not_by_count() -> None:
    weak = [trace(1, sure=(-0.5, -0.5)) for _ in range(3)]  # 3 x 0.5
    strong = [trace(2) for _ in range(2)]  # 2 x 4.505
    reasoner, _ = reasoner_for(weak + strong)
    solution = reasoner.solve("q", budget=600, strategy="deepconf", mode="offline", n=5, eta=100, top_k=2)
    assert solution.answer == "2"
    assert solution.metrics["consensus"] == pytest.approx(9.01 / 10.51, abs=1e-3)


def test_every_trace_asks_the_engine_for_top_k_logprobs_and_the_ledger_holds() -> None:
    reasoner, backend = reasoner_for([trace(1), trace(2), trace(3, words=30)])
    solution = reasoner.solve("q", budget=60, strategy="deepconf", n=6, n_init=2, window=4, top_k=3, tau=1.0)
    assert all(record.sampling.logprobs == 3 for record in backend.requests)
    assert solution.usage.generated_tokens <= 60
    tokens = sum(node["tokens"] for node in answers_nodes(solution.trace))
    assert tokens == solution.usage.generated_tokens


@given(
    budget=st.integers(min_value=40, max_value=400),
    n=st.integers(min_value=1, max_value=10),
    mode=st.sampled_from(["online", "offline"]),
)
@settings(max_examples=25, deadline=None)
def test_deepconf_never_spends_more_than_the_budget_nor_runs_more_than_n_traces(budget: int, n: int, mode: str) -> None:
    reasoner, backend = reasoner_for([trace(1, words=20), trace(2, words=3), trace(3, words=30, unsure_from=5)])
    warmup = {"n_init": 1} if mode == "online" else {}
    solution = reasoner.solve("q", budget=budget, strategy="deepconf", mode=mode, n=n, window=4, top_k=2, **warmup)
    assert solution.usage.generated_tokens <= budget
    assert len(backend.requests) == solution.metrics["traces"] <= n


class _NoLogprobs(ScriptedBackend):
    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(super().capabilities, logprobs=False, name="no-logprobs")


def test_a_backend_without_logprobs_is_refused_up_front() -> None:
    backend = _NoLogprobs("Final answer: 1")
    with pytest.raises(CapabilityError, match="logprobs"):
        Reasoner(backend=backend, profile="smollm2").solve("q", budget=100, strategy="deepconf")
    assert backend.requests == []


def test_top_k_deeper_than_the_backend_returns_is_an_option_error() -> None:
    reasoner, _ = reasoner_for([trace(1)])
    with pytest.raises(StrategyError, match="top_k=50"):
        reasoner.solve("q", budget=100, strategy="deepconf", top_k=50)


def test_more_warmup_traces_than_traces_is_an_option_error() -> None:
    reasoner, _ = reasoner_for([trace(1)])
    with pytest.raises(StrategyError, match="n_init"):
        reasoner.solve("q", budget=100, strategy="deepconf", n=2, n_init=4)


class UnsureAfter(ForcedLengths):
    """The shared engine, forced to full lengths; every request after the first `sure` reports each top
    log-probability as -1.0, a token confidence of 1.0. A real top-20 distribution cannot go below
    log(20) = 3.0 (its 20 probabilities sum to at most 1), so those requests fall below any threshold
    the real warm-up sets."""

    def __init__(self, inner: Backend, sure: int):
        super().__init__(inner)
        self.sure = sure
        self.started = 0

    def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        self.started += 1
        chunks = super().generate(request_id, prompt, sampling)
        return chunks if self.started <= self.sure else _flattened(chunks)


async def _flattened(chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    try:
        async for chunk in chunks:
            flat = tuple(dict.fromkeys(position, -1.0) for position in chunk.logprobs or ())
            yield dataclasses.replace(chunk, logprobs=flat if chunk.logprobs is not None else None)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


@pytest.mark.engine
def test_deepconf_online_on_the_real_engine_aborts_the_traces_below_the_warmup_threshold(
    engine_reasoner: Reasoner,
) -> None:
    # Three real warm-up traces set the threshold (eta=100: the least of their lowest-group confidences);
    # the three traces after them are flat, so each is aborted in the engine at its first full window.
    # Text answers (the whole reply) of hot samples differ, so no consensus stops the run early.
    reasoner = sharing_engine(engine_reasoner, UnsureAfter(engine_reasoner.backend, sure=3))
    solution = reasoner.solve(
        "Tell me a long story about a red fox.",
        budget=200,
        strategy="deepconf",
        answer_format="text",
        n=6,
        n_init=3,
        window=4,
        eta=100,
        parallel=3,
        temperature=1.0,
        sample_tokens=32,
    )
    metrics = solution.metrics
    nodes = answers_nodes(solution.trace)
    warmup, later = nodes[:3], nodes[3:]
    assert [node["warmup"] for node in nodes] == [True] * 3 + [False] * 3
    assert metrics["threshold"] == pytest.approx(min(node["lowest_group_confidence"] for node in warmup))
    assert float(metrics["threshold"]) >= math.log(20) - 0.01  # type: ignore[arg-type]
    assert all(node["tokens"] == 32 and node["finish_reason"] == "length" and node["voted"] for node in warmup)
    for node in later:
        assert node["aborted_at"] == 4 and node["finish_reason"] == "abort" and 4 <= node["tokens"] < 32
        assert node["voted"] is False and node["lowest_group_confidence"] == pytest.approx(1.0)
    assert (metrics["traces"], metrics["aborted"], metrics["cancelled"], metrics["voted"]) == (6, 3, 0, 3)
    assert metrics["stopped_by"] == "n"
    saved = sum(32 - node["tokens"] for node in later)
    assert solution.usage.aborted_tokens_saved == metrics["tokens_saved"] == saved
    assert sum(node["tokens"] for node in nodes) == solution.usage.generated_tokens <= 200


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"mode": "offline", "n_init": 2}, "option 'n_init' applies only with mode='online', not mode='offline'"),
        ({"mode": "offline", "tau": 0.9}, "option 'tau' applies only with mode='online'"),
        ({"mode": "offline", "parallel": 2}, "option 'parallel' applies only with mode='online'"),
        (
            {"tail_tokens": 64},
            "option 'tail_tokens' applies only with trace_score='tail', not trace_score='lowest_group'",
        ),
    ],
)
def test_an_option_of_another_mode_or_score_is_refused_naming_it(options: dict[str, object], named: str) -> None:
    with pytest.raises(StrategyError, match=re.escape(named)):
        get_strategy("deepconf").from_options(options)
