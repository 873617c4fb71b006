"""`math-verify` comparisons of two answer keys (`reasoner.answers`), cheap or refused.

math-verify bounds its work with SIGALRM, which exists only on the main thread; elsewhere
(worker threads, `asyncio.to_thread`) it runs without a timeout, so expressions that sympy
cannot evaluate quickly (power towers, giant factorials, long inputs) are compared by key
only, on every thread alike.

sympy and math-verify are imported on the first comparison, not with the toolkit: they take
about 0.35 s, which every command line and every engine process would otherwise pay.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sympy

MAX_VERIFIED_CHARS = 400
"""Longer math answers compare by key only (math-verify's cost grows with the input)."""

_MATH_TIMEOUT_S = 5
_MAX_EXPONENT_DIGITS = 100_000
_MAX_SYMBOLIC_EXPONENT = 400
_MAX_FACTORIAL_ARGUMENT = 5_000
_MAX_EXPRESSION_NODES = 2_000


@lru_cache(maxsize=8192)
def keys_equivalent(reference_key: str, candidate_key: str) -> bool:
    """Whether math-verify finds two answer keys equal (False when either is too long, odd or costly)."""
    from math_verify import verify

    reference = _parsed(reference_key)
    candidate = _parsed(candidate_key)
    if not reference or not candidate:
        return False
    timeout_s = _MATH_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        return bool(verify(list(reference), list(candidate), timeout_seconds=timeout_s))
    except Exception:  # noqa: BLE001 - math-verify raises arbitrary sympy errors on odd input
        return False


@lru_cache(maxsize=8192)
def _parsed(key: str) -> tuple[Any, ...]:
    """math-verify's parse of a key, or () when it is too long, unparseable or too costly."""
    from math_verify import parse

    if len(key) > MAX_VERIFIED_CHARS:
        return ()
    timeout_s = _MATH_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        parsed = parse(f"\\boxed{{{key}}}", parsing_timeout=timeout_s)
    except Exception:  # noqa: BLE001 - math-verify raises arbitrary sympy errors on odd input
        return ()
    if not parsed or not all(_is_cheap(item) for item in parsed):
        return ()
    return tuple(parsed)


def _is_cheap(item: object) -> bool:
    """Whether sympy can compare this parse quickly: no towers, huge powers or factorials."""
    import sympy
    from sympy.functions.combinatorial.factorials import CombinatorialFunction

    if isinstance(item, str):
        return True
    if isinstance(item, sympy.MatrixBase):
        item = item.as_immutable()
    if not isinstance(item, sympy.Basic):
        return False
    for count, node in enumerate(sympy.preorder_traversal(item)):
        if count > _MAX_EXPRESSION_NODES:
            return False
        if isinstance(node, sympy.Pow) and not _is_cheap_power(node):
            return False
        if isinstance(node, CombinatorialFunction) and any(
            isinstance(arg, sympy.Integer) and abs(int(arg)) > _MAX_FACTORIAL_ARGUMENT for arg in node.args
        ):
            return False
    return True


def _is_cheap_power(power: sympy.Pow) -> bool:
    import sympy
    from sympy.functions.combinatorial.factorials import CombinatorialFunction

    base, exponent = power.args
    if not exponent.is_Number:
        return bool(exponent.free_symbols) or not exponent.has(sympy.Pow, CombinatorialFunction)
    magnitude = abs(exponent)
    if base.is_Number:
        return bool(magnitude * len(str(abs(base))) <= _MAX_EXPONENT_DIGITS)
    return bool(magnitude <= _MAX_SYMBOLIC_EXPONENT)
