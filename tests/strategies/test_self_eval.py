from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections.abc import Callable, Sequence
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, BudgetError, Reasoner, StrategyError
from reasoner.answers import same_answer
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import RequestRecord, ScriptedBackend, ScriptedToken
from strategies.scoring import SELF_EVAL_QUESTION, register_scorer
from strategies.self_eval import SelfEval
from tests.forced_runs import STORY, TraceOrder, forced

_TAG = re.compile(r"\bs(\d+)\b")


def samples_and_scores(
    answers: Sequence[int], scores: Sequence[float], words: int = 3
) -> Callable[[str], str | list[ScriptedToken]]:
    """Sample i reads 's<i> x x ... Final answer: <answers[i]>'; its self-evaluation says P(No) = scores[i]."""
    counter = itertools.count()

    def respond(prompt: str) -> str | list[ScriptedToken]:
        if SELF_EVAL_QUESTION in prompt:
            tag = _TAG.findall(prompt)
            p = scores[int(tag[-1])] if tag else 0.5
            p = min(max(p, 1e-6), 1 - 1e-6)
            return [ScriptedToken(" No", {" No": math.log(p), " Yes": math.log(1 - p)})]
        index = next(counter) % len(answers)
        return f"s{index} " + "x " * words + f"Final answer: {answers[index]}"

    return respond


def reasoner_with(respond: Callable[[str], str | list[ScriptedToken]], delay_s: float = 0.0) -> Reasoner:
    return Reasoner(backend=ScriptedBackend(respond, delay_s=delay_s), profile="smollm2")


def sample_requests(reasoner: Reasoner) -> list[RequestRecord]:
    backend = reasoner.backend
    assert isinstance(backend, ScriptedBackend)
    return [record for record in backend.requests if SELF_EVAL_QUESTION not in record.prompt_text]


def test_adaptive_stops_at_the_first_sample_that_passes_the_threshold() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2, 3], [0.2, 0.9, 0.95]))
    solution = reasoner.solve("q", budget=400, strategy="self_eval", policy="adaptive", n=3, threshold=0.8)
    assert solution.answer == "2"
    assert solution.metrics["samples_used"] == 2
    assert solution.metrics["score_requests"] == 2
    assert solution.metrics["threshold_reached"] is True


def test_adaptive_uses_every_sample_when_none_passes_and_keeps_the_best() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2, 3], [0.3, 0.6, 0.4]))
    solution = reasoner.solve("q", budget=400, strategy="self_eval", policy="adaptive", n=3, threshold=0.9)
    assert solution.answer == "2"
    assert solution.metrics["samples_used"] == 3
    assert solution.metrics["threshold_reached"] is False
    assert solution.metrics["best_score"] == pytest.approx(0.6)


def test_annealing_starts_greedy_and_raises_the_temperature() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2, 3], [0.1, 0.1, 0.1]))
    reasoner.solve("q", budget=400, strategy="self_eval", n=3, anneal=True, temperature=0.8, threshold=1.0)
    temperatures = [record.sampling.temperature for record in sample_requests(reasoner)]
    assert temperatures == pytest.approx([0.0, 0.4, 0.6])


def test_best_of_runs_every_sample_to_the_end_and_keeps_the_best_scored() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2, 3, 4], [0.5, 0.2, 0.8, 0.4]))
    solution = reasoner.solve("q", budget=400, strategy="self_eval", policy="best_of", n=4)
    assert solution.answer == "3"
    assert solution.metrics["samples_used"] == 4
    assert solution.usage.aborted_tokens_saved == 0
    assert solution.usage.generated_by_phase["evaluation"] == 4


def test_pruning_aborts_the_lowest_scored_samples_at_every_checkpoint() -> None:
    reasoner = reasoner_with(samples_and_scores(list(range(8)), [0.1, 0.9, 0.3, 0.5, 0.2, 0.8, 0.4, 0.6], 200), 0.001)
    solution = reasoner.solve(
        "q",
        budget=2000,
        strategy="self_eval",
        policy="prune",
        n=8,
        checkpoints=(4, 8, 12),
        prune_fraction=0.5,
        sample_tokens=220,
    )
    assert solution.metrics["pruned"] == 7
    assert solution.metrics["checkpoints_reached"] == 3
    assert solution.answer == "1"
    pruned_at = sorted(attrs["pruned_at"] for _, attrs in solution.trace.nodes(data=True) if "pruned_at" in attrs)
    assert pruned_at == [4, 4, 4, 4, 8, 8, 12]
    aborted = [record for record in sample_requests(reasoner) if record.aborted]
    assert len(aborted) == 7
    assert solution.usage.aborted_tokens_saved > 0
    assert solution.metrics["tokens_saved"] == solution.usage.aborted_tokens_saved


