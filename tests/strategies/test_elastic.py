from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, BudgetError, Reasoner, Solution, StrategyError, get_strategy
from reasoner.profiles import get_profile
from reasoner.testing import ScriptedBackend
from strategies.elastic import open_thinking_prefix, split_budget

LONG_THOUGHT = " ".join(f"step{index}" for index in range(200))
ANSWER_MARK = "Final answer:"


def thinker(thought: str, answer: str = " 7") -> ScriptedBackend:
    """A backend that thinks `thought` and answers `answer` once it sees the answer lead-in."""
    return ScriptedBackend(lambda prompt: answer if prompt.endswith(ANSWER_MARK) else thought)


def solve(backend: ScriptedBackend, budget: Budget | int, **options: Any) -> Solution:
    reasoner = Reasoner(backend=backend, profile="smollm2")
    return asyncio.run(reasoner.asolve("What is 3 + 4?", budget, "elastic", **options))


def segments(solution: Solution, kind: str) -> list[dict[str, Any]]:
    return [attrs for _, attrs in solution.trace.nodes(data=True) if attrs["kind"] == kind]


def test_elastic_answers_even_when_thinking_is_cut() -> None:
    solution = solve(thinker(LONG_THOUGHT), Budget(tokens=40, thinking=10, answer=8))
    assert solution.answer == "7"
    assert [node["tokens"] for node in segments(solution, "think")] == [10]
    assert solution.metrics["thinking_cut"] is True
    assert solution.text == "Final answer: 7"


def test_a_stray_close_in_the_answer_does_not_hide_the_answer_before_it() -> None:
    solution = solve(thinker(LONG_THOUGHT, answer=" 7\n</think>"), Budget(tokens=40, thinking=10, answer=8))
    assert solution.answer == "7"
    assert solution.text == "Final answer: 7"


def test_answer_request_extends_the_thinking_token_ids() -> None:
    backend = thinker(LONG_THOUGHT)
    solve(backend, Budget(tokens=40, thinking=10, answer=8))
    thinking, answer = backend.requests
    consumed = thinking.prompt_token_ids + tuple(backend.tokenizer_.encode(thinking.output_text))
    assert answer.prompt_token_ids[: len(consumed)] == consumed
    assert answer.prompt_text.endswith("</think>\n\nFinal answer:")


def test_answer_segment_continues_the_last_thinking_segment() -> None:
    solution = solve(thinker(LONG_THOUGHT), Budget(tokens=40, thinking=10, answer=8))
    graph = solution.trace
    answer_node = next(node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "answer")
    (parent,) = graph.predecessors(answer_node)
    assert graph.nodes[parent]["kind"] == "think"
    assert graph.edges[parent, answer_node]["kind"] == "continue"


def test_natural_close_is_kept_and_followed_by_the_lead_in_only() -> None:
    backend = thinker("three plus four is seven. </think>")
    solution = solve(backend, Budget(tokens=100, thinking=60, answer=20))
    thinking, answer = backend.requests
    assert answer.prompt_text.count("</think>") == thinking.prompt_text.count("</think>") + 1
    assert answer.prompt_text.endswith("seven. </think>\n\nFinal answer:")
    assert "Considering" not in answer.prompt_text
    assert solution.metrics["thinking_cut"] is False
    assert solution.answer == "7"


def test_thinking_ended_without_a_close_gets_the_forced_close() -> None:
    backend = thinker("three plus four is seven.")
    solution = solve(backend, Budget(tokens=100, thinking=60, answer=20))
    answer = backend.requests[1]
    assert answer.prompt_text.endswith("seven.\n</think>\n\nFinal answer:")
    assert solution.metrics["thinking_cut"] is False


def test_wait_extension_is_off_by_default() -> None:
    solution = solve(thinker("short. </think>"), Budget(tokens=100, thinking=60, answer=20))
    assert len(segments(solution, "think")) == 1
    assert solution.metrics["extensions"] == 0


