from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evals import wire

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
HASHABLE = st.recursive(SCALARS, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=8)
PLAIN = st.recursive(
    SCALARS | st.complex_numbers(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(HASHABLE, inner, max_size=4)
        | st.sets(HASHABLE, max_size=4)
    ),
    max_leaves=20,
)


def crossed(value: Any) -> Any:
    return wire.decode(json.loads(wire.dump_line({"v": wire.encode(value)}))["v"])


def same(first: Any, second: Any) -> bool:
    if type(first) is not type(second):
        return False
    if isinstance(first, list | tuple):
        return len(first) == len(second) and all(same(a, b) for a, b in zip(first, second, strict=True))
    if isinstance(first, dict):
        return list(first) == list(second) and all(same(first[key], second[key]) for key in first)
    return bool(first == second)


@given(PLAIN)
def test_plain_values_cross_with_their_exact_types(value: Any) -> None:
    assert same(crossed(value), value)


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_infinities_cross(value: float) -> None:
    assert crossed(value) == value


def test_nan_crosses_as_nan() -> None:
    assert math.isnan(crossed(float("nan")))


def test_subclasses_cross_as_their_base_type() -> None:
    class Sneaky(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    assert type(crossed(Sneaky(3))) is int
    assert crossed(Sneaky(3)) != 4


def test_anything_else_is_refused_without_an_opaque_handler() -> None:
    with pytest.raises(wire.WireError, match="not plain data"):
        wire.encode(object())
    assert wire.encode(object(), lambda value: wire.Reference(7)) == {"$r": 7}


@pytest.mark.parametrize(
    "data",
    [
        {"$x": 1},
        {"a": 1, "b": 2},
        {"$t": "not a list"},
        {"$s": [[1]]},
        {"$d": [[[1], 2]]},
        {"$d": [[1]]},
        {"$f": "1e999"},
        {"$b": "zz"},
        {"$c": ["1", 2]},
        {"$r": "0"},
    ],
)
def test_malformed_values_are_wire_errors(data: Any) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_nesting_past_the_limit_is_a_wire_error() -> None:
    deep: Any = 1
    for _ in range(wire.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(wire.WireError, match="deeper"):
        wire.decode(deep)
    with pytest.raises(wire.WireError, match="deeper"):
        wire.encode(deep)


@pytest.mark.parametrize("line", [b'{"value": 1}', b"[1]\n", b"nope\n", b"[" * 100_000 + b"\n"])
def test_a_line_that_is_not_one_json_object_is_a_wire_error(line: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.load_line(line)
