from __future__ import annotations

import math

import pytest

from reasoner import Budget, Reasoner, StrategyError
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend, ScriptedToken
from strategies import scoring
from strategies.scoring import (
    SELF_EVAL_QUESTION,
    FunctionScorer,
    Scorer,
    SelfEvalScorer,
    evaluation_counts,
    get_scorer,
    register_scorer,
    scorer_names,
)


def answering(verdict: list[ScriptedToken], response: str = "two plus two is four") -> ScriptedBackend:
    """Answers the self-evaluation question with `verdict`, anything else with `response`."""
    return ScriptedBackend(lambda prompt: verdict if SELF_EVAL_QUESTION in prompt else response)


async def session_on(backend: ScriptedBackend, tokens: int = 100) -> Session:
    await backend.start()
    return Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=tokens))


def said(token: str, **probabilities: float) -> list[ScriptedToken]:
    return [ScriptedToken(token, {piece: math.log(p) for piece, p in probabilities.items()})]


async def test_self_eval_score_is_p_no_renormalised_over_yes_and_no() -> None:
    session = await session_on(answering(said(" No", **{" No": 0.6, " Yes": 0.2, " Maybe": 0.2})))
    score = await SelfEvalScorer().score(session, "What is 2+2?", "It is 4.")
    assert score == pytest.approx(0.75)


async def test_every_spelling_of_no_counts_towards_the_score() -> None:
    session = await session_on(answering(said("No", **{"No": 0.3, " No": 0.3, "yes": 0.2})))
    score = await SelfEvalScorer().score(session, "What is 2+2?", "It is 4.")
    assert score == pytest.approx(0.75)


async def test_no_yes_or_no_in_the_top_tokens_scores_half_and_is_counted() -> None:
    session = await session_on(answering(said(" Maybe", **{" Maybe": 0.9})))
    score = await SelfEvalScorer().score(session, "What is 2+2?", "It is 4.")
    assert score == 0.5
    assert evaluation_counts(session) == (1, 1)


async def test_score_request_extends_the_samples_own_token_ids() -> None:
    backend = answering(said(" No", **{" No": 0.9, " Yes": 0.1}))
    session = await session_on(backend)
    sample = await session.generate("the question", max_tokens=10, phase="answer", kind="answer")
    await SelfEvalScorer().score_generation(session, sample)
    request = backend.requests[-1]
    shared = len(sample.prompt_token_ids) + len(sample.token_ids)
    assert request.prompt_token_ids[:shared] == (*sample.prompt_token_ids, *sample.token_ids)
    assert request.cached_prompt_tokens >= len(sample.prompt_token_ids)
    assert request.sampling.max_tokens == 1
    assert request.sampling.logprobs == 20


async def test_partial_score_reads_only_the_first_tokens() -> None:
    backend = answering(said(" No", **{" No": 0.9, " Yes": 0.1}), response="a b c d e f g h")
    session = await session_on(backend)
    sample = await session.generate("the question", max_tokens=10, phase="answer", kind="answer")
    await SelfEvalScorer().score_generation(session, sample, upto=3)
    assert backend.requests[-1].prompt_text.startswith("the questiona b c\n<|user|>")


async def test_the_question_is_asked_as_a_new_user_turn_in_the_chat_format() -> None:
    backend = answering(said(" No", **{" No": 0.9}))
    session = await session_on(backend)
    await SelfEvalScorer("Is this wrong?").score(session, "What is 2+2?", "It is 4.")
    assert backend.requests[-1].prompt_text.endswith("It is 4.\n<|user|> Is this wrong?\n<|assistant|>")


async def test_score_tokens_go_to_the_evaluation_phase_and_the_trace() -> None:
    session = await session_on(answering(said(" No", **{" No": 0.8, " Yes": 0.2})))
    await SelfEvalScorer().score(session, "What is 2+2?", "It is 4.")
    assert session.ledger.generated_by_phase["evaluation"] == 1
    nodes = [attrs for _, attrs in session.trace.graph.nodes(data=True) if attrs["kind"] == "eval"]
    assert nodes[0]["score"] == pytest.approx(0.8)
    assert evaluation_counts(session) == (1, 0)


def test_empty_self_eval_question_is_refused() -> None:
    with pytest.raises(StrategyError, match="question_text"):
        SelfEvalScorer("  ")


async def test_function_scorer_scores_with_the_function() -> None:
    session = await session_on(ScriptedBackend())
    scorer = FunctionScorer(lambda question, response: len(response) / 10, name="length")
    assert await scorer.score(session, "q", "abcde") == pytest.approx(0.5)
    assert scorer.name == "length"


async def test_function_scorer_out_of_range_is_a_strategy_error() -> None:
    session = await session_on(ScriptedBackend())
    with pytest.raises(StrategyError, match=r"returned 3.*\[0, 1\]"):
        await FunctionScorer(lambda question, response: 3.0).score(session, "q", "r")


def test_get_scorer_by_name_builds_a_fresh_self_eval_scorer() -> None:
    first, second = get_scorer("self_eval"), get_scorer("self_eval")
    assert isinstance(first, SelfEvalScorer)
    assert first is not second


def test_get_scorer_passes_a_scorer_object_through() -> None:
    scorer = FunctionScorer(lambda question, response: 1.0)
    assert get_scorer(scorer) is scorer
    assert isinstance(scorer, Scorer)


def test_unknown_scorer_name_lists_the_known_ones() -> None:
    with pytest.raises(StrategyError, match="unknown scorer 'prm'.*self_eval"):
        get_scorer("prm")


def test_registered_scorer_is_found_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring, "_SCORERS", dict(scoring._SCORERS))
    register_scorer("always_one", lambda: FunctionScorer(lambda question, response: 1.0, name="always_one"))
    assert "always_one" in scorer_names()
    assert get_scorer("always_one").name == "always_one"


@pytest.mark.engine
def test_self_eval_request_reuses_the_samples_cached_prefix(engine_reasoner: Reasoner) -> None:
    solution = engine_reasoner.solve(
        "What is 12 + 7?", budget=80, strategy="self_eval", policy="best_of", n=1, temperature=0.0
    )
    graph = solution.trace
    sample = next(attrs for _, attrs in graph.nodes(data=True) if attrs["kind"] == "answer")
    evaluation = next(attrs for _, attrs in graph.nodes(data=True) if attrs["kind"] == "eval")
    tokenizer = engine_reasoner.backend.tokenizer()
    prompt = engine_reasoner.profile.build_prompt(tokenizer, "What is 12 + 7?", thinking=False)
    computed_before = len(tokenizer.encode(prompt)) + sample["tokens"] - 1
    assert evaluation["cached_prompt_tokens"] >= computed_before // 32 * 32 > 0
    assert solution.usage.generated_by_phase["evaluation"] == 1
