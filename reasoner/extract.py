"""Answer extraction from model output: boxed, "Final answer:", last number, fenced code."""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_LINE = re.compile(r"(?:final answer|the answer is|answer)\s*(?:is)?\s*[:：]?\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_COMPARISON_BEFORE = ("<", ">", "!", "\\le", "\\ge", "\\ne")
_CURRENCY_BEFORE_NUMBER = re.compile(r"^\$\s*(?=[-+]?\d[\d,.]*(?:\s|$))")
_NUMBER_THEN_WORDS = re.compile(r"^(?P<number>[-+]?\d[\d,]*(?:\.\d+)?(?:/\d+)?\s*%?)\s+[A-Za-z][A-Za-z\s.,'-]*$")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (braces balanced), or None."""
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start:index].strip()
    return None


def answer_after_marker(text: str) -> str | None:
    """What follows the last "Final answer:" / "The answer is" / "Answer:" on its line."""
    found = None
    for line in text.splitlines():
        match = _ANSWER_LINE.search(line)
        if match and match.group(1).strip():
            found = match.group(1)
    if found is None:
        return None
    return _clean(found)


def answer_value(answer: str) -> str:
    """The value a marked answer states: the right-hand side of a final equation (`10 + 4 = 14` ->
    `14`), with a currency sign, units and trailing words around a number dropped (`$14 a day` -> `14`)."""
    text = answer.strip()
    left, equals, right = text.rpartition("=")
    if equals and right.strip() and left.strip() and not left.rstrip().endswith(_COMPARISON_BEFORE):
        text = right.strip()
    text = _CURRENCY_BEFORE_NUMBER.sub("", text)
    number = _NUMBER_THEN_WORDS.match(text)
    if number:
        text = number.group("number")
    return _clean(text)


def last_number(text: str) -> str | None:
    """The last number in the text, without thousands separators."""
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    return numbers[-1].replace(",", "").rstrip(".")


def fenced_code(text: str) -> str | None:
    """The last fenced code block, preferring Python-tagged ones; None when there is none."""
    blocks = _FENCE.findall(text)
    if not blocks:
        return None
    python_blocks = [body for language, body in blocks if language.lower() in ("python", "py", "python3")]
    return (python_blocks or [body for _, body in blocks])[-1].rstrip()


def extract_math(text: str) -> str | None:
    """A math answer: `\\boxed{}` first, then an answer marker, then the last number."""
    boxed = last_boxed(text)
    if boxed:
        return boxed
    marked = answer_after_marker(text)
    if marked:
        inner = last_boxed(marked)
        return inner or answer_value(marked) or marked
    return last_number(text)


def extract_answer(text: str, answer_format: str) -> str | None:
    """Extract the answer in the given format: `math`, `code` or `text` (the stripped text)."""
    if answer_format == "math":
        return extract_math(text)
    if answer_format == "code":
        return fenced_code(text)
    if answer_format == "text":
        return text.strip() or None
    raise ValueError(f"unknown answer format {answer_format!r}; known: math, code, text")


def _clean(answer: str) -> str:
    answer = answer.strip().strip("*").strip().rstrip(".").strip()
    if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
        answer = answer.strip("$").strip()
    return answer
