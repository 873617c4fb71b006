"""Two in-process vLLM engines in one Reasoner (`models={"small": ..., "large": ...}`), started once.

Both engines run the embedded model under two names, each with a small KV cache, on the Reasoner's
one event loop. Every solve is checked against the engines' own counters: vLLM's
`vllm:generation_tokens` counter of each engine (its Prometheus logger's, read per engine, since two
engines in one process share the metrics registry) and each engine's prefix-cache hits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reasoner import Budget, Reasoner, Solution
from reasoner.engines.forced_lengths import ForcedLengths
from reasoner.engines.vllm_local import VLLMBackend
from tests.integration.test_route_remote import ANSWER_TOKENS, BUDGET, EASY, ESTIMATE_TOKENS, HARD, routing_policy

pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("two_engines")]

ENGINE_ARGS: dict[str, Any] = {
    "max_model_len": 1024,
    "kv_cache_memory_bytes": 128 << 20,
    "enforce_eager": True,
    "max_num_seqs": 16,
}
QUESTION = "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many in all?"
OPTIONS: dict[str, Any] = {"window": 4, "min_segment": 6, "top_k": 5}
# Below any entropy a real step has (a confident step's top-k entropy is about 1e-9 nats): the small
# model hands over at its first full window past min_segment, and the large one never hands back.
THRESHOLD = 1e-300


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Reasoner, Reasoner]]:
    """The two-engine Reasoner, and a sibling on its engines whose requests run to their max_tokens."""
    reasoner = Reasoner(models={"small": {"engine_args": ENGINE_ARGS}, "large": {"engine_args": ENGINE_ARGS}})
    reasoner.start()
    forced = Reasoner(
        models={
            name: {"backend": ForcedLengths(target.backend), "profile": target.profile, "cost_model": target.cost_model}
            for name, target in reasoner.models.items()
        }
    )
    forced._portal, forced._loop, forced._limiter = reasoner._portal, reasoner._loop, reasoner._limiter
    yield reasoner, forced
    reasoner.close()
    assert not any(engine(reasoner, name).running for name in ("small", "large"))


def engine(reasoner: Reasoner, name: str) -> VLLMBackend:
    backend = reasoner.models[name].backend
    assert isinstance(backend, VLLMBackend)
    return backend


def generated_counter(backend: VLLMBackend) -> float:
    """The engine's own `vllm:generation_tokens` counter (its Prometheus stat logger's)."""
    from vllm.v1.metrics.loggers import PrometheusStatLogger

    for logger in backend.engine.logger_manager.stat_loggers:
        if isinstance(logger, PrometheusStatLogger):
            return sum(
                sample.value
                for child in logger.counter_generation_tokens.values()
                for family in child.collect()
                for sample in family.samples
                if sample.name.endswith("_total")
            )
    raise AssertionError("the engine has no Prometheus stat logger")


def counters(reasoner: Reasoner) -> dict[str, tuple[float, int]]:
    """Per model: (generated tokens, prefix-cache hits) as its engine counts them."""
    return {
        name: (generated_counter(engine(reasoner, name)), engine(reasoner, name).cache_stats().prefix_cache_hits)
        for name in ("small", "large")
    }


def counted_by_engines(reasoner: Reasoner, solution: Solution, before: dict[str, tuple[float, int]]) -> None:
    """The solve's usage by model is what each engine itself generated over the solve."""
    after = counters(reasoner)
    for name in ("small", "large"):
        counted = solution.usage.by_model[name].generated_tokens if name in solution.usage.by_model else 0
        assert counted == after[name][0] - before[name][0], name
    by_model = solution.usage.by_model.values()
    assert sum(counts.generated_tokens for counts in by_model) == solution.usage.generated_tokens


def segments(solution: Solution) -> list[dict[str, Any]]:
    return [data for _, data in sorted(solution.trace.nodes(data=True))]


def test_the_engines_are_two_and_both_run(pair: tuple[Reasoner, Reasoner]) -> None:
    reasoner, _ = pair
    small, large = engine(reasoner, "small"), engine(reasoner, "large")
    assert small is not large and small.engine is not large.engine
    assert small.running and large.running


