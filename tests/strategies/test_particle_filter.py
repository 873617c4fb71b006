from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Reasoner, Solution, StrategyError
from reasoner.models import provision_embedded_model
from reasoner.testing import ScriptedBackend
from strategies.particle_filter import Particle, effective_sample_size, resample, resampling_weights
from strategies.scoring import FunctionScorer
from strategies.scoring_prm import Aggregate, PRMScorer, aggregate_rewards
from tests.forced_runs import STORY, TraceOrder, forced

Responder = Callable[[str], str]


def stepper(final: Callable[[int, int], str | None] = lambda index, done: None) -> Responder:
    """`Step n idea i.` per request (`i` counts requests); `final(i, done)` may end the path with an answer."""
    counter = itertools.count()

    def respond(prompt: str) -> str:
        done = prompt.split("<|assistant|>", 1)[1].count("Step ")
        index = next(counter)
        answer = final(index, done)
        return f"Final answer: {answer}" if answer is not None else f"Step {done + 1} idea {index}.\n\n"

    return respond


def reasoner_for(responder: Responder) -> tuple[Reasoner, ScriptedBackend]:
    backend = ScriptedBackend(responder)
    return Reasoner(backend=backend, profile="smollm2"), backend


def scorer_of(fn: Callable[[str], float]) -> FunctionScorer:
    return FunctionScorer(lambda question, response: fn(response), name="test")


def steps(graph: nx.DiGraph) -> list[tuple[int, dict]]:
    return [(node, attrs) for node, attrs in sorted(graph.nodes(data=True)) if attrs["kind"] == "step"]


def number(solution: Solution, metric: str) -> float:
    value = solution.metrics[metric]
    assert isinstance(value, (int, float))
    return value


def test_weights_are_the_softmax_of_the_score_logits() -> None:
    assert resampling_weights([0.5, 0.75], 1.0) == pytest.approx([0.25, 0.75])  # odds 1 : 3
    assert resampling_weights([0.5, 0.75], 2.0) == pytest.approx([1 / (1 + 3**0.5), 3**0.5 / (1 + 3**0.5)])
    assert resampling_weights([0.0, 1.0], 1.0)[1] == pytest.approx(1.0)


def test_effective_sample_size_runs_from_n_for_even_weights_to_one() -> None:
    assert effective_sample_size(np.full(8, 1 / 8)) == pytest.approx(8.0)
    assert effective_sample_size(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)


def test_resampling_follows_the_weights() -> None:
    particles = [Particle(leaf=node) for node in range(4)]
    weights = np.array([0.55, 0.3, 0.15, 0.0])
    rng = np.random.default_rng(3)
    drawn = Counter(p.leaf for _ in range(2500) for p in resample(particles, weights, rng))
    shares = [drawn[node] / 10_000 for node in range(4)]
    assert shares == pytest.approx([0.55, 0.3, 0.15, 0.0], abs=0.02)


def test_particles_converge_on_the_paths_the_scorer_favours() -> None:
    # requests 0..3 make the first steps; only idea 2 scores well, so every second step extends it
    reasoner, _ = reasoner_for(stepper())
    scorer = scorer_of(lambda text: 0.99 if "idea 2." in text else 0.01)
    solution = reasoner.solve("q", budget=2000, strategy="particle_filter", particles=4, max_steps=2, scorer=scorer)
    graph = solution.trace
    first = [node for node, attrs in steps(graph) if attrs["depth"] == 1]
    second = [node for node, attrs in steps(graph) if attrs["depth"] == 2]
    favoured = next(node for node in first if "idea 2." in graph.nodes[node]["text"])
    assert len(second) == 4
    assert all(next(iter(graph.predecessors(node))) == favoured for node in second)
    assert graph.nodes[favoured]["copies"] == 4
    ess = [float(value) for value in str(solution.metrics["ess_per_step"]).split()]
    assert ess[0] == pytest.approx(1.0, abs=0.01) and number(solution, "ess_min") == pytest.approx(1.0, abs=0.01)
    assert solution.metrics["resamples"] == 1 and solution.metrics["stopped_by"] == "steps"