def test_pruning_never_aborts_a_sample_that_already_finished() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2], [0.1, 0.9], words=1))
    solution = reasoner.solve("q", budget=400, strategy="self_eval", policy="prune", n=2, checkpoints=(20,))
    assert solution.metrics["pruned"] == 0
    assert solution.metrics["checkpoints_reached"] == 0
    assert solution.answer == "2"


def test_scores_without_yes_or_no_fall_back_to_half_and_are_counted() -> None:
    def respond(prompt: str) -> str | list[ScriptedToken]:
        if SELF_EVAL_QUESTION in prompt:
            return [ScriptedToken(" Maybe", {" Maybe": -0.1})]
        return "Final answer: 5"

    solution = reasoner_with(respond).solve("q", budget=400, strategy="self_eval", policy="best_of", n=3)
    assert solution.metrics["score_fallbacks"] == 3
    assert solution.metrics["best_score"] == 0.5


def test_budget_samples_caps_n() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]))
    solution = reasoner.solve("q", budget=Budget(tokens=400, samples=2), strategy="self_eval", policy="best_of", n=4)
    assert solution.metrics["samples_used"] == 2


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"n": 0}, "option n=0"),
        ({"threshold": 1.5}, "option threshold=1.5"),
        ({"threshold": -0.1}, "option threshold=-0.1"),
        ({"prune_fraction": 1.0}, "option prune_fraction=1.0"),
        ({"prune_fraction": -0.5}, "option prune_fraction=-0.5"),
        ({"checkpoints": (128, 64)}, "increasing order"),
        ({"checkpoints": ()}, "increasing order"),
        ({"policy": "greedy"}, "option policy='greedy'"),
        ({"scorer": "prm"}, "unknown scorer"),
    ],
)
def test_bad_options_are_strategy_errors_naming_the_option(options: dict[str, object], named: str) -> None:
    with pytest.raises(StrategyError, match=re.escape(named)):
        reasoner_with(samples_and_scores([1], [0.5])).solve("q", budget=400, strategy="self_eval", **options)


def test_checkpoints_beyond_each_samples_share_are_a_strategy_error() -> None:
    reasoner = reasoner_with(samples_and_scores([1], [0.5]))
    with pytest.raises(StrategyError, match="checkpoint 128 is not below each sample's"):
        reasoner.solve("q", budget=200, strategy="self_eval", policy="prune", n=2, checkpoints=(64, 128))


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.integers(8, 400),
    n=st.integers(1, 8),
    policy=st.sampled_from(["adaptive", "prune", "best_of"]),
    checkpoints=st.lists(st.integers(1, 30), min_size=1, max_size=3, unique=True).map(sorted),
    fraction=st.floats(0.0, 0.99),
    words=st.integers(0, 60),
)
def test_totals_never_exceed_the_budget(
    tokens: int,
    n: int,
    policy: Literal["adaptive", "prune", "best_of"],
    checkpoints: list[int],
    fraction: float,
    words: int,
) -> None:
    async def scenario() -> tuple[Session, Exception | None]:
        backend = ScriptedBackend(samples_and_scores(list(range(n)), [i / n for i in range(n)], words), delay_s=0.0005)
        await backend.start()
        session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=tokens))
        pruning = {"checkpoints": tuple(checkpoints), "prune_fraction": fraction} if policy == "prune" else {}
        options = SelfEval.Options(policy=policy, n=n, **pruning)
        try:
            await SelfEval(options).run(session, "q")
        except (StrategyError, BudgetError) as refusal:
            return session, refusal
        return session, None

    session, refusal = asyncio.run(scenario())
    assert session.ledger.generated_tokens <= tokens
    assert session.ledger.reserved_tokens == 0
    if refusal is not None:
        # The only refusals are the documented ones, made before any token is spent.
        assert session.ledger.requests == 0
        message = str(refusal)
        pruning_refused = policy == "prune" and re.search(r"checkpoint \d+ is not below each sample's", message)
        assert "cannot pay for one sample" in message or pruning_refused


