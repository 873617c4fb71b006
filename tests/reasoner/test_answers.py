from __future__ import annotations

import threading

import pytest

from reasoner.answers import math_equivalent, normalize_answer, same_answer
from reasoner.errors import InputError


@pytest.mark.parametrize(
    ("answer", "key"),
    [
        (r"\boxed{\frac{1}{2}}", "0.5"),
        ("$0.50$", "0.5"),
        ("1/2", "0.5"),
        (r"\dfrac{2}{4}", "0.5"),
        ("2/6", "1/3"),
        ("6/3", "2"),
        (r"-\frac{3}{4}", "-0.75"),
        (r"50\%", "50"),
        (r"\$1,234.00", "1234"),
        ("1{,}000", "1000"),
        ("18 dollars", "18"),
        (r"12\text{ cm}^2", "12"),
        (r"90^\circ", "90"),
        ("x = 3", "3"),
        ("5.", "5"),
        (r"\left( 1, 2 \right]", "(1,2]"),
        (r"\text{(B)}", "(B)"),
    ],
)
def test_math_keys_strip_wrappers_units_and_make_numbers_canonical(answer: str, key: str) -> None:
    assert normalize_answer(answer) == key


def test_a_comma_list_is_not_read_as_a_thousands_separator() -> None:
    assert normalize_answer("1,2") == "1,2"


def test_text_keys_ignore_case_spacing_and_final_period() -> None:
    assert normalize_answer("  The  Moon. ", "text") == normalize_answer("the moon", "text")


def test_code_keys_ignore_trailing_spaces_but_keep_indentation() -> None:
    assert normalize_answer("\ndef f():  \n    return 1\n\n", "code") == "def f():\n    return 1"


def test_an_unknown_format_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown answer format"):
        normalize_answer("1", "json")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (r"\frac{1}{2}", "0.5"),
        (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}/2"),
        (r"\{1,2\}", r"\{2,1\}"),
        (r"3\pi", r"\pi \cdot 3"),
        ("x=3", "3"),
        (r"e^{x^2}", r"\exp(x^2)"),
        ("1,234", "1234"),
        (r"\boxed{7}", "7 apples"),
    ],
)
def test_equivalent_math_answers_are_the_same_both_ways(a: str, b: str) -> None:
    assert same_answer(a, b)
    assert same_answer(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [("(1,2]", "(1,2)"), ("A", "B"), ("2", "2.0000001"), ("1000000", "1000001"), (r"\frac{1}{3}", "0.33")],
)
def test_different_math_answers_are_not_the_same(a: str, b: str) -> None:
    assert not same_answer(a, b)
    assert not same_answer(b, a)


@pytest.mark.parametrize(("a", "b"), [(None, "1"), ("1", None), (None, None), ("", ""), ("  ", "$ $")])
def test_missing_or_empty_answers_equal_nothing(a: str | None, b: str | None) -> None:
    assert not same_answer(a, b)


@pytest.mark.parametrize("garbage", ["}{", r"\boxed{", "$$$", "\x00\x01", r"\frac{1}{0}", "?" * 5000, "((((" * 50])
def test_garbage_never_raises_and_matches_only_itself(garbage: str) -> None:
    assert not same_answer(garbage, "1")
    assert same_answer(garbage, garbage) == bool(normalize_answer(garbage))


def test_costly_expressions_off_the_main_thread_do_not_hang() -> None:
    verdicts: list[bool] = []
    worker = threading.Thread(target=lambda: verdicts.append(same_answer("9^{9^{9^{9}}}", "5")))
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert verdicts == [False]


def test_math_equivalent_reads_the_reference_as_gold() -> None:
    assert math_equivalent("0.5", r"\frac{1}{2}")
    assert not math_equivalent("0.5", "1/3")


def test_text_and_code_compare_by_key_only() -> None:
    assert same_answer("Paris.", "paris", "text")
    assert not same_answer("0.5", "1/2", "text")
    assert not same_answer("x = 1", "x=1", "code")


def test_a_final_equation_votes_with_its_value() -> None:
    assert same_answer("10 + 4 = 14", "14")
    assert same_answer("2 \\cdot 7 = 14", "14.0")
    assert not same_answer("10 + 4 = 14", "10")
    assert not same_answer("x \\ge 3", "3")