def test_copies_of_a_particle_share_its_prefix_in_the_engine_cache() -> None:
    reasoner, backend = reasoner_for(stepper())
    scorer = scorer_of(lambda text: 0.99 if "idea 0." in text else 0.01)
    solution = reasoner.solve("q", budget=2000, strategy="particle_filter", particles=3, max_steps=2, scorer=scorer)
    first_round, second_round = backend.requests[:3], backend.requests[3:]
    parent_ids = first_round[0].prompt_token_ids + tuple(backend.tokenizer_.encode(first_round[0].output_text))
    assert len(second_round) == 3
    assert all(record.prompt_token_ids == parent_ids for record in second_round)  # children extend the parent
    # the scripted cache knows prompts only: the first child reuses the prompt, its siblings the whole path
    # (all but the last prompt token, as vLLM computes that one)
    assert second_round[0].cached_prompt_tokens == len(first_round[0].prompt_token_ids)
    assert [record.cached_prompt_tokens for record in second_round[1:]] == [len(parent_ids) - 1] * 2
    assert number(solution, "kv_peak_distinct_tokens") < number(solution, "kv_peak_unshared_tokens")
    assert number(solution, "prefix_cache_hit_rate") > 0.5


def test_finished_particles_keep_their_weight_and_take_no_more_steps() -> None:
    # request 0 answers at once with a high score; the others keep stepping at a middling one
    reasoner, backend = reasoner_for(stepper(lambda index, done: "7" if index == 0 else None))
    scorer = scorer_of(lambda text: 0.9 if "answer: 7" in text else 0.5)
    solution = reasoner.solve("q", budget=3000, strategy="particle_filter", particles=4, max_steps=3, scorer=scorer)
    finished = int(number(solution, "finished_particles"))
    assert finished >= 2  # drawn again and again for its weight, and never extended
    answered = [node for node, attrs in steps(solution.trace) if attrs["finished"]]
    assert len(answered) == 1 and not list(solution.trace.successors(answered[0]))
    rounds = int(number(solution, "rounds"))
    assert len(backend.requests) < 4 * rounds
    assert solution.answer == "7"


def answering(answers: list[str], scores: dict[str, float]) -> tuple[Reasoner, FunctionScorer]:
    reasoner, _ = reasoner_for(stepper(lambda index, done: answers[index % len(answers)]))
    scorer = scorer_of(lambda text: next(value for key, value in scores.items() if f"answer: {key}" in text))
    return reasoner, scorer


def test_the_weighted_vote_can_beat_the_single_heaviest_particle() -> None:
    scores = {"9": 0.8, "5": 0.6}  # odds 4 vs 1.5 each: three 5s outweigh one 9
    reasoner, scorer = answering(["9", "5", "5", "5"], scores)
    voted = reasoner.solve("q", budget=500, strategy="particle_filter", particles=4, scorer=scorer)
    assert voted.answer == "5" and number(voted, "answer_weight") == pytest.approx(4.5 / 8.5)
    reasoner, scorer = answering(["9", "5", "5", "5"], scores)
    best = reasoner.solve("q", budget=500, strategy="particle_filter", particles=4, scorer=scorer, answer_by="best")
    assert best.answer == "9"
    assert voted.metrics["stopped_by"] == best.metrics["stopped_by"] == "finished"


def test_a_failing_scorer_scores_zero_and_is_counted() -> None:
    def flaky(text: str) -> float:
        if "idea 1." in text:
            raise RuntimeError("verifier crashed")
        return 0.5

    reasoner, _ = reasoner_for(stepper())
    solution = reasoner.solve(
        "q", budget=2000, strategy="particle_filter", particles=3, max_steps=2, scorer=scorer_of(flaky)
    )
    assert solution.metrics["scorer_errors"] == 1
    crashed = next(attrs for _, attrs in steps(solution.trace) if "idea 1." in attrs["text"])
    assert crashed["score"] == 0.0 and "copies" not in crashed


