from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, BudgetError, BudgetExhausted
from reasoner.ledger import Ledger
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend


def make_session(backend: ScriptedBackend, tokens: int) -> Session:
    return Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=tokens))


async def test_request_is_clamped_to_what_remains() -> None:
    backend = ScriptedBackend("one two three four five six seven eight nine ten")
    await backend.start()
    session = make_session(backend, 4)
    generation = await session.generate("hi", max_tokens=100, phase="answer", kind="answer")
    assert generation.max_tokens == 4
    assert len(generation.token_ids) == 4
    assert generation.finish_reason == "length"
    assert session.ledger.generated_tokens == 4


async def test_exhausted_budget_refuses_new_requests() -> None:
    backend = ScriptedBackend("one two three")
    await backend.start()
    session = make_session(backend, 3)
    await session.generate("hi", max_tokens=10, phase="answer", kind="answer")
    with pytest.raises(BudgetExhausted):
        await session.generate("again", max_tokens=10, phase="answer", kind="answer")


async def test_concurrent_reservations_never_overspend() -> None:
    backend = ScriptedBackend("a b c d e f g h i j k l m n o p", delay_s=0.001)
    await backend.start()
    session = make_session(backend, 20)
    running = [await session.start("p", max_tokens=8, phase="answer", kind="answer") for _ in range(2)]
    with pytest.raises(BudgetExhausted):
        for _ in range(2):
            running.append(await session.start("p", max_tokens=8, phase="answer", kind="answer"))
    results = [await request.result() for request in running]
    assert sum(len(result.token_ids) for result in results) <= 20
    assert session.ledger.reserved_tokens == 0


async def test_abort_counts_saved_tokens() -> None:
    backend = ScriptedBackend(" ".join(["word"] * 50), delay_s=0.001)
    await backend.start()
    session = make_session(backend, 40)
    request = await session.start("p", max_tokens=40, phase="answer", kind="answer")
    await request.wait_for_tokens(5)
    generation = await request.abort()
    assert generation.finish_reason == "abort"
    assert session.ledger.aborted_tokens_saved == 40 - len(generation.token_ids)
    assert session.ledger.aborted_tokens_saved > 0
    assert backend.requests[0].aborted


request_patterns = st.lists(
    st.tuples(st.integers(1, 60), st.integers(0, 60), st.booleans()),  # (max_tokens, script length, abort early)
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), request_patterns, st.booleans())
def test_totals_never_exceed_budget(tokens: int, pattern: list[tuple[int, int, bool]], concurrent: bool) -> None:
    async def scenario() -> Session:
        lengths = iter([length for _, length, _ in pattern])
        backend = ScriptedBackend(lambda prompt: " ".join(["x"] * next(lengths, 0)) or "")
        await backend.start()
        session = make_session(backend, tokens)

        async def one(max_tokens: int, abort: bool) -> None:
            try:
                request = await session.start("q", max_tokens=max_tokens, phase="answer", kind="answer")
            except BudgetExhausted:
                return
            if abort:
                await request.wait_for_tokens(1)
                await request.abort()
            else:
                await request.result()

        calls = [one(max_tokens, abort) for max_tokens, _, abort in pattern]
        if concurrent:
            await asyncio.gather(*calls)
        else:
            for call in calls:
                await call
        return session

    session = asyncio.run(scenario())
    ledger = session.ledger
    assert ledger.generated_tokens <= tokens
    assert ledger.reserved_tokens == 0
    assert ledger.generated_tokens == sum(data["tokens"] for _, data in session.trace.graph.nodes(data=True))


def test_held_tokens_are_out_of_reach_until_released() -> None:
    ledger = Ledger(Budget(tokens=100))
    with ledger.hold(70):
        assert ledger.remaining == 30
        assert ledger.reserve("a", 50, "answer").granted == 30
        with pytest.raises(BudgetExhausted):
            ledger.reserve("b", 1, "answer")
    assert ledger.remaining == 70


def test_a_charge_counts_tokens_spent_elsewhere_under_its_phase() -> None:
    ledger = Ledger(Budget(tokens=100))
    ledger.charge(30, "estimation", requests=3)
    assert (ledger.generated_tokens, ledger.requests, ledger.remaining) == (30, 3, 70)
    assert ledger.generated_by_phase["estimation"] == 30


def test_a_charge_beyond_what_remains_is_refused_and_counts_nothing() -> None:
    ledger = Ledger(Budget(tokens=100))
    with pytest.raises(BudgetExhausted, match="exceeds the 100 left"):
        ledger.charge(101, "estimation")
    assert (ledger.generated_tokens, ledger.requests) == (0, 0)


@settings(max_examples=50, deadline=None)
@given(outer=st.integers(min_value=2, max_value=200), share=st.integers(min_value=1, max_value=200))
def test_a_sub_session_spends_at_most_its_tokens_and_counts_them_in_the_parent(outer: int, share: int) -> None:
    async def scenario() -> None:
        backend = ScriptedBackend(" ".join(["word"] * 300))
        await backend.start()
        session = make_session(backend, outer)
        tokens = min(share, outer)
        with session.sub_session(tokens) as inner:
            assert inner.remaining == tokens
            assert inner.trace is session.trace and inner.ledger is session.ledger
            generation = await inner.generate("hi", max_tokens=1000, phase="answer", kind="answer")
        assert len(generation.token_ids) == tokens
        assert session.ledger.generated_tokens == tokens
        assert session.remaining == outer - tokens

    asyncio.run(scenario())


def test_a_sub_session_larger_than_what_remains_is_refused() -> None:
    session = make_session(ScriptedBackend("x"), 10)
    with pytest.raises(BudgetError, match="does not fit the 10 left"), session.sub_session(11):
        pass
