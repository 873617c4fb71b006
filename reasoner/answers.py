"""Answer equivalence: a canonical key per answer, and `math-verify` for math forms.

`normalize_answer` turns an answer into a string key (LaTeX wrappers, units, percent signs,
thousands separators stripped; plain numbers canonical), so equal keys mean equal answers.
`same_answer` adds `math-verify` for math forms the key cannot see (`\\frac{1}{2}` vs
`\\sqrt{2}^{-2}`, `\\{1,2\\}` vs `\\{2,1\\}`). Parses and comparisons are cached. Nothing here
raises on malformed answers: they compare by key only.

The math-verify side lives in `reasoner.math_forms`.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from fractions import Fraction

from reasoner.errors import InputError
from reasoner.extract import last_boxed
from reasoner.math_forms import keys_equivalent

ANSWER_FORMATS = ("math", "code", "text")

_WRAPPERS = (
    re.compile(r"^\$\$(.*)\$\$$", re.DOTALL),
    re.compile(r"^\$(.*)\$$", re.DOTALL),
    re.compile(r"^\\\((.*)\\\)$", re.DOTALL),
    re.compile(r"^\\\[(.*)\\\]$", re.DOTALL),
    re.compile(r"^\\(?:text|textbf|mathrm|mbox|mathbf)\{([^{}]*)\}$"),
)
_BOXED_WHOLE = re.compile(r"^\\(?:boxed|fbox)\s*\{(.*)\}$", re.DOTALL)
_SPACING = re.compile(r"\\[,;:! ]|\\left|\\right|~")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
_PERCENT = re.compile(r"\\?%")
_LEADING_CURRENCY = re.compile(r"^(-?)\s*\\?\$\s*")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_UNIT_SUFFIX = re.compile(
    r"^(?P<number>[-+]?[\d.]+)\s*(?:\\(?:text|mbox|mathrm)\{[^{}]*\}|\s[A-Za-z]{2,}(?:\s+[A-Za-z]+)*)(?:\^\{?\d\}?)?$"
)
_ASSIGNMENT = re.compile(r"^[A-Za-z]\s*=\s*(?=[-+]?[\d.])")
_SPACE_AROUND_SYMBOL = re.compile(r"\s*([^\w\\\s])\s*")
_PLAIN_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?$")
_LATEX_FRACTION = re.compile(r"^([-+]?)\\frac\{(\d+)\}\{(\d+)\}$")


class _KeyOnlyFilter(logging.Filter):
    """Drops math-verify's notice that its timeout is off: this module guards that case."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _logger_name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_logger_name).addFilter(_KeyOnlyFilter())


def normalize_answer(answer: str, answer_format: str = "math") -> str:
    """A canonical key for an answer: equal keys mean the same answer in that format.

    math: wrappers (`\\boxed{}`, `$...$`, `\\text{}`), spacing commands, degree and percent
    signs, a leading currency sign, thousands separators, unit words after a number,
    a trailing period and a leading `x =` before a number are stripped, a final equation
    whose right-hand side is a number is that number (`10 + 4 = 14` -> `14`); plain numbers are
    canonical (`0.50`, `1/2`, `\\frac{2}{4}` -> `0.5`; `6/3` -> `2`; `2/6` -> `1/3`).
    code: trailing spaces and blank edge lines dropped. text: whitespace collapsed,
    trailing period dropped, case folded.
    """
    if answer_format not in ANSWER_FORMATS:
        raise InputError(f"unknown answer format {answer_format!r}; use one of: {', '.join(ANSWER_FORMATS)}")
    if answer_format == "code":
        lines = [line.rstrip() for line in answer.splitlines()]
        return "\n".join(lines).strip("\n")
    if answer_format == "text":
        return " ".join(answer.split()).rstrip(".").strip().casefold()
    return _normalize_math(answer)


def same_answer(a: str | None, b: str | None, answer_format: str = "math") -> bool:
    """Whether two answers are the same: equal keys, or (math) equivalent for math-verify.

    Symmetric; None and empty answers equal nothing. Never raises on malformed answers.
    """
    if a is None or b is None:
        return False
    key_a = normalize_answer(a, answer_format)
    key_b = normalize_answer(b, answer_format)
    if not key_a or not key_b:
        return False
    if key_a == key_b:
        return True
    if answer_format != "math":
        return False
    first, second = sorted((key_a, key_b))
    return keys_equivalent(first, second)


def math_equivalent(reference: str, candidate: str) -> bool:
    """Whether a candidate math answer equals the reference (reference read as the gold form)."""
    reference_key = _normalize_math(reference)
    candidate_key = _normalize_math(candidate)
    if not reference_key or not candidate_key:
        return False
    return reference_key == candidate_key or keys_equivalent(reference_key, candidate_key)


def _normalize_math(answer: str) -> str:
    text = answer.strip()
    for _ in range(4):
        unwrapped = _unwrap(text)
        if unwrapped == text:
            break
        text = unwrapped
    text = _SPACING.sub(" ", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", "")
    text = _DEGREES.sub("", text)
    text = _PERCENT.sub("", text)
    text = _LEADING_CURRENCY.sub(r"\1", text).strip()
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    unit = _UNIT_SUFFIX.match(text)
    if unit:
        text = unit.group("number")
    text = _ASSIGNMENT.sub("", text)
    text = " ".join(text.split())
    text = _SPACE_AROUND_SYMBOL.sub(r"\1", text).rstrip(".")
    return _canonical_number(text) or _equation_value(text) or text


def _equation_value(text: str) -> str | None:
    """The number a final equation states (`10+4=14` -> `14`), so it votes with a bare `14`."""
    left, equals, right = text.rpartition("=")
    if not equals or not left or left.endswith(("<", ">", "!", "\\le", "\\ge", "\\ne")):
        return None
    return _canonical_number(right)


def _unwrap(text: str) -> str:
    text = text.strip().rstrip(".").strip()
    boxed = _BOXED_WHOLE.match(text)
    if boxed and last_boxed(text) == boxed.group(1).strip():
        return boxed.group(1).strip()
    for wrapper in _WRAPPERS:
        match = wrapper.match(text)
        if match:
            return match.group(1).strip()
    return text


def _canonical_number(text: str) -> str | None:
    fraction = _as_fraction(text)
    if fraction is None:
        return None
    if fraction.denominator == 1:
        return str(fraction.numerator)
    denominator = fraction.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator == 1:
        decimal = Decimal(fraction.numerator) / Decimal(fraction.denominator)
        return format(decimal, "f")
    return f"{fraction.numerator}/{fraction.denominator}"


def _as_fraction(text: str) -> Fraction | None:
    latex = _LATEX_FRACTION.match(text)
    if latex:
        text = f"{latex.group(1)}{latex.group(2)}/{latex.group(3)}"
    if len(text) > 60 or not _PLAIN_NUMBER.match(text):
        return None
    numerator, _, denominator = text.partition("/")
    try:
        value = Fraction(numerator)
        return value / int(denominator) if denominator else value
    except (ValueError, ZeroDivisionError):
        return None