def test_the_budget_stops_the_filter_and_is_never_exceeded() -> None:
    reasoner, _ = reasoner_for(stepper())
    solution = reasoner.solve(
        "q", budget=40, strategy="particle_filter", particles=4, max_steps=10, scorer=scorer_of(lambda t: 0.5)
    )
    assert solution.metrics["stopped_by"] == "budget"
    assert solution.usage.generated_tokens <= 40
    assert sum(attrs["tokens"] for _, attrs in steps(solution.trace)) == solution.usage.generated_tokens


@given(
    budget=st.integers(min_value=4, max_value=300),
    particles=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=5),
)
@settings(max_examples=25, deadline=None)
def test_the_filter_never_spends_more_than_the_budget_and_resamples_between_rounds(
    budget: int, particles: int, seed: int
) -> None:
    reasoner, _ = reasoner_for(stepper(lambda index, done: "4" if done >= 2 and index % 2 else None))
    scorer = scorer_of(lambda text: 0.3 + 0.1 * (len(text) % 5))
    solution = reasoner.solve(
        "q", budget, "particle_filter", particles=particles, max_steps=5, scorer=scorer, seed=seed
    )
    assert solution.usage.generated_tokens <= budget
    assert number(solution, "resamples") == number(solution, "rounds") - 1  # after every round but the last


def test_the_same_seed_resamples_the_same_way() -> None:
    texts = []
    for _ in range(2):
        reasoner, _ = reasoner_for(stepper())
        scorer = scorer_of(lambda text: 0.3 + 0.1 * (len(text) % 5))
        solution = reasoner.solve("q", 3000, "particle_filter", particles=5, max_steps=3, scorer=scorer, seed=11)
        texts.append([attrs["text"] for _, attrs in steps(solution.trace)])
    assert texts[0] == texts[1]


def test_an_unknown_scorer_is_an_option_error() -> None:
    reasoner, _ = reasoner_for(stepper())
    with pytest.raises(StrategyError, match="scorer"):
        reasoner.solve("q", budget=100, strategy="particle_filter", scorer="oracle")


@pytest.mark.engine
def test_particle_filter_on_the_real_engine(engine_reasoner: Reasoner) -> None:
    # Even scores give even weights: the effective sample size is N after every round.
    solution = engine_reasoner.solve(
        "What is 3 + 4?",
        budget=600,
        strategy="particle_filter",
        particles=4,
        max_steps=3,
        step_tokens=24,
        scorer=scorer_of(lambda text: 0.5),
    )
    assert solution.usage.generated_tokens <= 600
    rounds = int(number(solution, "rounds"))
    ess = [float(value) for value in str(solution.metrics["ess_per_step"]).split()]
    assert rounds >= 1 and ess == [4.0] * rounds
    if rounds > 1:
        assert solution.usage.cached_prompt_tokens > 0
    assert sum(attrs["tokens"] for _, attrs in steps(solution.trace)) == solution.usage.generated_tokens


@pytest.mark.engine
def test_resampling_on_the_engine_draws_only_the_particles_the_scorer_favours(engine_reasoner: Reasoner) -> None:
    # Round 1: the 2nd and 4th step score 0.99, the others 0.01 (odds 9801 : 1 each), so all four
    # particles must be drawn from those two; round 2 scores evenly. Steps are forced to 8 tokens.
    scorer = TraceOrder(lambda position, attrs: 0.5 if attrs["depth"] > 1 else 0.99 if position in (1, 3) else 0.01)
    solution = forced(engine_reasoner).solve(
        STORY, budget=200, strategy="particle_filter", particles=4, max_steps=2, step_tokens=8, scorer=scorer
    )
    graph = solution.trace
    first = [node for node, attrs in steps(graph) if attrs["depth"] == 1]
    second = [node for node, attrs in steps(graph) if attrs["depth"] == 2]
    assert len(first) == 4 and not any(graph.nodes[node]["finished"] for node in first)
    assert [scorer.given[node] for node in first] == [0.01, 0.99, 0.01, 0.99]
    drawn = Counter(next(iter(graph.predecessors(node))) for node in second)
    assert sum(drawn.values()) == 4 and set(drawn) <= {first[1], first[3]}
    assert {node: graph.nodes[node].get("copies", 0) for node in first} == {node: drawn[node] for node in first}
    ess = [float(value) for value in str(solution.metrics["ess_per_step"]).split()]
    assert ess == pytest.approx([2.0, 4.0], abs=0.01)
    # The drawn particles share the prompt (and copies their step): counted once, not once per particle.
    prompt = next(attrs["prompt_tokens"] for _, attrs in graph.nodes(data=True) if attrs["kind"] == "prompt")
    assert number(solution, "kv_peak_distinct_tokens") == prompt + 8 * len(drawn)
    assert number(solution, "kv_peak_unshared_tokens") == 4 * (prompt + 8)


