"""Procedural suites: problems generated from a seed, with a difficulty knob and exact graders.

- `arith`: multi-step integer arithmetic; difficulty sets the operand count and size.
- `countdown`: reach a target with the given numbers, each used exactly once (the APR
  paper's task); the grader parses the expression (no `eval`) and checks numbers and value.
- `sequence`: the next term of an integer sequence; difficulty sets the rule's order.

Problem `i` of a suite depends only on (suite, seed, difficulty, i), so a larger `limit`
extends a smaller one and ids stay stable across runs.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from reasoner.extract import last_boxed, last_number

MAX_DIFFICULTY = 5
DEFAULT_SIZE = 200

# difficulty -> (operand count, largest operand)
ARITH_LEVELS = {1: (2, 20), 2: (3, 20), 3: (3, 99), 4: (4, 99), 5: (5, 999)}
# difficulty -> (count of given numbers, largest number)
COUNTDOWN_LEVELS = {1: (3, 10), 2: (3, 25), 3: (4, 25), 4: (4, 50), 5: (5, 50)}
COUNTDOWN_TARGETS = (10, 100)
SEQUENCE_SHOWN = 5


@dataclass(frozen=True)
class Generated:
    """One generated problem before it becomes a suite `Problem`."""

    index: int
    difficulty: int
    prompt: str
    reference: str
    meta: dict[str, Any]


class ExpressionError(ValueError):
    """An answer expression that is not plain arithmetic on integers."""


_OPERATORS: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: lambda left, right: left + right,
    ast.Sub: lambda left, right: left - right,
    ast.Mult: lambda left, right: left * right,
    ast.Div: lambda left, right: left / right,
}
_SYMBOLS = {"×": "*", "·": "*", "÷": "/", "−": "-", r"\times": "*", r"\cdot": "*", r"\div": "/"}


def evaluate_expression(expression: str) -> tuple[Fraction, list[int]]:
    """Exact value of an expression of integers, + - * / and parentheses, and the integers it uses.

    The text is parsed into a syntax tree and only those node kinds are walked: nothing is
    executed. Anything else (names, calls, powers, floats) raises `ExpressionError`.
    """
    cleaned = expression
    for symbol, operator in _SYMBOLS.items():
        cleaned = cleaned.replace(symbol, operator)
    cleaned = cleaned.replace("{", "(").replace("}", ")").strip()
    if len(cleaned) > 200:
        raise ExpressionError("expression is too long")
    try:
        tree = ast.parse(cleaned, mode="eval")
    except SyntaxError:
        raise ExpressionError(f"not an arithmetic expression: {expression!r}") from None
    used: list[int] = []
    return _walk(tree.body, used), used


def _walk(node: ast.expr, used: list[int]) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_walk(node.operand, used)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _walk(node.left, used), _walk(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ExpressionError("division by zero")
        return _OPERATORS[type(node.op)](left, right)
    raise ExpressionError(f"only integers, + - * / and parentheses are allowed, not {type(node).__name__}")


def _answer_part(response: str) -> str:
    """The answer in a response: a boxed part, else the response, without a trailing '= value'."""
    text = last_boxed(response) or response
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def grade_number(response: str, reference: str) -> bool:
    """True when the last number of the answer equals the reference exactly."""
    found = last_number(_answer_part(response))
    if found is None:
        return False
    try:
        return Fraction(found) == Fraction(reference)
    except (ValueError, ZeroDivisionError):
        return False


def grade_countdown(response: str, numbers: list[int], target: int) -> bool:
    """True when the answer is an expression using each given number once and equal to `target`."""
    candidate = _answer_part(response)
    candidate = re.sub(r"^.*?(?:final answer|answer)\s*(?:is)?\s*:?", "", candidate, flags=re.IGNORECASE)
    for side in candidate.replace("$", "").split("="):
        try:
            value, used = evaluate_expression(side)
        except ExpressionError:
            continue
        if value == target and Counter(used) == Counter(numbers):
            return True
    return False


def _rng(suite: str, seed: int, difficulty: int, index: int) -> random.Random:
    return random.Random(f"{suite}:{seed}:{difficulty}:{index}")


def _difficulty_of(index: int, difficulty: int | None) -> int:
    return difficulty if difficulty is not None else index % MAX_DIFFICULTY + 1


def generate_arith(index: int, seed: int, difficulty: int | None) -> Generated:
    """A multi-step expression over integers with + - * and its exact value."""
    level = _difficulty_of(index, difficulty)
    count, largest = ARITH_LEVELS[level]
    rng = _rng("arith", seed, level, index)
    parts = [str(rng.randint(1, largest))]
    for _ in range(count - 1):
        operator = rng.choice(["+", "-", "*"] if level > 1 else ["+", "-"])
        operand = rng.randint(1, 12 if operator == "*" else largest)
        parts += [operator, str(operand)]
    if count >= 3 and rng.random() < 0.5:
        parts = ["(", *parts[:3], ")", *parts[3:]]
    expression = " ".join(parts).replace("( ", "(").replace(" )", ")")
    value, _ = evaluate_expression(expression)
    prompt = f"What is {expression}?"
    meta = {"difficulty": level, "operands": count, "largest_operand": largest}
    return Generated(index, level, prompt, str(value), meta)


def generate_countdown(index: int, seed: int, difficulty: int | None) -> Generated:
    """Numbers and a target reachable by combining all of them; the reference is one solution."""
    level = _difficulty_of(index, difficulty)
    count, largest = COUNTDOWN_LEVELS[level]
    rng = _rng("countdown", seed, level, index)
    while True:
        numbers = [rng.randint(1, largest) for _ in range(count)]
        expression, value = _combine(rng, [(str(number), Fraction(number)) for number in numbers])
        if value.denominator == 1 and COUNTDOWN_TARGETS[0] <= value <= COUNTDOWN_TARGETS[1]:
            break
    target = int(value)
    shown = ", ".join(str(number) for number in numbers)
    prompt = (
        f"Using the numbers [{shown}], write an expression that equals {target}. "
        "Use each number exactly once and only + - * / and parentheses."
    )
    meta = {"difficulty": level, "numbers": numbers, "target": target}
    return Generated(index, level, prompt, expression, meta)


def _combine(rng: random.Random, terms: list[tuple[str, Fraction]]) -> tuple[str, Fraction]:
    """Join random pairs of terms with random operators until one expression is left."""
    terms = list(terms)
    while len(terms) > 1:
        left = terms.pop(rng.randrange(len(terms)))
        right = terms.pop(rng.randrange(len(terms)))
        operator = rng.choice("+-*/")
        if operator == "/" and (right[1] == 0 or (left[1] / right[1]).denominator != 1):
            operator = "+"
        if operator == "-" and left[1] < right[1]:
            left, right = right, left
        value = _OPERATORS[{"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div}[operator]](left[1], right[1])
        terms.append((f"({left[0]} {operator} {right[0]})", value))
    expression, value = terms[0]
    return expression[1:-1] if expression.startswith("(") else expression, value


def generate_sequence(index: int, seed: int, difficulty: int | None) -> Generated:
    """Five terms of an integer sequence; the answer is the sixth. Harder levels use richer rules."""
    level = _difficulty_of(index, difficulty)
    rng = _rng("sequence", seed, level, index)
    start = rng.randint(1, 20)
    if level == 1:
        step = rng.randint(2, 9)
        terms = [start + step * n for n in range(SEQUENCE_SHOWN + 1)]
    elif level == 2:
        ratio = rng.randint(2, 4)
        terms = [start * ratio**n for n in range(SEQUENCE_SHOWN + 1)]
    elif level == 3:
        step, growth = rng.randint(1, 5), rng.randint(1, 4)
        terms = [start + step * n + growth * n * (n - 1) // 2 for n in range(SEQUENCE_SHOWN + 1)]
    elif level == 4:
        terms = [start, rng.randint(1, 20)]
        while len(terms) < SEQUENCE_SHOWN + 1:
            terms.append(terms[-1] + terms[-2])
    else:
        ratio, shift = rng.randint(2, 3), rng.randint(-5, 5)
        terms = [start]
        while len(terms) < SEQUENCE_SHOWN + 1:
            terms.append(terms[-1] * ratio + shift)
    shown = ", ".join(str(term) for term in terms[:SEQUENCE_SHOWN])
    prompt = f"What is the next number in the sequence {shown}, ...?"
    return Generated(index, level, prompt, str(terms[-1]), {"difficulty": level})


GENERATORS: dict[str, Callable[[int, int, int | None], Generated]] = {
    "arith": generate_arith,
    "countdown": generate_countdown,
    "sequence": generate_sequence,
}