def test_wait_extension_reopens_ended_thinking_k_times() -> None:
    backend = thinker(" short. </think>")
    solution = solve(backend, Budget(tokens=100, thinking=60, answer=20), wait_extensions=2)
    assert len(segments(solution, "think")) == 3
    assert solution.metrics["extensions"] == 2
    assert backend.requests[1].prompt_text.endswith(" short. \nWait")
    assert backend.requests[2].prompt_text.endswith(" short. \nWait short. \nWait")
    assert backend.requests[1].prompt_text.count("</think>") == backend.requests[0].prompt_text.count("</think>")


def test_wait_extension_stops_when_the_thinking_budget_is_spent() -> None:
    backend = thinker("one two three </think>")
    solution = solve(backend, Budget(tokens=100, thinking=4, answer=20), wait_extensions=3)
    assert solution.metrics["extensions"] == 0
    assert solution.metrics["thinking_tokens"] == 4


def test_custom_wait_text_is_appended() -> None:
    backend = thinker(" short. </think>")
    solve(backend, Budget(tokens=100, thinking=60, answer=20), wait_extensions=1, wait_text="Hmm, let me check")
    assert backend.requests[1].prompt_text.endswith(" short. \nHmm, let me check")


def test_zero_thinking_budget_answers_without_a_thinking_request() -> None:
    backend = thinker(LONG_THOUGHT)
    solution = solve(backend, Budget(tokens=20, thinking=0))
    assert len(backend.requests) == 1
    assert segments(solution, "think") == []
    assert solution.answer == "7"


def test_default_split_gives_the_answer_a_quarter() -> None:
    assert split_budget(Budget(tokens=400), get_profile("smollm2")) == (300, 100)


def test_default_split_keeps_the_profiles_least_answer() -> None:
    assert split_budget(Budget(tokens=10), get_profile("qwen3")) == (2, 8)


def test_thinking_alone_leaves_the_rest_to_the_answer() -> None:
    assert split_budget(Budget(tokens=100, thinking=70), get_profile("smollm2")) == (70, 30)


def test_answer_budget_below_the_lead_ins_needs_is_a_budget_error() -> None:
    with pytest.raises(BudgetError, match="answer budget of 2 tokens"):
        split_budget(Budget(tokens=20, thinking=18), get_profile("smollm2"))


def test_thinking_plus_answer_over_tokens_is_a_budget_error() -> None:
    with pytest.raises(BudgetError, match="exceeds tokens"):
        solve(thinker(LONG_THOUGHT), {"tokens": 10, "thinking": 8, "answer": 8})  # type: ignore[arg-type]


def test_negative_wait_extensions_is_a_strategy_error() -> None:
    with pytest.raises(StrategyError, match="wait_extensions"):
        solve(thinker(LONG_THOUGHT), 100, wait_extensions=-1)


def test_open_prefix_drops_the_tokens_that_hold_the_close() -> None:
    backend = ScriptedBackend()
    tokenizer = backend.tokenizer()
    ids = tokenizer.encode(" so 7.</think>")
    kept, tail = open_thinking_prefix(tokenizer, ids, " so 7.")
    assert tokenizer.decode(kept) == " so"
    assert tail == " 7."


budgets = st.integers(1, 160).flatmap(
    lambda tokens: st.tuples(
        st.just(tokens),
        st.none() | st.integers(0, tokens),
        st.none() | st.integers(0, tokens),
    ).filter(lambda split: (split[1] or 0) + (split[2] or 0) <= tokens)
)


