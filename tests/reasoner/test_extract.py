from __future__ import annotations

import pytest

from reasoner.extract import extract_answer, fenced_code, last_boxed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{\frac{1}{2}} is it", r"\frac{1}{2}"),
        (r"\boxed{1} then \boxed{x^{2}}", "x^{2}"),
        ("12 + 30 = 42\n\nFinal answer: 42", "42"),
        ("The answer is $7$.", "7"),
        ("Answer: **x = 3**", "3"),
        ("we get 1,234 apples", "1234"),
        ("no digits here", None),
        (r"Final answer: \boxed{9}", "9"),
    ],
)
def test_math_extraction(text: str, expected: str | None) -> None:
    assert extract_answer(text, "math") == expected


def test_unbalanced_boxed_is_no_answer() -> None:
    assert last_boxed(r"\boxed{1 + {2") is None


def test_code_extraction_prefers_python_blocks() -> None:
    text = "```text\nnot code\n```\nthen\n```python\ndef f():\n    return 1\n```"
    assert fenced_code(text) == "def f():\n    return 1"


def test_code_extraction_accepts_an_unclosed_block() -> None:
    assert fenced_code("```python\nx = 1\n") == "x = 1"


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown answer format"):
        extract_answer("x", "json")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So we add.\nFinal answer: 10 + 4 = 14", "14"),
        ("Final answer: 14 apples.", "14"),
        ("The answer is $18 per day", "18"),
        ("Final answer: 2 + 3 = 5 dollars", "5"),
        ("Final answer: y = 2x + 1", "2x + 1"),
        ("Final answer: x \\ge 3", "x \\ge 3"),
        ("Final answer: 3 and 4", "3 and 4"),
    ],
)
def test_a_marked_answer_is_the_value_it_states(text: str, expected: str) -> None:
    assert extract_answer(text, "math") == expected