@pytest.mark.engine
def test_pruning_on_the_engine_aborts_exactly_the_samples_scored_lowest(engine_reasoner: Reasoner) -> None:
    # Samples 0..3 score 0.6, 0.1, 0.9, 0.3: at the checkpoint the lower half, samples 1 and 3, must be
    # aborted in the engine; the other two run to their forced 64 tokens.
    scorer = TraceOrder(lambda position, attrs: (0.6, 0.1, 0.9, 0.3)[attrs["sample"]], name="test_sample_order")
    register_scorer(scorer.name, lambda: scorer)
    solution = forced(engine_reasoner).solve(
        STORY,
        budget=300,
        strategy="self_eval",
        policy="prune",
        n=4,
        checkpoints=(8,),
        prune_fraction=0.5,
        sample_tokens=64,
        scorer=scorer.name,
    )
    samples = {attrs["sample"]: attrs for _, attrs in solution.trace.nodes(data=True) if attrs["kind"] == "answer"}
    assert sorted(samples) == [0, 1, 2, 3] and solution.metrics["sample_tokens"] == 64
    assert {index for index, attrs in samples.items() if "pruned_at" in attrs} == {1, 3}
    for index in (1, 3):
        assert samples[index]["pruned_at"] == 8 and samples[index]["finish_reason"] == "abort"
        assert 8 <= samples[index]["tokens"] < 64
    assert [samples[index]["tokens"] for index in (0, 2)] == [64, 64]
    assert (solution.metrics["pruned"], solution.metrics["checkpoints_reached"]) == (2, 1)
    saved = sum(64 - samples[index]["tokens"] for index in (1, 3))
    assert solution.usage.aborted_tokens_saved == solution.metrics["tokens_saved"] == saved


@pytest.mark.engine
def test_early_pruning_aborts_engine_requests_and_saves_tokens(engine_reasoner: Reasoner) -> None:
    solution = engine_reasoner.solve(
        "Explain step by step: what is 23 + 58?",
        budget=400,
        strategy="self_eval",
        policy="prune",
        n=4,
        checkpoints=(8,),
        prune_fraction=0.5,
        sample_tokens=80,
        temperature=0.8,
    )
    assert int(solution.metrics["pruned"] or 0) >= 1
    assert solution.usage.aborted_tokens_saved > 0
    assert solution.usage.generated_tokens <= 400


def test_defaults_anneal_from_a_greedy_first_sample() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2, 3, 4], [0.1, 0.1, 0.1, 0.1]))
    reasoner.solve("q", budget=400, strategy="self_eval", n=4, temperature=0.8, threshold=1.0)
    temperatures = [record.sampling.temperature for record in sample_requests(reasoner)]
    assert temperatures == pytest.approx([0.0, 0.4, 0.6, 0.7])


def test_adaptive_runs_its_samples_in_concurrent_batches() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2, 3, 4], [0.1, 0.2, 0.1, 0.2]))
    reasoner.solve("q", budget=400, strategy="self_eval", n=4, batch_size=2, threshold=1.0)
    backend = reasoner.backend
    assert isinstance(backend, ScriptedBackend)
    kinds = ["eval" if SELF_EVAL_QUESTION in record.prompt_text else "sample" for record in backend.requests]
    assert kinds == ["sample", "sample", "eval", "eval", "sample", "sample", "eval", "eval"]


def test_scores_that_do_not_separate_the_answers_fall_back_to_the_majority() -> None:
    reasoner = reasoner_with(samples_and_scores([7, 3, 3, 9], [0.52, 0.5, 0.49, 0.51]))
    solution = reasoner.solve("q", budget=400, strategy="self_eval", policy="best_of", n=4, min_margin=0.1)
    assert solution.answer == "3"
    assert solution.metrics["selection"] == "majority"
    assert solution.metrics["no_signal"] is True


