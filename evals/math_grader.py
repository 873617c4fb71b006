"""Math grading: extract the response's answer, compare it with the reference via math-verify.

Extraction is the toolkit's (`\\boxed{}` first, then an answer marker, then the last number);
equivalence is `reasoner.answers.math_equivalent` (LaTeX, fractions, percentages, units,
intervals, sets). References may be bare answers, full solutions with a `\\boxed{}` (MATH),
or GSM8K solutions ending in `#### N`.
"""

from __future__ import annotations

from reasoner.answers import math_equivalent
from reasoner.errors import InputError
from reasoner.extract import extract_math, last_boxed

_GSM8K_MARKER = "####"


def reference_answer(raw: str) -> str:
    """The answer inside a reference: after GSM8K's `####`, else a solution's last `\\boxed{}`, else all of it."""
    if _GSM8K_MARKER in raw:
        return raw.rsplit(_GSM8K_MARKER, 1)[1].strip().replace(",", "")
    return last_boxed(raw) or raw.strip()


def grade_math(response: str, reference: str) -> bool:
    """Whether the answer extracted from `response` equals the reference answer.

    A response with no extractable answer, or an empty reference, is graded wrong; a response
    or reference that is not text is an `InputError`.
    """
    for name, value in (("response", response), ("reference", reference)):
        if not isinstance(value, str):
            raise InputError(f"grade_math's {name} must be a string, got {type(value).__name__}")
    answer = extract_math(response)
    gold = reference_answer(reference)
    if answer is None or not gold:
        return False
    return math_equivalent(gold, answer)
