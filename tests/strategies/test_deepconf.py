from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, CapabilityError, Reasoner, StrategyError
from reasoner.engines.base import Capabilities
from reasoner.testing import ScriptedBackend, ScriptedToken

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
    solution = reasoner.solve("q", budget=budget, strategy="deepconf", mode=mode, n=n, n_init=1, window=4, top_k=2)
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


@pytest.mark.engine
def test_deepconf_online_on_the_real_engine(engine_reasoner: Reasoner) -> None:
    # a product the small model gets wrong in many ways, sampled hot: the warm-up rarely agrees
    solution = engine_reasoner.solve(
        "What is 487 * 39?",
        budget=800,
        strategy="deepconf",
        n=8,
        n_init=3,
        window=4,
        eta=50,
        tau=0.95,
        parallel=3,
        temperature=1.0,
        sample_tokens=64,
    )
    metrics = solution.metrics
    assert isinstance(metrics["threshold"], float) and metrics["threshold"] > 0
    assert metrics["traces"] == 8 or metrics["stopped_by"] == "consensus"
    assert solution.usage.generated_tokens <= 800
    nodes = answers_nodes(solution.trace)
    assert len(nodes) == metrics["traces"]
    assert sum(node["tokens"] for node in nodes) == solution.usage.generated_tokens
    for node in nodes:
        if "aborted_at" in node:
            assert node["finish_reason"] == "abort" and node["tokens"] >= node["aborted_at"] >= 4
            assert node["voted"] is False and node["lowest_group_confidence"] < metrics["threshold"]
    assert metrics["aborted"] == sum("aborted_at" in node for node in nodes)
    assert metrics["voted"] == sum(node["voted"] for node in nodes)
