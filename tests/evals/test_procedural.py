from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.procedural import (
    ARITH_LEVELS,
    COUNTDOWN_LEVELS,
    ExpressionError,
    evaluate_expression,
    generate_arith,
    generate_countdown,
    generate_sequence,
    grade_countdown,
    grade_number,
)
from evals.suites import load_suite


def test_same_seed_gives_the_same_problems() -> None:
    first = load_suite("countdown", limit=8, seed=3)
    second = load_suite("countdown", limit=8, seed=3)
    assert [(p.id, p.prompt, p.reference) for p in first] == [(p.id, p.prompt, p.reference) for p in second]


def test_another_seed_gives_other_problems() -> None:
    assert [p.prompt for p in load_suite("arith", limit=8, seed=0)] != [
        p.prompt for p in load_suite("arith", limit=8, seed=1)
    ]


def test_a_larger_limit_extends_a_smaller_one() -> None:
    small = load_suite("sequence", limit=5, seed=2)
    large = load_suite("sequence", limit=12, seed=2)
    assert [p.id for p in small] == [p.id for p in large[:5]]


def test_without_a_difficulty_every_level_appears() -> None:
    levels = {p.meta["difficulty"] for p in load_suite("arith", limit=10)}
    assert levels == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("difficulty", sorted(ARITH_LEVELS))
def test_arith_difficulty_sets_operand_count_and_size(difficulty: int) -> None:
    count, largest = ARITH_LEVELS[difficulty]
    for problem in load_suite("arith", limit=6, difficulty=difficulty):
        operands = [int(number) for number in re.findall(r"\d+", problem.prompt)]
        assert len(operands) == count
        assert max(operands) <= largest
        assert problem.meta["difficulty"] == difficulty


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 10_000), seed=st.integers(0, 10_000), difficulty=st.integers(1, 5))
def test_arith_reference_is_the_value_of_the_expression(index: int, seed: int, difficulty: int) -> None:
    item = generate_arith(index, seed, difficulty)
    expression = item.prompt.removeprefix("What is ").removesuffix("?")
    assert int(item.reference) == eval(expression, {"__builtins__": {}})


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 10_000), seed=st.integers(0, 10_000), difficulty=st.integers(1, 5))
def test_countdown_reference_solves_its_own_problem(index: int, seed: int, difficulty: int) -> None:
    item = generate_countdown(index, seed, difficulty)
    numbers, target = item.meta["numbers"], item.meta["target"]
    assert len(numbers) == COUNTDOWN_LEVELS[difficulty][0]
    assert 10 <= target <= 100
    assert grade_countdown(item.reference, numbers, target)


@pytest.mark.parametrize(
    "response",
    [
        "(3 + 5) * 2",
        "Final answer: (3 + 5) * 2 = 16",
        "I think \\boxed{(3+5) \\times 2}",
        "2 × (5 + 3)",
        "16 = 2*(3+5)",
    ],
)
def test_countdown_accepts_a_correct_expression_in_any_usual_form(response: str) -> None:
    assert grade_countdown(response, [3, 5, 2], 16)


@pytest.mark.parametrize(
    ("response", "why"),
    [
        ("(3 + 5) * 3", "wrong value"),
        ("3 * 5 + 1", "uses a number not given"),
        ("(3 + 5) * 2 * 1", "extra number"),
        ("8 * 2", "numbers not used"),
        ("(3 + 5) + 5 + 3", "reuses numbers"),
        ("2 ** 4 + 0 * 3 * 5", "power is not allowed"),
        ("16", "just the target"),
        ("__import__('os').system('true') or 16", "code is not evaluated"),
        ("(3 + 5) * 2.0", "floats are not numbers given"),
        ("", "empty"),
    ],
)
def test_countdown_rejects_what_does_not_solve_it(response: str, why: str) -> None:
    assert not grade_countdown(response, [3, 5, 2], 16), why


def test_expressions_are_parsed_never_executed() -> None:
    with pytest.raises(ExpressionError):
        evaluate_expression("(lambda: 1)()")
    with pytest.raises(ExpressionError):
        evaluate_expression("open('/etc/passwd')")


def test_division_is_exact_and_division_by_zero_is_refused() -> None:
    value, used = evaluate_expression("7 / 2 * 4")
    assert value == 14
    assert used == [7, 2, 4]
    with pytest.raises(ExpressionError, match="zero"):
        evaluate_expression("3 / (2 - 2)")


@pytest.mark.parametrize("difficulty", [1, 2, 3, 4, 5])
def test_sequence_reference_continues_the_shown_terms(difficulty: int) -> None:
    item = generate_sequence(7, 0, difficulty)
    terms = [int(term) for term in re.findall(r"-?\d+", item.prompt)]
    assert len(terms) == 5
    if difficulty == 1:
        assert int(item.reference) - terms[-1] == terms[1] - terms[0]
    if difficulty == 4:
        assert int(item.reference) == terms[-1] + terms[-2]


@pytest.mark.parametrize(
    ("response", "expected"),
    [("1234", True), ("1,234", True), ("The total is 1234.", True), ("1233", False), ("no number", False)],
)
def test_number_grader_compares_the_last_number_exactly(response: str, expected: bool) -> None:
    assert grade_number(response, "1234") is expected