def test_a_billion_particles_is_refused_before_any_request() -> None:
    backend = ScriptedBackend("Final answer: 5")
    reasoner = Reasoner(backend=backend, profile="smollm2")
    with pytest.raises(StrategyError, match="particles"):
        reasoner.solve("2 + 3?", budget=64, strategy="particle_filter", particles=10**9)
    assert backend.requests == []


def rising_prm(aggregate: Aggregate | None = None) -> PRMScorer:
    """A PRM (no engine) whose step rewards rise 0.3, 0.6, 0.9: the last step's is the highest, the first the lowest."""
    scorer = PRMScorer(str(provision_embedded_model()), aggregate=aggregate)

    async def rewards(question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        return [0.3 * (index + 1) for index in range(len(steps))], 10

    scorer.step_rewards = rewards  # type: ignore[method-assign]
    return scorer


def prm_scores(solution: Solution) -> list[tuple[float, list[float]]]:
    """(score, step rewards) of every PRM evaluation in the trace."""
    return [
        (attrs["score"], attrs["step_scores"]) for _, attrs in solution.trace.nodes(data=True) if "step_scores" in attrs
    ]


def test_a_prm_scores_a_particle_by_its_last_steps_reward_by_default() -> None:
    reasoner, _ = reasoner_for(stepper())
    solution = reasoner.solve(
        "q", budget=2000, strategy="particle_filter", particles=2, max_steps=3, scorer=rising_prm()
    )
    scores = prm_scores(solution)
    assert any(len(rewards) > 1 for _, rewards in scores)
    assert all(score == pytest.approx(rewards[-1]) for score, rewards in scores)


@pytest.mark.parametrize("how", ["min", "mean", "prod"])
def test_the_other_aggregates_are_options(how: Aggregate) -> None:
    reasoner, _ = reasoner_for(stepper())
    solution = reasoner.solve(
        "q", 2000, "particle_filter", particles=2, max_steps=3, scorer=rising_prm(), aggregate=how
    )
    scores = prm_scores(solution)
    assert any(len(rewards) > 1 for _, rewards in scores)
    assert all(score == pytest.approx(aggregate_rewards(rewards, how)) for score, rewards in scores)


def test_a_prm_built_with_its_own_aggregate_keeps_it() -> None:
    reasoner, _ = reasoner_for(stepper())
    solution = reasoner.solve("q", 2000, "particle_filter", particles=2, max_steps=3, scorer=rising_prm("min"))
    assert all(score == pytest.approx(min(rewards)) for score, rewards in prm_scores(solution))


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        ({"aggregate": "last"}, "does not apply to the scorer 'self_eval'"),
        ({"aggregate": "min", "scorer": FunctionScorer(lambda q, r: 0.5)}, "does not apply to the scorer 'function'"),
        ({"aggregate": "last", "scorer": rising_prm("min")}, "'last' but the PRM scorer 'prm' aggregates by 'min'"),
        ({"sampling_temperature": 0.0, "top_p": 0.5}, "option 'top_p' does not apply with sampling_temperature=0"),
    ],
)
def test_an_option_that_does_not_apply_is_refused_before_any_request(options: dict[str, Any], refused: str) -> None:
    reasoner, backend = reasoner_for(stepper())
    with pytest.raises(StrategyError, match=refused):
        reasoner.solve("q", budget=200, strategy="particle_filter", **options)
    assert backend.requests == []
