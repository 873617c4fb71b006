from __future__ import annotations

import random

import pytest

from evals import grade_math
from evals.data_files import packaged_rows
from evals.math_grader import reference_answer
from reasoner.errors import InputError


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        (r"So the answer is \boxed{\frac{1}{2}}.", "0.5"),
        (r"\boxed{0.5}", r"\frac12"),
        ("She pays $18 in total.\nFinal answer: $18", "18"),
        (r"The result is \boxed{50\%}", "50"),
        (r"\boxed{12\text{ cm}^2}", "12"),
        (r"\boxed{(1, 2]}", r"(1,2]"),
        (r"\boxed{\{3, 1, 2\}}", r"\{1,2,3\}"),
        (r"\boxed{x = -4}", "-4"),
        ("The answer is 1,234.", "1234"),
        (r"\boxed{\dfrac{\sqrt{3}}{2}}", r"\frac{\sqrt3}{2}"),
    ],
)
def test_equivalent_answers_grade_correct(response: str, reference: str) -> None:
    assert grade_math(response, reference)


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        (r"\boxed{\frac{1}{3}}", "0.5"),
        (r"\boxed{(1, 2)}", "(1,2]"),
        (r"\boxed{\{1, 2\}}", r"\{1,2,3\}"),
        ("Final answer: 17", "18"),
        (r"I think \boxed{2} but maybe 3", "3"),
    ],
)
def test_different_answers_grade_wrong(response: str, reference: str) -> None:
    assert not grade_math(response, reference)


@pytest.mark.parametrize("response", ["", "I don't know.", r"\boxed{", "}}}{{{", "\x00"])
def test_responses_without_an_answer_grade_wrong(response: str) -> None:
    assert not grade_math(response, "42")


def test_gsm8k_references_are_read_after_the_marker() -> None:
    assert reference_answer("3 + 4 = <<3+4=7>>7 apples\n#### 1,007") == "1007"
    assert grade_math("Final answer: 1007", "so 1007\n#### 1,007")


def test_a_math_solution_reference_contributes_its_boxed_answer() -> None:
    assert reference_answer(r"hence $x = \boxed{\frac{3}{4}}$.") == r"\frac{3}{4}"


def test_an_empty_reference_grades_everything_wrong() -> None:
    assert not grade_math(r"\boxed{}", "")


def _sample(name: str, size: int) -> list[dict[str, str]]:
    rows = packaged_rows(name)
    return random.Random(0).sample(rows, size)


def test_gsm8k_reference_solutions_grade_correct_against_themselves() -> None:
    rows = _sample("gsm8k_test.jsonl.gz", 40)
    assert all(grade_math(row["answer"], row["answer"]) for row in rows)


def test_math500_reference_solutions_grade_correct_against_their_answers() -> None:
    rows = _sample("math500_test.jsonl.gz", 40)
    correct = sum(grade_math(row["solution"], row["answer"]) for row in rows)
    assert correct >= 39


@pytest.mark.parametrize(("response", "reference"), [(None, "5"), ("5", None), (5, "5"), (b"5", "5")])
def test_a_response_or_reference_that_is_not_text_is_an_input_error(response: object, reference: object) -> None:
    with pytest.raises(InputError, match="must be a string"):
        grade_math(response, reference)  # type: ignore[arg-type]


def test_lone_surrogates_grade_wrong_without_an_error() -> None:
    assert not grade_math("\\boxed{\udcff}", "5")
    assert grade_math("\\boxed{5} \udcff", "5")
