from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, BudgetError, BudgetExhausted, CostExhausted
from reasoner.accelerators import Accelerator
from reasoner.cost import CostModel, ModelShape
from reasoner.ledger import Ledger
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend

# One layer of width 4, one head of size 4, MLP 8, vocabulary 16, on a chip where a byte costs one FLOP,
# one sequence per decode step. Matmul weights: attention 4*4*2*(1+1) = 64, MLP 3*4*8 = 96, LM head 16*4 = 64:
# N = 224; KV bytes per token: 2*1*1*4*2 = 16. A request of 2 prompt tokens (none cached) generating G:
#   G=1: compute 2*224*3 + 4*1*1*4*(3+2+1) = 1440, memory 16*(2+2+1) + 224*2*1 = 528: 1968 eFLOPs
#   G=2: compute 2*224*4 + 16*(3+4+3) = 1952, memory 16*(2+4+3) + 224*2*2 = 1040: 2992 eFLOPs
#   G=3: compute 2*224*5 + 16*(3+6+6) = 2480, memory 16*(2+6+6) + 224*2*3 = 1568: 4048 eFLOPs
TINY = CostModel(
    ModelShape(layers=1, hidden_size=4, attention_heads=1, kv_heads=1, head_dim=4, intermediate_size=8, vocab_size=16),
    Accelerator(name="byte-per-flop", matmul_flops=1e12, memory_bandwidth=1e12),
    decode_batch=1,
)


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


def test_the_tiny_cost_model_prices_as_computed_by_hand() -> None:
    assert [TINY.eflops(2, 0, generated) for generated in (1, 2, 3)] == [1968, 2992, 4048]


def test_a_priced_charge_spends_its_cost_on_its_model_and_cuts_later_grants() -> None:
    ledger = Ledger(Budget(tokens=100, cost=5000.0), priced=True, default_model="small")
    ledger.charge(3, "estimation", requests=1, model="large", cost=1968)
    assert (ledger.cost, ledger.cost_left, ledger.by_model["large"].cost) == (1968, 3032, 1968)
    assert ledger.by_model["large"].generated_tokens == 3 and ledger.priced
    # 3032 left: two tokens after a 2-token prompt (2992) fit, three (4048) do not.
    assert ledger.reserve("a", 10, "answer", prompt_tokens=2, cost_model=TINY).granted == 2


def test_a_charge_beyond_the_cost_left_is_refused_and_counts_nothing() -> None:
    ledger = Ledger(Budget(tokens=100, cost=5000.0), priced=True)
    ledger.charge(1, "estimation", cost=1968)
    with pytest.raises(CostExhausted, match="charge of 3033 eFLOPs exceeds the 3032 left"):
        ledger.charge(1, "estimation", requests=1, cost=3033)
    assert (ledger.generated_tokens, ledger.requests, ledger.cost) == (1, 0, 1968)
    assert ledger.by_model[""].cost == 1968 and ledger.generated_by_phase["estimation"] == 1
    ledger.charge(1, "estimation", cost=3032)
    assert ledger.cost_left == 0


def test_under_a_cost_cap_a_charge_of_tokens_must_say_its_cost() -> None:
    ledger = Ledger(Budget(tokens=100, cost=5000.0), priced=True)
    with pytest.raises(BudgetError, match="needs every charge priced"):
        ledger.charge(3, "estimation")
    assert (ledger.generated_tokens, ledger.cost) == (0, 0)
    ledger.charge(0, "estimation", requests=1)
    assert ledger.priced and ledger.requests == 1


def test_without_a_cost_cap_a_charge_without_cost_leaves_the_cost_unknown() -> None:
    priced = Ledger(Budget(tokens=100), priced=True)
    priced.charge(3, "estimation", cost=1968)
    assert priced.priced and priced.cost == 1968 and priced.cost_left is None
    priced.charge(3, "estimation")
    assert not priced.priced  # its tokens' eFLOPs are not counted: Usage.cost would understate


def test_a_negative_charged_cost_is_refused() -> None:
    with pytest.raises(BudgetError, match="must be non-negative"):
        Ledger(Budget(tokens=100)).charge(1, "estimation", cost=-1)


def test_held_cost_is_out_of_reach_until_released() -> None:
    ledger = Ledger(Budget(tokens=100, cost=5000.0), priced=True)
    with ledger.hold(0, cost=2100):
        assert ledger.cost_left == 2900 and ledger.remaining == 100
        # 2900 pays one token after a 2-token prompt (1968), not two (2992).
        reservation = ledger.reserve("a", 10, "answer", prompt_tokens=2, cost_model=TINY)
        assert reservation.granted == 1
        ledger.close(reservation, aborted=True)
        with ledger.hold(0, cost=10**9):  # held up to what is left
            assert ledger.cost_left == 0
            with pytest.raises(CostExhausted):
                ledger.reserve("b", 10, "answer", prompt_tokens=2, cost_model=TINY)
        assert ledger.cost_left == 2900
    assert (ledger.cost_left, ledger.reserved_cost) == (5000, 0)


def test_holding_cost_without_a_cost_cap_holds_nothing() -> None:
    ledger = Ledger(Budget(tokens=100))
    with ledger.hold(10, cost=2100):
        assert ledger.cost_left is None and ledger.reserved_cost == 0 and ledger.remaining == 90