def test_entropy_switch_hands_over_once_and_each_engine_counts_its_tokens(pair: tuple[Reasoner, Reasoner]) -> None:
    reasoner, forced = pair
    before = counters(reasoner)
    budget = 40
    solution = forced.solve(QUESTION, budget, "entropy_switch", threshold=THRESHOLD, **OPTIONS)
    counted_by_engines(reasoner, solution, before)
    assert solution.usage.generated_tokens == budget  # forced lengths: the budget, not the model, ends it
    assert solution.metrics["switches"] == 1 and solution.metrics["switch_points"] == str(OPTIONS["min_segment"])
    first, second = segments(solution)
    assert (first["model"], second["model"]) == ("small", "large")
    assert first["kept_tokens"] == OPTIONS["min_segment"] and second["start"] == OPTIONS["min_segment"]

    # Again under a cost cap: the cap, not the tokens, ends it. The large engine now serves the
    # shared context (the question, at least its whole blocks) from its prefix cache.
    question = solution.usage.by_model["small"].prompt_tokens  # its one request: the question alone
    cost_model = reasoner.models["large"].cost_model
    assert cost_model is not None
    cap = float(cost_model.eflops(question, 0, 24))
    before = counters(reasoner)
    capped = forced.solve(QUESTION, Budget(tokens=1000, cost=cap), "entropy_switch", threshold=THRESHOLD, **OPTIONS)
    counted_by_engines(reasoner, capped, before)
    assert capped.usage.cost is not None and capped.usage.cost <= cap
    assert capped.usage.generated_tokens < 1000
    assert capped.metrics["switches"] == 1 and capped.metrics["cost"] == capped.usage.cost
    large_segment = segments(capped)[1]
    block = engine(reasoner, "large").engine_args()["block_size"]
    assert large_segment["cached_prompt_tokens"] >= question // block * block > 0
    hits = counters(reasoner)["large"][1] - before["large"][1]
    assert hits == large_segment["cached_prompt_tokens"] == capped.usage.by_model["large"].cached_prompt_tokens


def test_cascade_escalates_to_the_large_engine(pair: tuple[Reasoner, Reasoner]) -> None:
    reasoner, _ = pair
    # One-token code samples carry no answer (no token of the vocabulary holds a fence and its newline),
    # so the small model's vote share is 0 and the question goes up, whatever the model writes.
    tokenizer = reasoner.models["small"].tokenizer()
    assert not any("```" in (text := tokenizer.decode([i])) and "\n" in text for i in range(tokenizer.vocab_size))
    before = counters(reasoner)
    solution = reasoner.solve(QUESTION, 64, "cascade", answer_format="code", n=3, sample_tokens=1)
    counted_by_engines(reasoner, solution, before)
    assert solution.metrics["escalations"] == 1 and solution.metrics["answered_by"] == "large"
    assert solution.usage.by_model["small"].generated_tokens == 3
    assert solution.usage.by_model["large"].generated_tokens == 3
    assert {node["model"] for node in segments(solution)} == {"small", "large"}


def test_route_sends_each_prompt_to_its_bins_engine(pair: tuple[Reasoner, Reasoner], tmp_path: Path) -> None:
    # The remote route test's hand-built policy: few digits run direct on small, many on large; the
    # estimate runs on small either way. Lengths are forced, so every request runs to its max_tokens.
    reasoner, forced = pair
    policy_file = routing_policy(tmp_path)
    before = counters(reasoner)
    easy = forced.solve(EASY, BUDGET, "route", policy_file=policy_file)
    counted_by_engines(reasoner, easy, before)
    before = counters(reasoner)
    hard = forced.solve(HARD, BUDGET, "route", policy_file=policy_file)
    counted_by_engines(reasoner, hard, before)
    assert (easy.metrics["chosen_model"], hard.metrics["chosen_model"]) == ("small", "large")
    assert easy.usage.by_model["small"].generated_tokens == ESTIMATE_TOKENS + ANSWER_TOKENS["small"]
    assert hard.usage.by_model["small"].generated_tokens == ESTIMATE_TOKENS
    assert hard.usage.by_model["large"].generated_tokens == ANSWER_TOKENS["large"]
    for solution in (easy, hard):
        assert solution.usage.cost is not None and BUDGET.cost is not None and solution.usage.cost <= BUDGET.cost