def test_scores_that_separate_the_answers_decide_against_the_majority() -> None:
    reasoner = reasoner_with(samples_and_scores([7, 3, 3, 9], [0.9, 0.5, 0.49, 0.51]))
    solution = reasoner.solve("q", budget=400, strategy="self_eval", policy="best_of", n=4, min_margin=0.1)
    assert solution.answer == "7"
    assert (solution.metrics["selection"], solution.metrics["no_signal"]) == ("score", False)


def test_a_sample_without_an_answer_is_never_chosen_over_one_with_an_answer() -> None:
    def respond(prompt: str) -> str | list[ScriptedToken]:
        if SELF_EVAL_QUESTION in prompt:
            p = 0.99 if "unfinished" in prompt else 0.2
            return [ScriptedToken(" No", {" No": math.log(p), " Yes": math.log(1 - p)})]
        return "unfinished thought" if "unfinished" not in prompt and next(counter) == 0 else "Final answer: 6"

    counter = itertools.count()
    solution = reasoner_with(respond).solve("q", budget=400, strategy="self_eval", policy="best_of", n=2)
    assert solution.answer == "6"
    assert solution.metrics["selection"] == "agreement"


@pytest.mark.engine
def test_adaptive_defaults_run_on_the_engine_within_the_budget(engine_reasoner: Reasoner) -> None:
    solution = engine_reasoner.solve("What is 3 + 4?", 8 * 49, "self_eval", n=8, sample_tokens=48)
    assert solution.usage.generated_tokens <= 8 * 49
    graph = solution.trace
    samples = {attrs["sample"]: node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "answer"}
    scores = {
        graph.nodes[next(iter(graph.predecessors(node)))]["sample"]: attrs["score"]
        for node, attrs in graph.nodes(data=True)
        if attrs["kind"] == "eval"
    }
    # Batches of 2 run until one holds a score of at least 0.75 (the default threshold), or all 8 ran.
    passing = [index for index in sorted(scores) if scores[index] >= 0.75]
    expected_used = 2 * (passing[0] // 2 + 1) if passing else 8
    assert solution.metrics["samples_used"] == len(samples) == len(scores) == expected_used
    assert solution.metrics["threshold_reached"] is bool(passing)
    # The scores decide when the best answer's score beats every other answer's by 0.1 (the default
    # min_margin); one answer is an agreement; otherwise the majority decides.
    answers = {
        index: engine_reasoner.profile.extract_answer(graph.nodes[node]["text"]) for index, node in samples.items()
    }
    best: dict[str, float] = {}
    for index, answer in answers.items():
        if answer is not None:
            key = next((known for known in best if same_answer(known, answer)), answer)
            best[key] = max(best.get(key, 0.0), scores[index])
    ranked = sorted(best.values(), reverse=True)
    if len(ranked) < 2:
        expected = "agreement" if ranked else "score"
    else:
        expected = "score" if ranked[0] - ranked[1] >= 0.1 else "majority"
    assert solution.metrics["selection"] == expected
    assert solution.metrics["no_signal"] is (expected == "majority")


def test_adaptive_stops_at_one_sample_when_the_first_score_passes() -> None:
    reasoner = reasoner_with(samples_and_scores([1, 2, 3, 4], [0.9, 0.9, 0.9, 0.9]))
    solution = reasoner.solve("q", budget=400, strategy="self_eval", n=4, threshold=0.8)
    assert solution.metrics["samples_used"] == 1
    assert len(sample_requests(reasoner)) == 1
    assert solution.metrics["threshold_reached"] is True


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"policy": "best_of", "threshold": 0.9}, "option 'threshold' applies only with policy='adaptive'"),
        ({"policy": "prune", "batch_size": 2}, "option 'batch_size' applies only with policy='adaptive'"),
        ({"policy": "best_of", "anneal": False}, "option 'anneal' applies only with policy='adaptive'"),
        ({"checkpoints": (20,)}, "option 'checkpoints' applies only with policy='prune', not policy='adaptive'"),
        ({"policy": "best_of", "prune_fraction": 0.5}, "option 'prune_fraction' applies only with policy='prune'"),
    ],
)
def test_an_option_of_another_policy_is_refused_naming_it(options: dict[str, object], named: str) -> None:
    with pytest.raises(StrategyError, match=re.escape(named)):
        reasoner_with(samples_and_scores([1], [0.5])).solve("q", budget=400, strategy="self_eval", **options)