@settings(max_examples=80, deadline=None)
@given(
    budgets,
    st.lists(st.tuples(st.integers(0, 120), st.booleans()), min_size=1, max_size=5),
    st.integers(0, 60),
    st.integers(0, 3),
)
def test_totals_never_exceed_the_budget_and_an_answer_always_follows(
    split: tuple[int, int | None, int | None],
    thoughts: list[tuple[int, bool]],
    answer_length: int,
    extensions: int,
) -> None:
    tokens, thinking, answer = split
    budget = Budget(tokens=tokens, thinking=thinking, answer=answer)
    scripted_thoughts = iter(
        " ".join(["hmm"] * length) + (" </think>" if closes else "") for length, closes in thoughts
    )
    answer_text = " ".join(["7"] * answer_length)
    backend = ScriptedBackend(
        lambda prompt: answer_text if prompt.endswith(ANSWER_MARK) else next(scripted_thoughts, "</think>")
    )
    try:
        thinking_budget, answer_budget = split_budget(budget, get_profile("smollm2"))
    except BudgetError:
        with pytest.raises(BudgetError):
            solve(backend, budget, wait_extensions=extensions)
        return
    solution = solve(backend, budget, wait_extensions=extensions)
    assert solution.usage.generated_tokens <= tokens
    assert int(solution.metrics["thinking_tokens"] or 0) <= thinking_budget
    assert int(solution.metrics["answer_tokens"] or 0) <= answer_budget
    assert len(segments(solution, "answer")) == 1


@pytest.mark.engine
def test_tight_thinking_budget_still_answers_on_the_engine(engine_reasoner: Reasoner) -> None:
    question = "Compute 23 * 17. Multiply step by step, showing each partial product, then add them."
    budget = Budget(tokens=48, thinking=16, answer=32)
    solution = engine_reasoner.solve(question, budget, strategy="elastic")
    tokenizer = engine_reasoner.backend.tokenizer()
    prompt_length = len(tokenizer.encode(engine_reasoner.profile.build_prompt(tokenizer, question, thinking=True)))
    (think,) = segments(solution, "think")
    (answer,) = segments(solution, "answer")
    assert solution.answer is not None
    assert solution.metrics["thinking_cut"] is True
    assert think["tokens"] <= 16
    assert solution.usage.generated_tokens <= budget.tokens
    # Whole 32-token blocks of the thinking request are reused; its last sampled token has no KV yet.
    assert answer["cached_prompt_tokens"] >= (prompt_length + think["tokens"] - 1) // 32 * 32


def test_a_deadline_mid_thinking_cuts_it_there_and_still_forces_the_answer() -> None:
    backend = ScriptedBackend(lambda prompt: " 7" if prompt.endswith(ANSWER_MARK) else LONG_THOUGHT, delay_s=0.01)
    solution = solve(backend, Budget(tokens=400, thinking=300, answer=20, deadline_s=0.3))
    assert solution.answer == "7"
    assert solution.metrics["deadline_reached"] is True
    assert solution.metrics["thinking_cut"] is True
    assert 0 < solution.metrics["thinking_tokens"] < 300
    assert [request.finish_reason for request in backend.requests] == ["abort", "stop"]


def test_without_a_deadline_the_metric_says_it_was_not_reached() -> None:
    solution = solve(thinker(LONG_THOUGHT), Budget(tokens=40, thinking=10, answer=8))
    assert solution.metrics["deadline_reached"] is False


@pytest.mark.engine
def test_a_deadline_cuts_thinking_on_the_engine_and_the_answer_is_still_forced(engine_reasoner: Reasoner) -> None:
    budget = Budget(tokens=1200, thinking=1000, answer=64, deadline_s=0.3)
    # A prompt the model thinks on to the budget when nothing stops it (greedy, alone: 300 of 300 tokens);
    # "Count from 1 to 500" closed its thinking after 8 tokens, about 0.3 s, so the deadline was a coin toss.
    prompt = "Write the numbers 1, 2, 3, and so on up to 400, separated by commas. Then say what 2 + 3 is."
    solution = engine_reasoner.solve(prompt, budget, strategy="elastic")
    assert solution.metrics["deadline_reached"] is True
    assert solution.metrics["thinking_cut"] is True
    assert solution.metrics["thinking_tokens"] < 1000
    assert solution.metrics["answer_tokens"] > 0
    assert solution.usage.generated_by_phase["answer"] == solution.metrics["answer_tokens"]


def test_wait_text_without_wait_extensions_is_refused_naming_it() -> None:
    with pytest.raises(StrategyError, match="option 'wait_text' does not apply with wait_extensions=0"):
        get_strategy("elastic").from_options({"wait_text": "Hmm"})
    assert get_strategy("elastic").from_options({"wait_text": "Hmm", "wait_extensions": 1}).options is not None
