from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reasoner import Budget, BudgetError
from reasoner.budget import as_budget


@pytest.mark.parametrize("tokens", [0, -1, -100])
def test_budget_rejects_non_positive_tokens(tokens: int) -> None:
    with pytest.raises(BudgetError, match="tokens"):
        Budget(tokens=tokens)


@pytest.mark.parametrize("tokens", [1.5, "12", True, None])
def test_budget_rejects_non_integer_tokens(tokens: object) -> None:
    with pytest.raises(BudgetError):
        as_budget(tokens)  # type: ignore[arg-type]


def test_budget_rejects_split_larger_than_total() -> None:
    with pytest.raises(BudgetError, match="exceeds tokens"):
        Budget(tokens=100, thinking=80, answer=40)


def test_budget_rejects_unknown_field() -> None:
    with pytest.raises(BudgetError, match="unknown budget field .thinkng."):
        as_budget({"tokens": 10, "thinkng": 5})


def test_int_budget_becomes_total_tokens() -> None:
    assert as_budget(64) == Budget(tokens=64)


@given(st.integers(1, 10_000), st.integers(0, 10_000), st.integers(0, 10_000))
def test_split_accepted_exactly_when_it_fits(tokens: int, thinking: int, answer: int) -> None:
    if thinking + answer <= tokens:
        assert Budget(tokens=tokens, thinking=thinking, answer=answer).tokens == tokens
    else:
        with pytest.raises(BudgetError):
            Budget(tokens=tokens, thinking=thinking, answer=answer)
