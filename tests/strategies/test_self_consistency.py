from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, BudgetError, Reasoner, StrategyError
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend, ScriptedToken
from strategies.self_consistency import SelfConsistency
from tests.priced_models import priced
from tests.scripted_runs import records


def reasoner_with(script: ScriptedBackend) -> Reasoner:
    return Reasoner(backend=script, profile="smollm2")


def confident(text: str, logprob: float) -> list[ScriptedToken]:
    return [ScriptedToken(piece, {piece: logprob}) for piece in text.split(" ")[:1]] + [
        ScriptedToken(" " + piece, {" " + piece: logprob}) for piece in text.split(" ")[1:]
    ]


def test_majority_answer_wins() -> None:
    backend = ScriptedBackend(["Final answer: 5", "Final answer: 7", "Final answer: 5"])
    solution = reasoner_with(backend).solve("q", budget=300, strategy="self_consistency", n=3)
    assert solution.answer == "5"
    assert solution.metrics["winning_votes"] == 2
    assert solution.metrics["distinct_answers"] == 2
    assert solution.metrics["samples_used"] == 3


def test_equivalent_answers_vote_together() -> None:
    backend = ScriptedBackend(["Final answer: 7", "Final answer: 5.0", "Final answer: 5"])
    solution = reasoner_with(backend).solve("q", budget=300, strategy="self_consistency", n=3)
    assert solution.answer in ("5", "5.0")
    assert solution.metrics["winning_votes"] == 2


def test_an_equation_and_its_value_vote_together() -> None:
    backend = ScriptedBackend(["Final answer: 10 + 4 = 14", "Final answer: 13", "Final answer: 14 apples"])
    solution = reasoner_with(backend).solve("q", budget=300, strategy="self_consistency", n=3)
    assert solution.answer == "14"
    assert solution.metrics["winning_votes"] == 2


def test_a_tied_vote_goes_to_the_more_confident_answer() -> None:
    scripts = itertools.cycle([confident("Final answer: 3", -2.0), confident("Final answer: 4", -0.1)])
    backend = ScriptedBackend(lambda prompt: next(scripts))
    solution = reasoner_with(backend).solve("q", budget=300, strategy="self_consistency", n=2)
    assert solution.answer == "4"
    assert solution.metrics["tie_broken"] is True


def test_no_answer_in_any_sample_gives_none() -> None:
    backend = ScriptedBackend("I am not sure about this one")
    solution = reasoner_with(backend).solve("q", budget=300, strategy="self_consistency", n=4)
    assert solution.answer is None
    assert solution.metrics["none_answers"] == 4
    assert solution.metrics["winning_votes"] == 0
    assert solution.text == "I am not sure about this one"


def test_budget_samples_caps_n() -> None:
    backend = ScriptedBackend("Final answer: 5")
    solution = reasoner_with(backend).solve("q", budget=Budget(tokens=300, samples=3), strategy="self_consistency", n=8)
    assert solution.metrics["samples_used"] == 3
    assert len(backend.requests) == 3


def test_tokens_cap_n_at_what_they_pay_for() -> None:
    backend = ScriptedBackend("Final answer: 5")
    solution = reasoner_with(backend).solve("q", budget=20, strategy="self_consistency", n=8)
    assert solution.metrics["samples_used"] == 5
    assert solution.metrics["sample_tokens"] == 4
    assert solution.usage.generated_tokens <= 20


def test_samples_share_one_prompt_and_run_concurrently() -> None:
    backend = ScriptedBackend("one two three four five Final answer: 5", delay_s=0.002)
    solution = reasoner_with(backend).solve("q", budget=300, strategy="self_consistency", n=3)
    nodes = [attrs for _, attrs in solution.trace.nodes(data=True)]
    assert len({record.prompt_token_ids for record in backend.requests}) == 1
    assert max(node["started_at"] for node in nodes) < min(node["finished_at"] for node in nodes)


@pytest.mark.parametrize("n", [0, -2])
def test_n_below_one_is_a_strategy_error(n: int) -> None:
    with pytest.raises(StrategyError, match=f"option n={n}"):
        reasoner_with(ScriptedBackend()).solve("q", budget=100, strategy="self_consistency", n=n)


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.integers(4, 300),
    n=st.integers(1, 12),
    samples=st.one_of(st.none(), st.integers(1, 12)),
    lengths=st.lists(st.integers(0, 80), min_size=1, max_size=12),
)
def test_totals_never_exceed_the_budget(tokens: int, n: int, samples: int | None, lengths: list[int]) -> None:
    async def scenario() -> Session:
        scripts = itertools.cycle(" ".join(["x"] * length) + " Final answer: 1" for length in lengths)
        backend = ScriptedBackend(lambda prompt: next(scripts))
        await backend.start()
        session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=tokens, samples=samples))
        await SelfConsistency(SelfConsistency.Options(n=n)).run(session, "q")
        return session

    session = asyncio.run(scenario())
    assert session.ledger.generated_tokens <= tokens
    assert session.ledger.reserved_tokens == 0
    assert session.ledger.requests <= min(n, samples or n)


def test_top_p_with_greedy_samples_is_refused_by_name(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(StrategyError, match="option 'top_p' does not apply with temperature=0"):
        scripted_reasoner.solve("q", budget=200, strategy="self_consistency", temperature=0.0, top_p=0.9)
    assert records(scripted_reasoner) == []


def test_top_p_applies_when_sampling(scripted_reasoner: Reasoner) -> None:
    solution = scripted_reasoner.solve("q", budget=200, strategy="self_consistency", n=2, temperature=0.7, top_p=0.9)
    assert solution.metrics["samples_used"] == 2
    assert all(record.sampling.top_p == 0.9 for record in records(scripted_reasoner))


def test_a_budget_below_one_sample_is_a_budget_error() -> None:
    async def scenario() -> None:
        backend = ScriptedBackend()
        await backend.start()
        session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=3))
        await SelfConsistency(SelfConsistency.Options()).run(session, "q")

    with pytest.raises(BudgetError, match="cannot pay for one sample"):
        asyncio.run(scenario())


@pytest.mark.engine
def test_self_consistency_votes_over_concurrent_engine_samples(engine_reasoner: Reasoner) -> None:
    solution = engine_reasoner.solve("What is 3 + 4?", budget=240, strategy="self_consistency", n=4, sample_tokens=60)
    assert solution.metrics["samples_used"] == 4
    assert solution.usage.requests == 4
    assert solution.usage.generated_tokens <= 240
    assert solution.usage.cached_prompt_tokens > 0


def test_under_a_cost_cap_the_samples_share_the_cost_instead_of_the_first_taking_it_all() -> None:
    cost_model = priced(2)
    backend = ScriptedBackend(["a long answer that runs on and on." * 40 + " Final answer: 4"])
    reasoner = Reasoner(backend=backend, profile="smollm2", cost_model=cost_model)
    cap = 4 * cost_model.eflops(200, 0, 40)  # four samples of 40 tokens after any prompt of this test
    solution = reasoner.solve("What is 2 + 2?", Budget(tokens=100_000, cost=cap), "self_consistency", n=4)
    assert solution.metrics["samples_used"] == 4 and len(backend.requests) == 4
    assert solution.usage.cost is not None and solution.usage.cost <= cap
    assert all(40 <= request.generated_tokens < 100_000 // 4 for request in backend.requests)
